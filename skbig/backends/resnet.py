"""``resnet``: ResNet-18 (He et al., 2016) in plain torch, trained from scratch.

BasicBlock stages (``layers=[2, 2, 2, 2]`` by default) of ``width``,
``2*width``, ``4*width`` and ``8*width`` channels, global average pooling and
a linear head ``fc``.  Parameter names follow torchvision's ``resnet18``
(``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``fc``), so its state dicts
line up with this module.  The last batch norm of every residual branch
starts at zero, so each block begins as the identity, which makes training
from scratch on small data sets steadier.

The default input is 128x128, not ImageNet's 224x224: a ResNet-18 costs
about 0.6 GFLOPs per 128x128 image instead of 1.8, which keeps training on a
CPU practical and loses little on photos of one main object.  Set
``backend_params__image_size=224`` on a GPU.  Inputs are normalised with the
ImageNet mean and std.

``stem="auto"`` uses ImageNet's stem (7x7 convolution with stride 2, then
3x3 max pooling: 4x downsampling) for inputs of at least 64 pixels a side,
and a 3x3 stride-1 convolution without pooling (the CIFAR variant) for
smaller ones, which would otherwise shrink to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from skbig.backends.base import TaskSpec
from skbig.backends.image_common import ImageBackend
from skbig.exceptions import InvalidParameterError

__all__ = ["ResNetBackend", "ResNetModule", "BasicBlock"]

STEMS = ("auto", "imagenet", "small")
#: ``stem="auto"`` picks the ImageNet stem from this input size (smaller side) up.
IMAGENET_STEM_MIN_SIZE = 64


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetModule(nn.Module):
    """ResNet with BasicBlocks; ``layers=(2, 2, 2, 2)`` and ``width=64`` is ResNet-18.

    Parameters
    ----------
    n_classes : int
        Output size of the head ``fc``.
    width : int
        Channels of the first stage (doubled at each later stage).
    layers : sequence of int
        Blocks per stage.
    dropout : float
        Dropout before ``fc``.
    small_input : bool
        Use the 3x3 stride-1 stem without max pooling.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        width: int = 64,
        layers: Sequence[int] = (2, 2, 2, 2),
        dropout: float = 0.0,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if small_input:
            self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.stages: list[str] = []
        c_in = width
        for index, n_blocks in enumerate(layers):
            c_out = width * 2**index
            blocks = [BasicBlock(c_in, c_out, stride=1 if index == 0 else 2)]
            blocks += [BasicBlock(c_out, c_out) for _ in range(n_blocks - 1)]
            name = f"layer{index + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stages.append(name)
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stages:
            x = getattr(self, name)(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class ResNetBackend(ImageBackend):
    """Built-in ResNet-18 trained from scratch; see the module docstring.

    Hyper-parameters: ``width`` (64), ``layers`` (``[2, 2, 2, 2]``),
    ``dropout`` (0), ``image_size`` (128; None keeps one-size arrays at their
    native size and uses 128 otherwise), ``stem`` (``"auto"``,
    ``"imagenet"`` or ``"small"``) and ``center_crop`` (None: photos are
    stretched to ``image_size``; a fraction such as 0.875 keeps their aspect
    ratio and takes that share of the shorter side from the centre, see
    :class:`~skbig.backends.image_common.ImageBackend`).
    """

    name = "resnet"
    defaults = {
        "width": 64,
        "layers": [2, 2, 2, 2],
        "dropout": 0.0,
        "image_size": 128,
        "stem": "auto",
        "center_crop": None,
    }
    training_defaults = {"lr": 1e-3, "batch_size": 32, "max_epochs": 30, "weight_decay": 1e-4}
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    file_image_size = 128

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.check_int_params("width")
        self.check_dropout()
        layers = self.params["layers"]
        if (
            not isinstance(layers, (list, tuple))
            or not layers
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in layers)
        ):
            raise InvalidParameterError(
                f"backend 'resnet': layers must be a non-empty list of ints >= 1 (blocks per stage), "
                f"got layers={layers!r}; ResNet-18 is [2, 2, 2, 2]"
            )
        if self.params["stem"] not in STEMS:
            raise InvalidParameterError(
                f"backend 'resnet': stem must be one of {list(STEMS)}, got stem={self.params['stem']!r}"
            )

    def build_module(self, spec: TaskSpec) -> nn.Module:
        p = self.params
        stem = p["stem"]
        if stem == "auto":
            stem = "imagenet" if min(self._size()) >= IMAGENET_STEM_MIN_SIZE else "small"
        return ResNetModule(
            spec.n_outputs,
            width=int(p["width"]),
            layers=[int(v) for v in p["layers"]],
            dropout=float(p["dropout"]),
            small_input=stem == "small",
        )

    def backbone_parameter_names(self, module: nn.Module) -> list[str]:
        """Every parameter but the head ``fc``."""
        return [name for name, _ in module.named_parameters() if not name.startswith("fc.")]

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        from skbig.search.spaces import Categorical, Float

        return {
            "lr": Float(3e-4, 3e-3, log=True),
            "weight_decay": Float(1e-5, 1e-2, log=True),
            "backend_params__width": Categorical([32, 64]),
            "backend_params__dropout": Float(0.0, 0.5),
        }
