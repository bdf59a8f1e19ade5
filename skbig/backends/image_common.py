"""What image backends share (built-ins and plugins alike): input size, data pipelines, preprocessing.

:class:`ImageBackend` turns what :class:`skbig.ImageClassifier` validated into
batches, in one of two ways:

- **arrays** (``X`` is the float32 ``(n, H, W, C)`` array in [0, 1] returned by
  :func:`skbig.data.image.check_image_inputs`): a
  :class:`~skbig.engine.data.TensorData` that keeps the compact pixels in
  memory; each batch is converted in :meth:`ImageBackend.forward` (channels
  to RGB, resize to the input size, augmentation, normalisation), on the
  training device, so nothing is inflated to the network's resolution ahead
  of time;
- **items** (``X`` is a list of paths, bytes, PIL images or single arrays): a
  :class:`~skbig.engine.data.DatasetData` over
  :class:`~skbig.data.image.ImageDataset`, which decodes lazily in
  ``DataLoader`` workers so memory stays bounded by the batch.

A subclass declares its normalisation (``mean``/``std``), the size used for
file inputs when ``image_size`` is ``None`` and how to build its network.  A
subclass that lists ``center_crop`` among its hyper-parameters gets
ImageNet-style inputs (aspect ratio kept, centre cut out) wherever an image is
not augmented; without it, images are stretched to the input size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skbig.backends.base import ImageClassificationBackend
from skbig.data._image_transforms import (
    as_size,
    center_crop_batch,
    check_center_crop,
    normalize,
    resize_batch,
)
from skbig.data.image import ImageDataset
from skbig.engine.data import DatasetData, TensorData, TrainData
from skbig.exceptions import InvalidParameterError

__all__ = ["AUGMENTATIONS", "ImageBackend", "augment_batch", "check_augment"]

#: Values of ``ImageClassifier(augment=...)``; ``None`` switches augmentation off.
AUGMENTATIONS = ("auto", "crop+flip")
#: ``augment="auto"`` leaves inputs smaller than this (on either side) alone: a
#: 60%-area crop of an 8x8 digit cuts away a fifth of each stroke, and a flip or
#: crop of a one-pixel-high row of tabular features scrambles them.
AUTO_AUGMENT_MIN_SIZE = 16
#: Random resized crop ranges, the same as :func:`skbig.data._image_transforms.random_resized_crop`.
CROP_SCALE = (0.6, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def check_augment(value: Any) -> None:
    """Raise unless ``value`` is a valid ``augment`` setting (see :data:`AUGMENTATIONS`)."""
    if value is not None and value not in AUGMENTATIONS:
        raise InvalidParameterError(
            f"augment must be one of {list(AUGMENTATIONS)} or None, got augment={value!r}; "
            "'auto' crops and flips images of at least 16x16 pixels, None switches it off"
        )


def augment_batch(x: torch.Tensor) -> torch.Tensor:
    """Random resized crop and horizontal flip of every image of a batch, in one resampling.

    The tensor counterpart of what :class:`~skbig.data.image.ImageDataset`
    does to decoded files: each image gets a crop covering 60-100% of its
    area with an aspect ratio in [3/4, 4/3], resized back to its size, and
    is mirrored with probability 1/2.  Draws come from torch's global
    generator on ``x.device``, which ``fit`` seeds from ``random_state``.

    Parameters
    ----------
    x : torch.Tensor
        Float ``(N, C, H, W)`` batch.

    Returns
    -------
    torch.Tensor
        A new batch of the same shape.
    """
    n, device = x.shape[0], x.device
    area = torch.empty(n, device=device).uniform_(*CROP_SCALE)
    ratio = torch.empty(n, device=device).uniform_(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])).exp()
    width = (area * ratio).sqrt().clamp(max=1.0)  # fractions of the image side
    height = (area / ratio).sqrt().clamp(max=1.0)
    flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = (torch.rand(n, device=device) * 2 - 1) * (1 - width)
    theta[:, 1, 1] = height
    theta[:, 1, 2] = (torch.rand(n, device=device) * 2 - 1) * (1 - height)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ImageBackend(ImageClassificationBackend):
    """Base of the built-in image backends; see the module docstring.

    The ``image_size`` hyper-parameter is the network's input ``(height,
    width)`` (an int means square).  ``None`` means: the native size when
    every training image is an in-memory array of one size (e.g. 8x8 for
    ``load_digits``), else :attr:`file_image_size`.  The size is learned by
    :meth:`fit_preprocessing`, saved with the model and applied to every
    later input, whatever its own size.

    Attributes
    ----------
    input_size : tuple of int or None
        ``(height, width)`` fed to the network, set by :meth:`fit_preprocessing`.
    center_crop : float or None
        The ``center_crop`` hyper-parameter as the network was trained with
        it (saved with the model; None for models saved before it existed):
        un-augmented images keep their aspect ratio and the centred region
        covering this fraction of the shorter side is resized to
        :attr:`input_size`; None stretches the whole image.
    augment : str or None
        Set by the estimator before :meth:`make_data`: ``"crop+flip"``
        (random resized crop and horizontal flip of training batches),
        ``"auto"`` (the same when both sides of :attr:`input_size` are at
        least ``AUTO_AUGMENT_MIN_SIZE`` = 16 pixels, nothing below) or ``None``.
    """

    #: Per-channel normalisation of RGB values in [0, 1].
    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.25, 0.25, 0.25)
    #: Input size when ``image_size`` is None and the images are not one-size arrays.
    file_image_size: ClassVar[int] = 64

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        size = self.params["image_size"]
        if size is not None:
            as_size(size)  # fail at construction, naming the rule
        check_center_crop(self.params.get("center_crop"))
        self.input_size: tuple[int, int] | None = None
        self.center_crop: float | None = self.params.get("center_crop")

    def check_int_params(self, *names: str) -> None:
        """Raise unless each hyper-parameter in ``names`` is an int >= 1."""
        for key in names:
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidParameterError(
                    f"backend {self.name!r}: {key} must be an int >= 1, got {key}={value!r}; "
                    f"set it with backend_params__{key}=..."
                )

    def check_dropout(self) -> None:
        """Raise unless the ``dropout`` hyper-parameter is a number in [0, 1)."""
        value = self.params["dropout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidParameterError(
                f"backend {self.name!r}: dropout must be a number in [0, 1), got dropout={value!r}"
            )

    # -- preprocessing ---------------------------------------------------------------
    def fit_preprocessing(self, X: Sequence[Any]) -> None:
        """Fix :attr:`input_size` from ``image_size`` or, if it is None, from ``X``."""
        size = self.params["image_size"]
        if size is not None:
            self.input_size = as_size(size)
            return
        shapes = {item.shape[:2] for item in X if isinstance(item, np.ndarray)}
        all_arrays = all(isinstance(item, np.ndarray) for item in X)
        if all_arrays and len(shapes) == 1:
            self.input_size = as_size(tuple(int(v) for v in shapes.pop()))
        else:
            self.input_size = as_size(self.file_image_size)

    def get_state(self) -> dict[str, Any]:
        return {"input_size": list(self._size()), "center_crop": self.center_crop}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.input_size = as_size(tuple(state["input_size"]))
        self.center_crop = state.get("center_crop")

    def _size(self) -> tuple[int, int]:
        if self.input_size is None:
            raise RuntimeError("fit_preprocessing (or set_state) must run before the backend is used")
        return self.input_size

    def _augmenting(self, train: bool) -> bool:
        check_augment(self.augment)
        if not train or self.augment is None:
            return False
        return self.augment == "crop+flip" or min(self._size()) >= AUTO_AUGMENT_MIN_SIZE

    # -- data ------------------------------------------------------------------------------
    def make_data(self, X: Any, targets: Any = None, *, train: bool = False) -> TrainData:
        """Arrays become in-memory :class:`TensorData`; items a lazily decoding :class:`DatasetData`.

        Parameters
        ----------
        X : numpy.ndarray or list
            float32 ``(n, H, W, C)`` pixels in [0, 1], or a list of items
            accepted by :func:`skbig.data.image.decode_image`.
        targets : sequence of int, optional
            Encoded labels aligned with ``X``.
        train : bool
            Augment (if :attr:`augment` is set) for training.
        """
        augment = self._augmenting(train)
        if isinstance(X, np.ndarray):
            pixels = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            tensors = {"pixels": pixels}
            if targets is not None:
                tensors["y"] = torch.as_tensor(np.asarray(targets), dtype=torch.long)
            if augment:
                tensors["augment"] = torch.ones(len(pixels), dtype=torch.bool)
            return TensorData(tensors)
        dataset = ImageDataset(
            list(X),
            image_size=self._size(),
            mean=self.mean,
            std=self.std,
            augment=augment,
            center_crop=self.center_crop,
            targets=None if targets is None else [int(t) for t in targets],
            seed=int(torch.randint(0, 2**31 - 1, ())) if augment else 0,
        )
        return DatasetData(dataset, ImageDataset.collate)

    def prepare_pixels(self, pixels: torch.Tensor, *, augment: bool = False) -> torch.Tensor:
        """Turn a batch of ``(B, H, W, C)`` pixels in [0, 1] into normalised network input.

        Grayscale is repeated to RGB and alpha dropped, the batch is resized
        to :attr:`input_size` (antialiased; the centre crop of
        :attr:`center_crop` when not augmenting), optionally augmented with
        :func:`augment_batch` and normalised with :attr:`mean`/:attr:`std`.
        """
        x = pixels.permute(0, 3, 1, 2)
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        x = x.float().contiguous()
        if augment:
            x = augment_batch(resize_batch(x, self._size()))
        elif self.center_crop is not None:
            x = center_crop_batch(x, self._size(), self.center_crop)
        else:
            x = resize_batch(x, self._size())
        return normalize(x, self.mean, self.std)

    def forward(self, module: nn.Module, batch: Mapping[str, Any]) -> Any:
        if "pixels" in batch:
            x = self.prepare_pixels(batch["pixels"], augment=module.training and "augment" in batch)
        else:
            x = batch["x"]
        return module(x)
