"""Image transforms written with Pillow, NumPy and torch only.

skbig does not depend on torchvision, so the few transforms an image
classifier needs (resize, random resized crop, flip, normalize) live here.
Per-image transforms act on ``PIL.Image`` objects because Pillow's resampling
filters are antialiased and fast on uint8 data; the batch path
(:func:`resize_batch`) acts on tensors for in-memory arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from skbig.exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "as_size",
    "center_crop",
    "center_crop_batch",
    "check_center_crop",
    "to_tensor",
    "random_resized_crop",
    "horizontal_flip",
    "normalize",
    "resize_batch",
]

Generator: TypeAlias = torch.Generator | np.random.Generator
Size: TypeAlias = int | Sequence[int]


def as_size(size: Size) -> tuple[int, int]:
    """Return ``size`` as ``(height, width)``.

    Parameters
    ----------
    size : int or (int, int)
        A single int means a square image.

    Returns
    -------
    tuple of int
        ``(height, width)``, both >= 1.

    Raises
    ------
    InvalidParameterError
        If ``size`` is not one or two positive integers.
    """
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    ok = len(pair) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair
    )
    if not ok:
        raise InvalidParameterError(
            f"image_size must be a positive int or a (height, width) pair of "
            f"positive ints, got image_size={size!r}; e.g. pass 224 or (224, 224)"
        )
    return int(pair[0]), int(pair[1])


def to_tensor(img: Image.Image, size: Size) -> torch.Tensor:
    """Resize a PIL image to exactly ``size`` and return a float tensor.

    Resizing happens on the uint8 PIL image (bilinear, antialiased when
    shrinking) before conversion, which is cheaper than resizing floats.

    Parameters
    ----------
    img : PIL.Image.Image
        Any mode; converted to RGB first.
    size : int or (int, int)
        Target ``(height, width)``; the aspect ratio is not kept.

    Returns
    -------
    torch.Tensor
        ``float32`` tensor of shape ``(3, height, width)`` with values in [0, 1].
    """
    height, width = as_size(size)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    array = np.array(img, dtype=np.uint8, copy=True)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def check_center_crop(fraction: object) -> None:
    """Raise unless ``fraction`` is None or a number in (0, 1] (the ``center_crop`` hyper-parameter)."""
    ok = fraction is None or (
        isinstance(fraction, (int, float, np.floating))
        and not isinstance(fraction, bool)
        and 0 < fraction <= 1
    )
    if not ok:
        raise InvalidParameterError(
            f"center_crop must be None (stretch the whole image) or a fraction in (0, 1] "
            f"of the shorter side, got center_crop={fraction!r}; ImageNet models use 0.875"
        )


def _center_box(width: int, height: int, size: Size, fraction: float) -> tuple[float, float, float, float]:
    """The centred ``(left, top, right, bottom)`` box of ``size``'s aspect ratio, scaled by ``fraction``."""
    out_h, out_w = as_size(size)
    scale = min(width / out_w, height / out_h) * fraction
    crop_w, crop_h = out_w * scale, out_h * scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return left, top, left + crop_w, top + crop_h


def center_crop(img: Image.Image, size: Size, fraction: float) -> Image.Image:
    """Resize keeping the aspect ratio and cut out the centre: ImageNet's evaluation transform.

    The result is what "resize the shorter side to ``side / fraction``, then
    crop the central ``size``" gives (224 from 256 for ``fraction=0.875``),
    done as one resampling of the centred region.  Pretrained ImageNet
    models were evaluated on such crops; stretching a 4:3 photo to a square
    instead distorts every object by a third.

    Parameters
    ----------
    img : PIL.Image.Image
        Source image.
    size : int or (int, int)
        Output ``(height, width)``.
    fraction : float
        Share of the largest centred region of ``size``'s aspect ratio that
        is kept, in (0, 1]; 1 keeps the whole shorter side.

    Returns
    -------
    PIL.Image.Image
        Image of exactly ``size``.
    """
    check_center_crop(fraction)
    height, width = as_size(size)
    box = _center_box(img.width, img.height, (height, width), float(fraction))
    return img.resize((width, height), Image.Resampling.BILINEAR, box=box)


def center_crop_batch(x: torch.Tensor, size: Size, fraction: float) -> torch.Tensor:
    """:func:`center_crop` for a ``(N, C, H, W)`` batch of one-size images (whole pixels kept)."""
    if x.ndim != 4:
        raise InvalidInputError(f"center_crop_batch needs an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    check_center_crop(fraction)
    height, width = x.shape[-2:]
    left, top, right, bottom = _center_box(width, height, size, float(fraction))
    rows = slice(round(top), max(round(bottom), round(top) + 1))
    cols = slice(round(left), max(round(right), round(left) + 1))
    return resize_batch(x[:, :, rows, cols], size)


def _uniform(generator: Generator, low: float, high: float) -> float:
    if isinstance(generator, np.random.Generator):
        return float(generator.uniform(low, high))
    return float(torch.empty(()).uniform_(low, high, generator=generator))


def _randint(generator: Generator, low: int, high: int) -> int:
    """Draw an int in ``[low, high]`` (both inclusive)."""
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(low, high + 1))
    return int(torch.randint(low, high + 1, (), generator=generator))


def _crop_box(
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: Generator,
) -> tuple[int, int, int, int]:
    """Pick ``(left, top, w, h)``: 10 random tries, then a centred fallback."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(generator, *scale)
        aspect = math.exp(_uniform(generator, *log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return _randint(generator, 0, width - w), _randint(generator, 0, height - h), w, h
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, max(w, 1), max(h, 1)


def random_resized_crop(
    img: Image.Image,
    size: Size,
    *,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: Generator,
) -> Image.Image:
    """Crop a random area and aspect ratio of ``img``, then resize to ``size``.

    This is the standard training augmentation for image classifiers: it
    shows the network objects at varied scale and framing. The default
    ``scale`` keeps at least 60% of the image, milder than ImageNet's 8%,
    because small fine-tuning sets have objects that fill less of the frame.

    Parameters
    ----------
    img : PIL.Image.Image
        Source image.
    size : int or (int, int)
        Output ``(height, width)``.
    scale : (float, float), default=(0.6, 1.0)
        Range of the crop area as a fraction of the image area.
    ratio : (float, float), default=(3/4, 4/3)
        Range of the crop aspect ratio (width / height), sampled log-uniformly.
    generator : torch.Generator or numpy.random.Generator
        Source of randomness, so crops are reproducible.

    Returns
    -------
    PIL.Image.Image
        Image of exactly ``size``.

    Raises
    ------
    InvalidParameterError
        If ``scale`` is not within (0, 1] or a range is reversed.
    """
    if not (0 < scale[0] <= scale[1] <= 1):
        raise InvalidParameterError(
            f"scale must satisfy 0 < low <= high <= 1, got scale={scale!r}; e.g. (0.6, 1.0)"
        )
    if not (0 < ratio[0] <= ratio[1]):
        raise InvalidParameterError(
            f"ratio must satisfy 0 < low <= high, got ratio={ratio!r}; e.g. (3/4, 4/3)"
        )
    height, width = as_size(size)
    left, top, w, h = _crop_box(img.width, img.height, scale, ratio, generator)
    box = (left, top, left + w, top + h)
    return img.resize((width, height), Image.Resampling.BILINEAR, box=box)


@overload
def horizontal_flip(img: Image.Image) -> Image.Image: ...
@overload
def horizontal_flip(img: torch.Tensor) -> torch.Tensor: ...
def horizontal_flip(img: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
    """Mirror an image left to right.

    The flip is deterministic; callers draw the coin, which keeps all the
    randomness of a pipeline in one generator.

    Parameters
    ----------
    img : PIL.Image.Image or torch.Tensor
        A PIL image, or a tensor whose last dimension is the width.

    Returns
    -------
    PIL.Image.Image or torch.Tensor
        The mirrored image, of the same type.
    """
    if isinstance(img, torch.Tensor):
        return img.flip(-1)
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def normalize(t: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return ``(t - mean) / std`` per channel.

    Pretrained backbones expect inputs standardised with the statistics of
    their training data, so the backend supplies ``mean`` and ``std``.

    Parameters
    ----------
    t : torch.Tensor
        ``(C, H, W)`` or ``(N, C, H, W)`` float tensor.
    mean, std : sequence of float
        One value per channel; every ``std`` must be > 0.

    Returns
    -------
    torch.Tensor
        A new tensor of the same shape.

    Raises
    ------
    InvalidParameterError
        If ``mean``/``std`` do not have one value per channel or a ``std`` <= 0.
    """
    channels = t.shape[-3]
    mean_t = torch.as_tensor(mean, dtype=t.dtype, device=t.device)
    std_t = torch.as_tensor(std, dtype=t.dtype, device=t.device)
    if mean_t.shape != (channels,) or std_t.shape != (channels,):
        raise InvalidParameterError(
            f"mean and std need one value per channel ({channels}), got "
            f"mean={list(mean)!r}, std={list(std)!r}"
        )
    if bool((std_t <= 0).any()):
        raise InvalidParameterError(
            f"every std must be > 0, got std={list(std)!r}; use the backbone's training statistics"
        )
    return (t - mean_t[:, None, None]) / std_t[:, None, None]


def resize_batch(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Resize a batch of images to ``size`` with antialiased bilinear filtering.

    Used for in-memory arrays, where every image already shares one shape and
    resizing the whole batch at once is faster than going through PIL.

    Parameters
    ----------
    x : torch.Tensor
        Float tensor of shape ``(N, C, H, W)``.
    size : int or (int, int)
        Target ``(height, width)``.

    Returns
    -------
    torch.Tensor
        ``(N, C, height, width)``; ``x`` itself when it already has that size.

    Raises
    ------
    InvalidInputError
        If ``x`` is not 4-D.
    """
    if x.ndim != 4:
        raise InvalidInputError(f"resize_batch needs an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    target = as_size(size)
    if tuple(x.shape[-2:]) == target:
        return x
    return F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=True)
