"""Turn the many shapes of image input into RGB pixels an estimator can use.

An image estimator accepts numeric arrays (stacked or flattened images) and
item lists (file paths, raw bytes, PIL images, single arrays, mixed). This
module validates ``X`` up front, cheaply, so a bad argument fails before
training starts, and decodes items lazily in :class:`ImageDataset` so that
decoding runs in ``DataLoader`` workers and memory is bounded by the batch.

Every error names the offending item as ``X[index]`` and, for files, the
path, because "cannot identify image file" without a name is useless in a
list of ten thousand paths.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from skbig.data._image_transforms import (
    Size,
    as_size,
    center_crop,
    check_center_crop,
    horizontal_flip,
    normalize,
    random_resized_crop,
    resize_batch,
    to_tensor,
)
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "ImageDataset",
    "array_scale",
    "arrays_to_tensor",
    "check_image_inputs",
    "decode_image",
]

#: Largest image (width * height) we decode; bigger files are refused as
#: probable decompression bombs. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``,
#: ~89.5 MP) is also enforced, as an error rather than a warning.
MAX_IMAGE_PIXELS = 100_000_000

_FORMATS = "JPEG, PNG, BMP, GIF or WebP"
_ITEM_TYPES = "a file path (str or pathlib.Path), bytes, a PIL image or a numpy array"
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_PathLike = (str, os.PathLike)
_BytesLike = (bytes, bytearray, memoryview)


# --------------------------------------------------------------------------- #
# Pixel scaling
# --------------------------------------------------------------------------- #


def array_scale(X: Any) -> float:
    """Return the number that maps the pixel values of ``X`` onto [0, 1].

    The rule depends on the dtype, so that common conventions just work:

    - ``bool``: 1.
    - integers (``uint8``, ``int64`` ...): 255 when every value is <= 255,
      65535 when <= 65535 (16-bit images), otherwise the maximum.
    - floats: 1 when every value is <= 1 (already in [0, 1]); otherwise the
      maximum, so ``load_digits().data`` (0..16) maps 16 to white and float
      0..255 data (e.g. MNIST from OpenML) maps 255 to white.

    Compute it once at ``fit`` and pass it as ``scale=`` to
    :func:`check_image_inputs` at ``predict``: a prediction batch must be
    scaled like the training data, whatever its own maximum.

    Parameters
    ----------
    X : array-like of numbers
        The raw training array (any shape).

    Returns
    -------
    float
        A positive divisor.

    Raises
    ------
    InputTypeError
        If ``X`` is not numeric.
    InvalidInputError
        If ``X`` holds NaN/inf or negative values.

    Examples
    --------
    >>> array_scale(np.array([[0, 16.0]]))
    16.0
    """
    x = _numeric_array(X, "X")
    if x.size == 0 or x.dtype == np.bool_:
        return 1.0
    _check_pixel_values(x.reshape(len(x), -1) if x.ndim > 1 else x[None])
    top = float(x.max())
    if np.issubdtype(x.dtype, np.integer):
        return 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return 1.0 if top <= 1 else top


def _numeric_array(X: Any, name: str) -> np.ndarray:
    x = np.asarray(X)
    if x.dtype.kind == "c":
        raise InputTypeError(
            f"{name} holds complex numbers (dtype {x.dtype}), which are not pixels; "
            "pass real intensities, e.g. np.abs(x)"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputTypeError(
            f"{name} must hold numbers to be read as pixels, got dtype {x.dtype}; "
            f"pass images as {_ITEM_TYPES}"
        )
    return x


def _check_pixel_values(rows: np.ndarray, first: int | None = None) -> None:
    """Raise if a row of ``rows`` (one image per row) is non-finite or negative.

    The message names ``X[i]`` for the bad row ``i``, or ``X[first]`` when
    ``rows`` is the single item at position ``first``.
    """
    if np.issubdtype(rows.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if bad.size:
            raise InvalidInputError(
                f"X[{bad[0] if first is None else first}] contains NaN or infinity; pixel "
                "values must be finite. Impute or drop those images first"
            )
    if rows.dtype.kind in "if":
        bad = np.flatnonzero((rows < 0).any(axis=1))
        if bad.size:
            raise InvalidInputError(
                f"X[{bad[0] if first is None else first}] has negative pixel values "
                f"(min={rows[bad[0]].min()!r}); pass raw intensities (uint8 0..255 or "
                "floats >= 0), not standardized data"
            )


# --------------------------------------------------------------------------- #
# Decoding one item
# --------------------------------------------------------------------------- #


def decode_image(item: Any, *, index: int) -> Image.Image:
    """Decode one input item into a fully loaded RGB PIL image.

    EXIF orientation is applied, because phone photos are stored sideways and
    tagged; grayscale, RGBA, palette, CMYK and 16-bit images become RGB (alpha
    is dropped) so a backbone always sees three channels.

    Parameters
    ----------
    item : str, pathlib.Path, bytes, PIL.Image.Image or numpy.ndarray
        A file path, encoded file bytes, a PIL image, or one array of shape
        ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4 (scaled with
        :func:`array_scale`).
    index : int
        Position of ``item`` in ``X``, used in error messages.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, pixels loaded (so truncation has been detected).

    Raises
    ------
    InvalidInputError
        Missing path, directory, unreadable file, not an image, corrupt or
        truncated data, zero-size image, too many pixels, NaN/inf in an array.
    InputTypeError
        If ``item`` is of a type that is not an image.

    Examples
    --------
    >>> decode_image(np.zeros((4, 5), dtype=np.uint8), index=0).size
    (5, 4)
    """
    if isinstance(item, _PathLike):
        img = _open_bytes(_read_path(item, index), index, path=item)
    elif isinstance(item, _BytesLike):
        img = _open_bytes(bytes(item), index, path=None)
    elif isinstance(item, Image.Image):
        img = _load(item, index, path=None)
    elif isinstance(item, np.ndarray):
        img = _array_to_pil(item, index)
    else:
        raise InputTypeError(
            f"X[{index}] has type {type(item).__name__}, which is not an image; "
            f"each item must be {_ITEM_TYPES}"
        )
    return _to_rgb(ImageOps.exif_transpose(img), index)


def _where(index: int, path: Any) -> str:
    return f"X[{index}]" if path is None else f"X[{index}] ({os.fspath(path)!r})"


def _check_path(path: Any, index: int) -> Path:
    p = Path(path)
    if os.fspath(path) == "":
        raise InvalidInputError(f"X[{index}] is an empty path; give the image file's path")
    if p.is_dir():
        raise InvalidInputError(
            f"{_where(index, path)} is a directory, not an image file; list the image files inside it instead"
        )
    if not p.exists() and p.is_symlink():
        raise InvalidInputError(
            f"{_where(index, path)} is a symbolic link that does not resolve (its target is missing, "
            "or the links form a loop); point it at a real image file"
        )
    if not p.exists():
        raise InvalidInputError(
            f"{_where(index, path)}: no such file (relative paths resolve against "
            f"{os.getcwd()!r}); check the path"
        )
    return p


def _read_path(path: Any, index: int) -> bytes:
    p = _check_path(path, index)
    try:
        return p.read_bytes()
    except PermissionError as exc:
        raise InvalidInputError(
            f"{_where(index, path)}: permission denied; make the file readable by this process"
        ) from exc
    except OSError as exc:
        raise InvalidInputError(f"{_where(index, path)}: cannot read the file ({exc})") from exc


def _open_bytes(data: bytes, index: int, *, path: Any) -> Image.Image:
    where = _where(index, path)
    if not data:
        raise InvalidInputError(f"{where} is empty (0 bytes); expected a {_FORMATS} file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(where, exc) from exc
    except UnidentifiedImageError as exc:
        raise InvalidInputError(f"{where} is not a recognised image; expected a {_FORMATS} file") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(f"{where} is a corrupt image file ({exc})") from exc
    return _load(img, index, path=path)


def _bomb_error(where: str, exc: BaseException) -> InvalidInputError:
    return InvalidInputError(
        f"{where} is too large to decode safely ({exc}); images must have at most "
        f"{MAX_IMAGE_PIXELS:,} pixels (and fewer than PIL.Image.MAX_IMAGE_PIXELS). "
        "Downscale the file first"
    )


def _load(img: Image.Image, index: int, *, path: Any) -> Image.Image:
    """Check the size and force decoding, so corrupt or truncated data fails here."""
    where = _where(index, path)
    if img.width == 0 or img.height == 0:
        raise InvalidInputError(f"{where} has zero size {img.size}; images need >= 1x1 pixels")
    if img.width * img.height > MAX_IMAGE_PIXELS:
        raise _bomb_error(where, ValueError(f"size {img.width}x{img.height}"))
    if _closed_before_loading(img):
        raise InvalidInputError(_closed_message(index))
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInputError(
            f"{where} is corrupt or truncated ({exc}); re-export or remove the file"
        ) from exc
    return img


def _array_to_pil(array: np.ndarray, index: int) -> Image.Image:
    x = _numeric_array(array, f"X[{index}]")
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4):
        x = x[..., 0] if x.shape[-1] == 1 else x
    elif x.ndim != 2:
        raise InvalidInputError(
            f"X[{index}] is an array of shape {x.shape}; a single image must be "
            "(H, W) or (H, W, C) with C in 1, 3, 4"
        )
    if x.size == 0:
        raise InvalidInputError(f"X[{index}] has zero size {x.shape}; images need >= 1x1 pixels")
    _check_pixel_values(x.reshape(1, -1), first=index)
    pixels = np.clip(x.astype(np.float64) / array_scale(x) * 255.0, 0, 255)
    return Image.fromarray(np.rint(pixels).astype(np.uint8))


def _file_scale(mode: str, values: np.ndarray) -> float:
    """White for a decoded high-bit-depth image: fixed by its bit depth, never by its content.

    A 16-bit file is scaled by 65535 even when its brightest pixel is 255, so two
    files that differ in one pixel decode alike (``array_scale``'s content rule
    suits arrays whose depth is unknown, not files whose depth is stated).
    """
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "I":  # 32-bit integer pixels: 16-bit content unless it is brighter
        return max(65535.0, float(values.max(initial=0)))
    return array_scale(values)  # "F": float pixels, 1 or their maximum


def _to_rgb(img: Image.Image, index: int) -> Image.Image:
    if img.mode in _SIXTEEN_BIT_MODES:  # 16-bit or float: map onto 0..255 first
        values = np.asarray(img)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise InvalidInputError(f"X[{index}] contains NaN or infinity pixels")
        values = np.clip(values, 0, None)
        img = Image.fromarray(np.rint(values / _file_scale(img.mode, values) * 255).astype(np.uint8))
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # resolves palette transparency without a warning
    return img if img.mode == "RGB" else img.convert("RGB")


# --------------------------------------------------------------------------- #
# Validating X as a whole
# --------------------------------------------------------------------------- #


def check_image_inputs(
    X: Any,
    *,
    image_shape: Sequence[int] | None = None,
    scale: float | None = None,
) -> tuple[str, object]:
    """Validate ``X`` without decoding files and say which pipeline to use.

    Numeric arrays go down a fast in-memory path; everything else becomes a
    list of items decoded lazily by :class:`ImageDataset`. Paths are checked
    for existence here (a ``stat``, no decoding) so a typo fails before
    training rather than halfway through the first epoch.

    Parameters
    ----------
    X : array-like, list, tuple or pandas Series
        ``(n, H, W)`` or ``(n, H, W, C)`` numeric array with C in 1, 3, 4;
        ``(n, H*W*C)`` flattened images with ``image_shape``; or a sequence of
        paths, bytes, PIL images and single arrays (mixing is allowed).
    image_shape : (H, W) or (H, W, C), optional
        Required for 2-D input; for 3-D/4-D input it must match ``X.shape``.
    scale : float, optional
        Divisor from :func:`array_scale` computed at ``fit``; when ``None`` it
        is computed from ``X`` itself. Values are clipped to [0, 1] afterwards.

    Returns
    -------
    kind : {"array", "items"}
        Which pipeline applies.
    data : numpy.ndarray or list
        For ``"array"``, float32 ``(n, H, W, C)`` in [0, 1]; for ``"items"``,
        the list of items.

    Raises
    ------
    InvalidInputError
        Empty ``X``, bad shape, NaN/inf or negative values, a ``None`` item,
        a missing path or a directory.
    InvalidParameterError
        ``image_shape`` malformed or inconsistent with ``X``.
    InputTypeError
        ``X`` or one of its items has an unsupported type.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> kind, data = check_image_inputs(load_digits().data, image_shape=(8, 8))
    >>> kind, data.shape, float(data.max())
    ('array', (1797, 8, 8, 1), 1.0)
    """
    if hasattr(X, "iloc") and getattr(X, "ndim", 2) == 1:  # pandas Series
        X = X.tolist()
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
        X = X.tolist()
    if isinstance(X, (list, tuple)) and X and isinstance(X[0], (list, tuple)):
        X = _nested_to_array(X)
    if isinstance(X, (list, tuple)):
        return "items", _check_items(list(X))
    if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        return "array", _check_array(X, image_shape, scale)
    raise InputTypeError(
        f"X must be an array of images or a list of images, got {type(X).__name__}; "
        f"each image may be {_ITEM_TYPES} (wrap a single image in a list)"
    )


def _nested_to_array(X: Sequence[Any]) -> np.ndarray:
    """Nested lists of numbers are flattened or stacked images."""
    try:
        return np.asarray(X)
    except ValueError as exc:
        raise InvalidInputError(
            f"X is a nested list that is not rectangular ({exc}); every image must have "
            "the same shape, or pass a flat list of images"
        ) from exc


def _check_items(items: list[Any]) -> list[Any]:
    if not items:
        raise InvalidInputError("X is empty; pass at least one image")
    for index, item in enumerate(items):
        if item is None:
            raise InvalidInputError(f"X[{index}] is None; remove it or give an image")
        if isinstance(item, _PathLike):
            _check_path(item, index)
        elif isinstance(item, np.ndarray):
            _array_to_pil(item, index)  # small and in memory: validate now
        elif isinstance(item, Image.Image) and _closed_before_loading(item):
            raise InvalidInputError(_closed_message(index))
        elif not isinstance(item, (*_BytesLike, Image.Image)):
            raise InputTypeError(
                f"X[{index}] has type {type(item).__name__}, which is not an image; "
                f"each item must be {_ITEM_TYPES}"
            )
    return items


def _warn_if_scaled_unlike_training(x: np.ndarray, scale: float) -> None:
    """Warn when prediction pixels use another range than the training pixels (0..1 vs 0..255).

    They are divided by the training data's ``scale`` either way (a batch's own
    maximum says nothing about white), which these two mix-ups would ruin.
    """
    peak = float(x.max(initial=0))
    if x.dtype.kind == "f" and scale > 1 and 0 < peak <= 1:
        warnings.warn(
            f"X's pixels lie in [0, 1], but the model was fitted on pixels up to {scale:g}, "
            f"so these are divided by {scale:g} like the training data and come out nearly black; "
            "pass them as the training data was (e.g. x * 255 for 8-bit training images)",
            UserWarning,
            stacklevel=4,
        )
    elif scale == 1 and peak > 1:
        warnings.warn(
            f"X has pixels up to {peak:g}, but the model was fitted on pixels in [0, 1], so values "
            "above 1 are clipped to white; pass them as the training data was (e.g. x / 255)",
            UserWarning,
            stacklevel=4,
        )


def _closed_before_loading(img: Image.Image) -> bool:
    """A lazily opened PIL image whose file is closed: its pixels can no longer be read.

    The common ``with Image.open(p) as im: images.append(im)`` leaves these.
    """
    return getattr(img, "_im", True) is None and getattr(img, "fp", True) is None


def _closed_message(index: int) -> str:
    return (
        f"X[{index}] is a PIL image whose file was closed before its pixels were read; "
        "load it inside the with-block (im.load(), or keep im.copy())"
    )


def _check_array(X: Any, image_shape: Sequence[int] | None, scale: float | None) -> np.ndarray:
    x = _numeric_array(X, "X")
    if x.ndim == 0 or len(x) == 0:
        raise InvalidInputError(f"X is empty (shape {x.shape}); pass at least one image")
    x = _reshape_images(x, image_shape)
    if 0 in x.shape:
        raise InvalidInputError(f"X has zero-size images (shape {x.shape}); images need >= 1x1")
    _check_pixel_values(x.reshape(len(x), -1))
    divisor = array_scale(x) if scale is None else float(scale)
    if not divisor > 0:
        raise InvalidParameterError(f"scale must be > 0, got scale={scale!r}; use array_scale(X)")
    if scale is not None:
        _warn_if_scaled_unlike_training(x, divisor)
    if x.dtype.kind == "f" and x.dtype.itemsize > 4:
        # Scale and clip in the input's precision: values beyond float32's range overflow the cast.
        wide = x / divisor
        return np.clip(wide, 0.0, 1.0, out=wide).astype(np.float32)
    out = x.astype(np.float32) / np.float32(divisor)
    return np.clip(out, 0.0, 1.0, out=out)


def _reshape_images(x: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray:
    """Return ``x`` as ``(n, H, W, C)``."""
    shape = None if image_shape is None else _check_image_shape(image_shape)
    if x.ndim == 2:
        return _unflatten(x, shape)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(
            f"X has shape {x.shape}; expected (n, H, W), (n, H, W, C) with C in 1, 3, 4, "
            "or (n, H*W*C) with image_shape"
        )
    if shape is not None and shape != x.shape[1 : 1 + len(shape)]:
        raise InvalidParameterError(
            f"image_shape={tuple(image_shape or ())} does not match X.shape={x.shape}; "
            "drop image_shape for 3-D/4-D arrays or make it equal to X.shape[1:]"
        )
    return x


def _unflatten(x: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    if shape is None:
        raise InvalidParameterError(
            f"X is 2-D with shape {x.shape}, so each row must be a flattened image; "
            "pass image_shape=(H, W) or (H, W, C), e.g. image_shape=(8, 8) for load_digits"
        )
    if int(np.prod(shape)) != x.shape[1]:
        raise InvalidParameterError(
            f"image_shape={shape} holds {int(np.prod(shape))} values but X has "
            f"{x.shape[1]} features per row; H*W*C must equal X.shape[1]"
        )
    return x.reshape(len(x), shape[0], shape[1], shape[2] if len(shape) == 3 else 1)


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else ()
    ok = len(shape) in (2, 3) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in shape
    )
    if not ok or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
        raise InvalidParameterError(
            f"image_shape must be (H, W) or (H, W, C) with positive ints and C in 1, 3, 4, "
            f"got image_shape={image_shape!r}"
        )
    return tuple(int(v) for v in shape)


# --------------------------------------------------------------------------- #
# Tensors for the network
# --------------------------------------------------------------------------- #


def arrays_to_tensor(
    x: np.ndarray,
    *,
    image_size: Size,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Turn validated in-memory images into a normalized network batch.

    The fast path for array input: no PIL round trip. Call it per batch,
    since the result is float32 at the backbone's resolution.

    Parameters
    ----------
    x : numpy.ndarray
        float ``(n, H, W, C)`` in [0, 1], as returned by
        :func:`check_image_inputs`; C=1 is repeated to 3 channels, C=4 drops alpha.
    image_size : int or (int, int)
        Backbone input ``(height, width)``.
    mean, std : sequence of float
        Per-channel normalization statistics (3 values each).

    Returns
    -------
    torch.Tensor
        float32 ``(n, 3, height, width)``.

    Raises
    ------
    InvalidInputError
        If ``x`` is not ``(n, H, W, C)`` with C in 1, 3, 4.
    """
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(
            f"arrays_to_tensor needs (n, H, W, C) with C in 1, 3, 4, got shape {x.shape}; "
            "pass the array returned by check_image_inputs"
        )
    t = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32).permute(0, 3, 1, 2)
    t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t[:, :3]
    return normalize(resize_batch(t.contiguous(), image_size), mean, std)


class ImageDataset(torch.utils.data.Dataset):
    """Lazily decoded images for a ``DataLoader``.

    Items are decoded in ``__getitem__``, so with ``num_workers > 0`` the
    decoding runs in worker processes and only one batch of pixels is in
    memory at a time. A decoding error surfaces in the main process as the
    same :class:`~skbig.exceptions.InvalidInputError` (PyTorch re-raises the
    worker's exception type and message).

    Augmentation is reproducible: item ``i`` in epoch ``e`` draws from a
    generator seeded by ``(seed, e, i)``, independent of worker count and
    order. Call :meth:`set_epoch` before each epoch to vary the crops (not
    seen by ``persistent_workers=True`` loaders, which keep their copy).

    Parameters
    ----------
    items : list
        Items accepted by :func:`decode_image`.
    image_size : int or (int, int)
        Output ``(height, width)``.
    mean, std : sequence of float
        Per-channel normalization statistics (3 values each).
    augment : bool, default=False
        Random resized crop and horizontal flip; for training only.
    center_crop : float, optional
        Without augmentation, keep the aspect ratio and take the centred
        region covering this fraction of the shorter side
        (:func:`~skbig.data._image_transforms.center_crop`); None stretches
        the whole image to ``image_size``.
    targets : sequence of int, optional
        Encoded class labels aligned with ``items``.
    seed : int, default=0
        Seed of the augmentation.

    Examples
    --------
    >>> ds = ImageDataset([np.zeros((4, 4), np.uint8)], image_size=8,
    ...                   mean=[0.5] * 3, std=[0.5] * 3, targets=[1])
    >>> ds[0]["x"].shape, int(ds[0]["y"])
    (torch.Size([3, 8, 8]), 1)
    """

    def __init__(
        self,
        items: list[Any],
        *,
        image_size: int | tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        center_crop: float | None = None,
        targets: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        if targets is not None and len(targets) != len(items):
            raise InvalidInputError(
                f"targets must align with items, got {len(targets)} targets for "
                f"{len(items)} items; pass one label per image"
            )
        normalize(torch.zeros(3, 1, 1), mean, std)  # validate once, fail early
        check_center_crop(center_crop)
        self.items = list(items)
        self.image_size = as_size(image_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.augment = augment
        self.center_crop = center_crop
        self.targets = None if targets is None else [int(t) for t in targets]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentation draws of ``epoch`` (call before iterating)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        img = decode_image(self.items[index], index=index)
        if self.augment:
            generator = np.random.default_rng([self.seed, self.epoch, index])
            img = random_resized_crop(img, self.image_size, generator=generator)
            if generator.random() < 0.5:
                img = horizontal_flip(img)
        elif self.center_crop is not None:
            img = center_crop(img, self.image_size, self.center_crop)
        sample = {"x": normalize(to_tensor(img, self.image_size), self.mean, self.std)}
        if self.targets is not None:
            sample["y"] = torch.tensor(self.targets[index], dtype=torch.long)
        return sample

    @staticmethod
    def collate(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Stack samples into ``{"x": (B, 3, H, W), "y": (B,)}`` (``y`` if present)."""
        batch = {"x": torch.stack([s["x"] for s in samples])}
        if samples and "y" in samples[0]:
            batch["y"] = torch.stack([s["y"] for s in samples])
        return batch
