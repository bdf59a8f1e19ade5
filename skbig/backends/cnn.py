"""``cnn``: a small convolutional network that trains in seconds on a CPU.

``depth`` stages of two 3x3 convolution + batch-norm + ReLU layers, the
channel count doubling from ``width`` at each stage and the resolution
halving between stages, then global average and max pooling, dropout and a
linear classifier.  A stage does not pool a side that is already 1 pixel
long, so the same network reads 8x8 digits, 64x64 photos and the one-row
"images" that tabular input becomes.  Inputs whose shorter side exceeds 32
pixels are halved by a stride-2 first convolution, which makes a 64x64
photo cost about 40 million multiply-adds forward instead of 155.

``image_size=None`` (the default) keeps in-memory arrays at their native
size and resizes images read from files (or of mixed sizes) to 64x64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skbig.backends.base import TaskSpec
from skbig.backends.image_common import ImageBackend

__all__ = ["CNNBackend", "CNNModule"]


#: Inputs whose shorter side exceeds this are halved by a stride-2 first convolution.
STRIDED_STEM_ABOVE = 32


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class CNNModule(nn.Module):
    """Conv-BN-ReLU stages, global average + max pooling, dropout, linear head.

    Parameters
    ----------
    n_classes : int
        Output size.
    input_size : (int, int)
        ``(height, width)`` of the input; decides where the stages pool.
    width : int
        Channels of the first stage (doubled at each later stage).
    depth : int
        Number of stages.
    dropout : float
        Dropout before the head.
    """

    def __init__(
        self, n_classes: int, input_size: tuple[int, int], *, width: int, depth: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, (height, wide) = 3, input_size
        stride = 2 if min(input_size) > STRIDED_STEM_ABOVE else 1
        if stride == 2:
            height, wide = (height + 1) // 2, (wide + 1) // 2
        for stage in range(depth):
            c_out = width * 2**stage
            if stage > 0:
                kernel = (2 if height >= 2 else 1, 2 if wide >= 2 else 1)
                if kernel != (1, 1):
                    layers.append(nn.MaxPool2d(kernel))
                    height, wide = height // kernel[0], wide // kernel[1]
            layers += _conv_bn_relu(c_in, c_out, stride if stage == 0 else 1) + _conv_bn_relu(c_out, c_out)
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.head(self.dropout(pooled))


class CNNBackend(ImageBackend):
    """Built-in small CNN; see the module docstring.

    Hyper-parameters: ``width`` (channels of the first stage), ``depth``
    (stages), ``dropout``, ``image_size`` (None, an int or ``[height,
    width]``) and ``center_crop`` (None stretches images to the input size;
    a fraction keeps their aspect ratio and crops the centre, see
    :class:`~skbig.backends.image_common.ImageBackend`).  Inputs are
    normalised with mean 0.5 and std 0.25 per channel.
    """

    name = "cnn"
    defaults = {"width": 32, "depth": 3, "dropout": 0.3, "image_size": None, "center_crop": None}
    training_defaults = {"lr": 1e-3, "batch_size": 64, "max_epochs": 40, "weight_decay": 1e-4}
    file_image_size = 64

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.check_int_params("width", "depth")
        self.check_dropout()

    def build_module(self, spec: TaskSpec) -> nn.Module:
        p = self.params
        return CNNModule(
            spec.n_outputs,
            self._size(),
            width=int(p["width"]),
            depth=int(p["depth"]),
            dropout=float(p["dropout"]),
        )

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        from skbig.search.spaces import Categorical, Float, Int

        return {
            "lr": Float(3e-4, 3e-3, log=True),
            "backend_params__width": Categorical([16, 32, 64]),
            "backend_params__depth": Int(2, 4),
            "backend_params__dropout": Float(0.0, 0.5),
        }
