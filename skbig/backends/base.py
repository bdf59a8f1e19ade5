"""The backend contract: what a model family must provide to plug into skbig.

A backend owns everything that is specific to one model family: its
hyper-parameters and their defaults, the preprocessing it needs (a vocabulary,
an image size, audio features), the ``nn.Module`` it builds for a task and how
to compute a loss and predictions from a batch.  The estimators and the training
engine are generic and only talk to this interface.

Subclass one of the task bases (:class:`TextClassificationBackend`,
:class:`ImageClassificationBackend`, :class:`SpeechRecognitionBackend`) rather
than :class:`Backend` itself: they supply the task's loss and decoding.
"""

from __future__ import annotations

import abc
import difflib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from skbig.exceptions import InvalidParameterError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from skbig.engine.data import TrainData

__all__ = [
    "API_VERSION",
    "TASKS",
    "Backend",
    "TaskSpec",
    "TextClassificationBackend",
    "ImageClassificationBackend",
    "SpeechRecognitionBackend",
]

#: Version of the backend contract.  A plugin declares the version it was
#: written for in ``api_version``; skbig refuses to load any other.
API_VERSION = 1

TASKS = ("text-classification", "image-classification", "speech-recognition")


@dataclass(frozen=True)
class TaskSpec:
    """What the estimator learned from ``y`` that the module's shape depends on.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    n_outputs : int
        Number of classes (classification) or size of the output alphabet
        including the CTC blank (speech recognition).
    extra : dict
        Task-specific facts, e.g. the sample rate or the image shape.
    """

    task: str
    n_outputs: int
    extra: Mapping[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """Base class of every backend; see the module docstring for the contract.

    Parameters
    ----------
    params : mapping, optional
        Hyper-parameter overrides; keys must appear in :attr:`defaults`.

    Attributes
    ----------
    params : dict
        The defaults updated with the overrides.
    """

    #: Registered name, e.g. ``"fasttext"``.
    name: ClassVar[str] = ""
    #: One of :data:`TASKS`.
    task: ClassVar[str] = ""
    #: Contract version this backend was written for.
    api_version: ClassVar[int] = API_VERSION
    #: Hyper-parameters and their defaults (JSON-serialisable values).
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Training settings used when the estimator leaves them at ``None``
    #: (``lr``, ``batch_size``, ``max_epochs``, ``weight_decay``,
    #: ``lr_schedule``, ``warmup``, ``validation_fraction``; for backends with
    #: pretrained weights also ``freeze`` (when the estimator's is "auto"),
    #: ``backbone_lr_mult`` and ``head_init``), the ``patience`` that
    #: ``early_stopping=True`` stands for, and ``min_steps``: with
    #: ``max_epochs=None``, enough epochs for at least this many optimiser
    #: steps (small training sets).  A pretrained backend's entries are
    #: its fine-tuning recipe, so ``Estimator(backend=name).fit(X, y)`` is it.
    training_defaults: ClassVar[Mapping[str, Any]] = {}
    #: Whether the backend starts from pretrained weights by default.
    uses_pretrained_weights: ClassVar[bool] = False
    #: Rank for ``backend="auto"``: the highest usable one wins.
    auto_priority: ClassVar[int] = 0
    #: Whether the engine scores the module on the validation split before the
    #: first epoch, so that early stopping can keep the untrained weights (best
    #: epoch 0).  For backends whose pretrained model predicts as is (zero-shot).
    evaluate_before_training: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InvalidParameterError(
                f"backend {self.name!r} has no hyper-parameter(s) {unknown}; "
                f"valid: {sorted(self.defaults)}" + _suggest(unknown[0], self.defaults)
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        #: Where ``build_module`` takes weights from: True (the default
        #: weights), a path, or False (random init; also used when restoring
        #: a fitted model, whose weights are loaded afterwards).
        self.pretrained: bool | str = self.uses_pretrained_weights

    @classmethod
    def weights_available(cls) -> bool:
        """Whether the default pretrained weights resolve offline (used by ``"auto"``)."""
        return True

    # -- preprocessing ---------------------------------------------------------
    def fit_preprocessing(self, X: Sequence[Any]) -> None:  # noqa: B027 - optional hook
        """Learn data-dependent preprocessing (vocabulary, statistics) from ``X``."""

    def get_state(self) -> dict[str, Any]:
        """Return learned preprocessing state as JSON-serialisable data."""
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`get_state` returned (used by ``skbig.load``)."""

    @abc.abstractmethod
    def make_data(self, X: Sequence[Any], targets: Any = None, *, train: bool = False) -> TrainData:
        """Turn validated inputs (and encoded targets) into batches for the engine.

        Return :class:`skbig.engine.data.TensorData` when everything fits in
        memory (fast path) or :class:`skbig.engine.data.DatasetData` for lazy
        decoding inside DataLoader workers.  ``train`` enables augmentation.
        """

    @abc.abstractmethod
    def build_module(self, spec: TaskSpec) -> nn.Module:
        """Build the ``nn.Module`` for ``spec`` (freshly initialised head)."""

    # -- what the engine calls ---------------------------------------------------
    def forward(self, module: nn.Module, batch: Mapping[str, Any]) -> Any:
        """Run ``module`` on a batch; the default passes ``batch["x"]``."""
        return module(batch["x"])

    @abc.abstractmethod
    def loss(
        self,
        module: nn.Module,
        batch: Mapping[str, Any],
        *,
        class_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the scalar training loss of ``batch``."""

    # -- transfer learning hooks ------------------------------------------------
    def backbone_parameter_names(self, module: nn.Module) -> list[str]:
        """Names of parameters that belong to the pretrained backbone (not the head)."""
        return []

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """Default Optuna search space: ``{param: spec}`` (see ``skbig.search``)."""
        return {}


class _ClassificationMixin:
    """Cross-entropy loss and logits for classification backends."""

    def loss(self, module, batch, *, class_weight=None):  # type: ignore[no-untyped-def]
        import torch.nn.functional as F

        logits = self.forward(module, batch)  # type: ignore[attr-defined]
        return F.cross_entropy(logits.float(), batch["y"], weight=class_weight)

    def predict_logits(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """Unnormalised class scores ``(batch, n_classes)``."""
        return self.forward(module, batch)  # type: ignore[attr-defined,no-any-return]

    # -- linear-probe head initialisation (``head_init="linear_probe"``) ----------
    def classifier_head(self, module: nn.Module) -> nn.Linear | None:
        """The final linear layer that produces the class scores, or None.

        Naming it lets ``head_init="linear_probe"`` fit the fresh head as a
        logistic regression on the pretrained features before fine-tuning
        (see :mod:`skbig.engine._probe`).  None (the default) means the
        backend does not support it.
        """
        return None

    def head_inputs(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """The ``(batch, d)`` rows :meth:`classifier_head` reads for ``batch``, in batch order.

        The default captures them during :meth:`forward` with a forward
        pre-hook; a backend whose forward splits or reorders a batch before
        the head overrides this.
        """
        from skbig.engine._probe import capture_head_inputs

        head = self.classifier_head(module)
        if head is None:
            raise NotImplementedError(f"{type(self).__name__} names no classifier_head()")
        return capture_head_inputs(module, head, self.forward, batch)  # type: ignore[attr-defined]


class TextClassificationBackend(_ClassificationMixin, Backend):
    """Base for text classification backends: ``X`` is a sequence of ``str``."""

    task = "text-classification"


class ImageClassificationBackend(_ClassificationMixin, Backend):
    """Base for image classification backends: ``X`` items are decodable images.

    ``X`` reaches :meth:`make_data` as :func:`skbig.data.image.check_image_inputs`
    returns it: a float32 ``(n, H, W, C)`` array in [0, 1], or a list of
    paths, bytes, PIL images and single arrays.  The estimator sets
    :attr:`augment` (its ``augment`` parameter) before every :meth:`make_data`
    call; a backend augments training data only when it is not ``None``.
    """

    task = "image-classification"
    #: ``"auto"``, ``"crop+flip"`` or ``None``; set by the estimator before ``make_data``.
    augment: str | None = "auto"


class SpeechRecognitionBackend(Backend):
    """Base for speech recognition backends: audio in, token sequences out.

    The default implementation is CTC: ``forward`` returns
    ``(log_probs (B, T, V), out_lengths)`` and the blank has id 0.

    Items of ``X`` reach :meth:`make_data` as 1-D waveform arrays, file paths
    or file bytes.  Arrays carry no rate of their own: the estimator sets
    :attr:`input_sample_rate` (its ``sample_rate`` parameter) before every
    :meth:`make_data` call, and the backend resamples from it.
    """

    task = "speech-recognition"
    #: Rate in Hz of the array items of ``X``; set by the estimator before
    #: ``make_data`` (``None`` when ``X`` holds only paths and bytes).
    input_sample_rate: int | None = None

    def forward(self, module: nn.Module, batch: Mapping[str, Any]) -> Any:
        return module(batch["x"], batch["x_lengths"])

    def loss(self, module, batch, *, class_weight=None):  # type: ignore[no-untyped-def]
        import torch.nn.functional as F

        log_probs, out_lengths = self.forward(module, batch)
        _warn_if_clips_too_short(out_lengths, batch["y"], batch["y_lengths"])
        return F.ctc_loss(
            log_probs.float().transpose(0, 1),
            batch["y"],
            out_lengths,
            batch["y_lengths"],
            blank=0,
            zero_infinity=True,
        )

    @abc.abstractmethod
    def fit_targets(self, transcripts: Sequence[str]) -> None:
        """Learn the output vocabulary (e.g. the alphabet) from the training transcripts."""

    @abc.abstractmethod
    def encode_targets(self, transcripts: Sequence[str]) -> list[list[int]]:
        """Turn transcripts into output-token ids (never containing the blank, 0)."""

    @abc.abstractmethod
    def output_size(self) -> int:
        """Number of output tokens, blank included: the module's last dimension."""

    @abc.abstractmethod
    def decode(self, module: nn.Module, batch: Mapping[str, Any], *, beam_size: int = 1) -> list[str]:
        """Return the transcript of each item of ``batch``."""


def _warn_if_clips_too_short(out_lengths: Any, targets: Any, target_lengths: Any) -> None:
    """Warn when a clip has fewer output frames than CTC needs for its transcript.

    CTC emits at most one token per frame and needs a blank between repeated
    tokens; such a clip has no alignment, ``zero_infinity`` scores it 0 and
    it teaches nothing, so a run of them reads as a perfect ``train_loss``.
    """
    import torch

    lengths = target_lengths.to(out_lengths.device)
    needed = lengths.clone()
    if targets.ndim == 2 and targets.shape[1] > 1:  # padded (B, S): add the repeats
        positions = torch.arange(1, targets.shape[1], device=targets.device)
        repeats = (targets[:, 1:] == targets[:, :-1]) & (
            positions < target_lengths[:, None].to(targets.device)
        )
        needed = needed + repeats.sum(dim=1).to(needed.device)
    if bool((out_lengths < needed).any()):
        warnings.warn(
            "some clips have fewer output frames than their transcripts need (CTC emits at most one "
            "token per frame): they teach nothing and score 0 loss. Check that each clip is paired "
            "with its own transcript and that sample_rate is the arrays' true rate",
            UserWarning,
            stacklevel=2,
        )


def _suggest(name: str, choices: Mapping[str, Any] | Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
