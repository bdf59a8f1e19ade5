"""Image input handling: decoding, validation, transforms and the dataset.

The pictures are real photos from the bundled hymenoptera sample, re-encoded
into other formats and modes with Pillow where a test needs them.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

import skbig.data.image as image_module
from skbig.data._image_transforms import (
    center_crop,
    center_crop_batch,
    horizontal_flip,
    normalize,
    random_resized_crop,
    resize_batch,
    to_tensor,
)
from skbig.data.image import (
    ImageDataset,
    array_scale,
    arrays_to_tensor,
    check_image_inputs,
    decode_image,
)
from skbig.datasets._image_samples import load_hymenoptera_sample
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError

pytestmark = pytest.mark.filterwarnings("error")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def photo_path() -> str:
    return load_hymenoptera_sample("train")[0][0]


@pytest.fixture(scope="module")
def photo(photo_path: str) -> np.ndarray:
    return np.asarray(decode_image(photo_path, index=0))


def _pil(path: str) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img


def _save(img: Image.Image, path: Path, **kwargs: object) -> str:
    img.save(path, **kwargs)
    return str(path)


# --------------------------------------------------------------------------- #
# decode_image: accepted forms, formats, orientation, modes
# --------------------------------------------------------------------------- #


def test_every_input_form_gives_the_same_tensor(photo_path: str, photo: np.ndarray) -> None:
    forms = {
        "str": photo_path,
        "pathlib": Path(photo_path),
        "bytes": Path(photo_path).read_bytes(),
        "bytearray": bytearray(Path(photo_path).read_bytes()),
        "pil": _pil(photo_path),
        "array": photo,
    }
    tensors = {name: to_tensor(decode_image(item, index=0), 64) for name, item in forms.items()}
    for name, tensor in tensors.items():
        assert tensor.shape == (3, 64, 64), name
        assert torch.equal(tensor, tensors["str"]), name


@pytest.mark.parametrize(
    "fmt, suffix, lossless",
    [
        ("PNG", ".png", True),
        ("BMP", ".bmp", True),
        ("GIF", ".gif", False),
        ("WEBP", ".webp", False),
        ("JPEG", ".jpg", False),
    ],
    ids=["png", "bmp", "gif", "webp", "jpeg"],
)
def test_formats_of_one_photo_decode(
    tmp_path: Path, photo: np.ndarray, fmt: str, suffix: str, lossless: bool
) -> None:
    path = _save(Image.fromarray(photo), tmp_path / f"photo{suffix}", format=fmt)
    decoded = np.asarray(decode_image(path, index=0))
    assert decoded.shape == photo.shape
    if lossless:
        np.testing.assert_array_equal(decoded, photo)
    else:  # lossy re-encodings stay close to the source picture
        assert np.abs(decoded.astype(int) - photo).mean() < 20


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 40 wide x 20 high: left half red, right half blue. Orientation 6 means
    # "rotate 90 degrees clockwise to display", which puts the left half on top.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(Image.fromarray(pixels), tmp_path / "rotated.jpg", exif=exif, quality=95)

    decoded = decode_image(path, index=0)

    assert decoded.size == (20, 40)  # (width, height): rotated
    top, bottom = np.asarray(decoded)[5, 10], np.asarray(decoded)[35, 10]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def _gray_16bit(photo: np.ndarray) -> Image.Image:
    return Image.fromarray(photo[..., 0].astype(np.uint16) * 257)  # full 16-bit range


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: Image.fromarray(a).convert("L"),
        lambda a: Image.fromarray(a).convert("LA"),
        lambda a: Image.fromarray(a).convert("RGBA"),
        lambda a: Image.fromarray(a).convert("P"),
        lambda a: Image.fromarray(a).convert("1"),
        _gray_16bit,
    ],
    ids=["grayscale", "gray-alpha", "rgba", "palette", "bilevel", "16-bit"],
)
def test_image_modes_become_rgb(tmp_path: Path, photo: np.ndarray, convert) -> None:
    source = convert(photo)
    path = _save(source, tmp_path / "mode.png")
    decoded = decode_image(path, index=0)
    assert decoded.mode == "RGB"
    assert decoded.size == source.size


def test_sixteen_bit_and_grayscale_values_are_kept(tmp_path: Path, photo: np.ndarray) -> None:
    path = _save(_gray_16bit(photo), tmp_path / "gray16.png")
    decoded = np.asarray(decode_image(path, index=0))
    np.testing.assert_array_equal(decoded[..., 1], photo[..., 0])  # 65535 -> 255, not clipped
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])


@pytest.mark.parametrize("brightest", [255, 256, 65535])
def test_sixteen_bit_files_are_scaled_by_their_depth_not_their_brightest_pixel(
    tmp_path: Path, brightest: int
) -> None:
    # Two files that differ in one pixel must decode alike: 200 of 65535 is nearly black.
    pixels = np.full((4, 4), 200, dtype=np.uint16)
    pixels[0, 0] = brightest
    decoded = np.asarray(decode_image(_save(Image.fromarray(pixels), tmp_path / "dark.png"), index=0))
    assert decoded[2, 2, 0] == round(200 / 65535 * 255) == 1
    assert decoded[0, 0, 0] == round(brightest / 65535 * 255)


def test_a_pil_image_closed_before_loading_is_named(photo_path: str) -> None:
    with Image.open(photo_path) as img:
        pass  # the common with-block that keeps the image but closes its file
    with pytest.raises(InvalidInputError, match=r"X\[1\] is a PIL image whose file was closed"):
        check_image_inputs([photo_path, img])
    with pytest.raises(InvalidInputError, match=r"X\[0\] is a PIL image whose file was closed"):
        decode_image(img, index=0)
    with Image.open(photo_path) as loaded:
        loaded.load()
    assert decode_image(loaded, index=0).size == loaded.size  # loaded in time: fine


@pytest.mark.parametrize(
    ("scale", "batch", "fragment"),
    [
        (255.0, np.full((1, 4, 4, 3), 0.5, dtype=np.float32), r"pixels lie in \[0, 1\].*up to 255"),
        (1.0, np.full((1, 4, 4, 3), 200, dtype=np.uint8), r"pixels up to 200.*fitted on pixels in \[0, 1\]"),
    ],
    ids=["unit-floats-after-8-bit", "8-bit-after-unit-floats"],
)
def test_prediction_pixels_in_another_range_than_training_warn(scale, batch, fragment) -> None:
    with pytest.warns(UserWarning, match=fragment):
        check_image_inputs(batch, scale=scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_image_inputs(batch, scale=float(batch.max()) if scale == 1.0 else 1.0)


def test_palette_with_transparency_does_not_warn(tmp_path: Path, photo: np.ndarray) -> None:
    palette = Image.fromarray(photo).convert("P")
    path = _save(palette, tmp_path / "transparent.png", transparency=0)
    assert decode_image(path, index=0).mode == "RGB"  # filterwarnings=error guards the warning


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path, photo: np.ndarray) -> None:
    path = _save(Image.fromarray(photo).convert("CMYK"), tmp_path / "cmyk.jpg")
    decoded = decode_image(path, index=0)
    assert decoded.mode == "RGB"
    assert np.abs(np.asarray(decoded).astype(int) - photo).mean() < 20


def test_one_pixel_image_is_valid(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (1, 1), (10, 200, 30)), tmp_path / "dot.png")
    decoded = decode_image(path, index=0)
    assert decoded.size == (1, 1)
    tensor = to_tensor(decoded, 16)
    assert tensor.shape == (3, 16, 16)
    assert torch.allclose(tensor[:, 8, 8], torch.tensor([10, 200, 30]) / 255.0)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((3, 4), 16.0), 255),  # float max 16: its own max is white
        (np.full((3, 4, 1), 0.5), 128),  # float already in [0, 1]
        (np.full((3, 4, 3), 200, dtype=np.int64), 200),  # 8-bit values in int64
        (np.full((3, 4, 4), 255, dtype=np.uint8), 255),  # RGBA: alpha dropped
    ],
    ids=["float-0-16", "float-0-1", "int64", "uint8-rgba"],
)
def test_single_arrays_decode_with_array_scale(array: np.ndarray, expected: int) -> None:
    decoded = np.asarray(decode_image(array, index=0))
    assert decoded.shape == (3, 4, 3)
    assert (decoded == expected).all()


# --------------------------------------------------------------------------- #
# decode_image: errors name the item and say what is wrong
# --------------------------------------------------------------------------- #


def test_truncated_jpeg_is_reported_with_its_path(tmp_path: Path, photo_path: str) -> None:
    data = Path(photo_path).read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=r"X\[7\] \(.*broken\.jpg'\).*truncated") as info:
        decode_image(str(broken), index=7)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    "make, exc_type, fragment",
    [
        (
            lambda d: _write(d / "notes.jpg", b"hello, not a picture"),
            InvalidInputError,
            r"X\[3\] \(.*notes\.jpg'\) is not a recognised image",
        ),
        (
            lambda d: str(d / "missing.png"),
            InvalidInputError,
            r"X\[3\] .*missing\.png.*no such file",
        ),
        (lambda d: str(d), InvalidInputError, r"X\[3\] .* is a directory"),
        (lambda d: _write(d / "empty.png", b""), InvalidInputError, r"X\[3\] .*empty \(0 bytes\)"),
        (lambda d: b"\x89PNG garbage", InvalidInputError, r"X\[3\] is not a recognised image"),
        (lambda d: Image.new("RGB", (0, 0)), InvalidInputError, r"X\[3\] has zero size"),
        (lambda d: np.array([[0.1, np.nan]]), InvalidInputError, r"X\[3\] contains NaN"),
        (lambda d: np.array([[1.0, np.inf]]), InvalidInputError, r"X\[3\] contains NaN or inf"),
        (lambda d: np.zeros((2, 2, 2)), InvalidInputError, r"X\[3\] is an array of shape"),
        (lambda d: 42, InputTypeError, r"X\[3\] has type int, which is not an image"),
        (lambda d: "", InvalidInputError, r"X\[3\] is an empty path"),
    ],
    ids=[
        "text-file",
        "missing-path",
        "directory",
        "empty-file",
        "garbage-bytes",
        "zero-size",
        "nan-array",
        "inf-array",
        "two-channel-array",
        "int",
        "empty-path",
    ],
)
def test_decode_errors(tmp_path: Path, make, exc_type: type, fragment: str) -> None:
    with pytest.raises(exc_type, match=fragment):
        decode_image(make(tmp_path), index=3)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_permission_denied_is_reported(
    tmp_path: Path, photo_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: the test suite may run as root, for whom chmod 000 still reads.
    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(InvalidInputError, match=r"X\[0\] .* permission denied") as info:
        decode_image(photo_path, index=0)
    assert isinstance(info.value.__cause__, PermissionError)


@pytest.mark.parametrize("side", [13, 20], ids=["above-warning-limit", "above-error-limit"])
def test_decompression_bomb_is_an_error_not_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    # Pillow warns above MAX_IMAGE_PIXELS and fails above twice that; shrink
    # the limit so a tiny file plays the bomb. Both cases must be our error.
    path = _save(Image.new("L", (side, side)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a warning must not escape even when not an error
        with pytest.raises(InvalidInputError, match=r"X\[2\] .*bomb\.png.* too large"):
            decode_image(path, index=2)
    assert caught == []


def test_our_pixel_limit_applies_to_pil_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(InvalidInputError, match=r"X\[0\] is too large.*at most 10 pixels"):
        decode_image(Image.new("RGB", (4, 4)), index=0)


# --------------------------------------------------------------------------- #
# check_image_inputs and array_scale
# --------------------------------------------------------------------------- #


def test_uint8_arrays_are_scaled_by_255() -> None:
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    kind, data = check_image_inputs(x)
    assert kind == "array"
    assert data.dtype == np.float32 and data.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(data, x / 255.0, rtol=1e-6)


def test_load_digits_with_image_shape() -> None:
    digits = load_digits()
    kind, data = check_image_inputs(digits.data, image_shape=(8, 8))
    assert kind == "array" and data.shape == (1797, 8, 8, 1)
    assert data.min() == 0.0 and data.max() == 1.0  # 0..16 spans the full range
    np.testing.assert_allclose(data[0, :, :, 0], digits.images[0] / 16.0, rtol=1e-6)


def test_fit_scale_is_reused_at_predict() -> None:
    digits = load_digits().data
    scale = array_scale(digits)
    dim_batch = digits[:5] / 2  # its own max is 8, but it must still be scaled by 16
    _, data = check_image_inputs(dim_batch, image_shape=(8, 8, 1), scale=scale)
    np.testing.assert_allclose(data.reshape(5, -1), dim_batch / 16.0, rtol=1e-6)
    _, brighter = check_image_inputs(digits[:5] * 2, image_shape=(8, 8), scale=scale)
    assert brighter.max() == 1.0  # clipped, not above 1


@pytest.mark.parametrize(
    "x, expected",
    [
        (np.array([0, 255], dtype=np.uint8), 255.0),
        (np.array([0, 200], dtype=np.int64), 255.0),
        (np.array([0, 4000], dtype=np.uint16), 65535.0),
        (np.array([0.0, 0.5]), 1.0),
        (np.array([0.0, 16.0]), 16.0),
        (np.array([0.0, 255.0], dtype=np.float32), 255.0),
        (np.array([True, False]), 1.0),
    ],
    ids=["uint8", "int64-8bit", "uint16", "float-unit", "float-digits", "float-255", "bool"],
)
def test_array_scale_rules(x: np.ndarray, expected: float) -> None:
    assert array_scale(x) == expected


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (3, 4, 5), elements=st.floats(0, 1e6)))
def test_array_path_always_lands_in_unit_interval(x: np.ndarray) -> None:
    _, data = check_image_inputs(x)
    assert data.shape == (3, 4, 5, 1)
    assert data.min() >= 0.0 and data.max() <= 1.0


@pytest.mark.parametrize(
    "X, kwargs, exc_type, fragment",
    [
        (np.zeros((3, 64)), {}, InvalidParameterError, r"pass image_shape=\(H, W\) or \(H, W, C\)"),
        (
            np.zeros((3, 64)),
            {"image_shape": (8, 7)},
            InvalidParameterError,
            r"image_shape=\(8, 7\) holds 56 values but X has 64",
        ),
        (np.zeros((3, 64)), {"image_shape": (8, 8, 2)}, InvalidParameterError, r"C in 1, 3, 4"),
        (
            np.zeros((3, 8, 8)),
            {"image_shape": (4, 16)},
            InvalidParameterError,
            r"does not match X.shape",
        ),
        (np.zeros((0, 8, 8)), {}, InvalidInputError, r"X is empty"),
        ([], {}, InvalidInputError, r"X is empty"),
        (np.zeros((2, 2, 2, 2, 2)), {}, InvalidInputError, r"X has shape \(2, 2, 2, 2, 2\)"),
        (np.zeros((2, 4, 4, 2)), {}, InvalidInputError, r"C in 1, 3, 4"),
        (
            np.array([[0.0] * 4, [0.0, np.nan, 0, 0]]),
            {"image_shape": (2, 2)},
            InvalidInputError,
            r"X\[1\] contains NaN",
        ),
        (
            np.array([[0.0] * 4, [0.0, -1.0, 0, 0]]),
            {"image_shape": (2, 2)},
            InvalidInputError,
            r"X\[1\] has negative pixel values",
        ),
        ([b"\x89PNG", None], {}, InvalidInputError, r"X\[1\] is None"),
        ([b"\x89PNG", 3.5], {}, InputTypeError, r"X\[1\] has type float"),
        (
            ["definitely/not/here.png"],
            {},
            InvalidInputError,
            r"X\[0\] .*not/here\.png.*no such file",
        ),
        ("photo.jpg", {}, InputTypeError, r"got str.*wrap a single image in a list"),
        (Image.new("RGB", (2, 2)), {}, InputTypeError, r"wrap a single image in a list"),
        (np.array([], dtype=str), {}, InvalidInputError, r"X is empty"),
    ],
    ids=[
        "2d-without-shape",
        "shape-vs-features",
        "bad-channels",
        "shape-vs-3d",
        "empty-array",
        "empty-list",
        "5d",
        "two-channels",
        "nan-row",
        "negative-row",
        "none-item",
        "float-item",
        "missing-path",
        "bare-string",
        "bare-pil",
        "empty-string-array",
    ],
)
def test_check_image_inputs_errors(X, kwargs: dict, exc_type: type, fragment: str) -> None:
    with pytest.raises(exc_type, match=fragment):
        check_image_inputs(X, **kwargs)


def test_items_are_checked_without_decoding(tmp_path: Path, photo_path: str) -> None:
    # A corrupt file passes the up-front check (no decoding); it fails later, lazily.
    corrupt = _write(tmp_path / "corrupt.jpg", b"not a jpeg")
    kind, items = check_image_inputs([photo_path, corrupt])
    assert kind == "items" and items == [photo_path, corrupt]


def test_mixed_items_and_series_are_items(photo_path: str, photo: np.ndarray) -> None:
    pd = pytest.importorskip("pandas")
    mixed = [photo_path, Path(photo_path), Path(photo_path).read_bytes(), _pil(photo_path), photo]
    kind, items = check_image_inputs(mixed)
    assert kind == "items" and len(items) == 5
    kind, items = check_image_inputs(pd.Series([photo_path, photo_path]))
    assert kind == "items" and items == [photo_path, photo_path]
    kind, items = check_image_inputs(np.array([photo_path]))
    assert kind == "items" and items == [photo_path]


# --------------------------------------------------------------------------- #
# Transforms
# --------------------------------------------------------------------------- #


def test_to_tensor_resizes_to_exact_size(photo_path: str) -> None:
    tensor = to_tensor(decode_image(photo_path, index=0), (32, 48))
    assert tensor.shape == (3, 32, 48) and tensor.dtype == torch.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0


def _striped(width: int, height: int) -> Image.Image:
    """A gray image with a black border 1/8 of the shorter side wide and a white centre square."""
    array = np.full((height, width, 3), 128, np.uint8)
    border = min(width, height) // 8
    array[:border], array[-border:], array[:, :border], array[:, -border:] = 0, 0, 0, 0
    cy, cx, r = height // 2, width // 2, min(width, height) // 8
    array[cy - r : cy + r, cx - r : cx + r] = 255
    return Image.fromarray(array)


@pytest.mark.parametrize("width, height", [(320, 240), (240, 320), (256, 256)])
def test_center_crop_keeps_the_aspect_ratio_and_drops_the_border(width: int, height: int) -> None:
    crop = np.asarray(center_crop(_striped(width, height), 64, 0.75))
    assert crop.shape == (64, 64, 3)
    assert crop.min() > 100  # the black border (1/8 of each side) is cut away with 0.75
    white = np.argwhere(crop[..., 0] > 200)
    side = white.max(axis=0) - white.min(axis=0) + 1
    # the centre square stays square whatever the photo's aspect ratio: r / (0.75 * short / 2) of 64
    assert abs(side[0] - side[1]) <= 1 and abs(side[0] - 64 / 3) <= 2
    whole = np.asarray(center_crop(_striped(width, height), 64, 1.0))
    assert whole[:, 0].max() < 30 or whole[0].max() < 30  # fraction 1 keeps the shorter side's border


def test_center_crop_of_a_batch_matches_the_pil_crop() -> None:
    img = _striped(320, 240)
    pil = torch.from_numpy(np.array(center_crop(img, (48, 64), 0.875))).permute(2, 0, 1).float() / 255
    batch = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 255
    tensor = center_crop_batch(batch, (48, 64), 0.875)[0]
    assert tensor.shape == (3, 48, 64)
    assert float((tensor - pil).abs().mean()) < 0.02  # one resampling each; edges differ by a pixel


@pytest.mark.parametrize("fraction", [0, 1.5, -0.2, True, "0.875"])
def test_center_crop_rejects_fractions_outside_the_unit_interval(photo_path: str, fraction) -> None:
    with pytest.raises(InvalidParameterError, match=r"center_crop must be None .* or a fraction in \(0, 1\]"):
        center_crop(decode_image(photo_path, index=0), 32, fraction)


@pytest.mark.parametrize(
    "make_generator",
    [lambda: np.random.default_rng(5), lambda: torch.Generator().manual_seed(5)],
    ids=["numpy", "torch"],
)
def test_random_resized_crop_is_reproducible(photo_path: str, make_generator) -> None:
    img = decode_image(photo_path, index=0)
    crops = [np.asarray(random_resized_crop(img, 40, generator=make_generator())) for _ in range(2)]
    other = np.asarray(random_resized_crop(img, 40, generator=make_generator(), scale=(0.1, 0.2)))
    assert crops[0].shape == (40, 40, 3)
    np.testing.assert_array_equal(crops[0], crops[1])
    assert not np.array_equal(crops[0], other)


def test_random_resized_crop_rejects_bad_scale(photo_path: str) -> None:
    img = decode_image(photo_path, index=0)
    with pytest.raises(InvalidParameterError, match=r"scale must satisfy.*got scale=\(0.0, 1.0\)"):
        random_resized_crop(img, 8, scale=(0.0, 1.0), generator=np.random.default_rng(0))


def test_horizontal_flip_pil_and_tensor_agree(photo_path: str) -> None:
    img = decode_image(photo_path, index=0)
    tensor = to_tensor(img, 32)
    assert torch.equal(horizontal_flip(tensor), tensor.flip(-1))
    assert torch.equal(to_tensor(horizontal_flip(horizontal_flip(img)), 32), to_tensor(img, 32))
    np.testing.assert_array_equal(np.asarray(horizontal_flip(img)), np.asarray(img)[:, ::-1])


def test_normalize_per_channel() -> None:
    t = torch.ones(2, 3, 2, 2) * torch.tensor([0.5, 0.25, 1.0])[:, None, None]
    out = normalize(t, mean=[0.5, 0.0, 0.5], std=[1.0, 0.25, 0.5])
    assert torch.allclose(out[:, 0], torch.zeros(2, 2, 2))
    assert torch.allclose(out[:, 1], torch.ones(2, 2, 2))
    assert torch.allclose(out[:, 2], torch.ones(2, 2, 2))
    with pytest.raises(InvalidParameterError, match="every std must be > 0"):
        normalize(t, mean=[0, 0, 0], std=[1, 0, 1])
    with pytest.raises(InvalidParameterError, match=r"one value per channel \(3\)"):
        normalize(t, mean=[0, 0], std=[1, 1])


def test_resize_batch_keeps_constant_images_constant() -> None:
    x = torch.full((2, 3, 10, 14), 0.3)
    out = resize_batch(x, 7)
    assert out.shape == (2, 3, 7, 7)
    assert torch.allclose(out, torch.full_like(out, 0.3))
    assert resize_batch(x, (10, 14)) is x
    with pytest.raises(InvalidInputError, match=r"\(N, C, H, W\)"):
        resize_batch(x[0], 7)


@pytest.mark.parametrize("channels", [1, 3, 4], ids=["gray", "rgb", "rgba"])
def test_arrays_to_tensor_channels(channels: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 6, 6, channels), dtype=np.float32)
    out = arrays_to_tensor(x, image_size=6, mean=[0.0] * 3, std=[1.0] * 3)
    assert out.shape == (2, 3, 6, 6)
    expected = np.repeat(x, 3, axis=-1) if channels == 1 else x[..., :3]
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), expected, rtol=1e-6)


def test_arrays_to_tensor_resizes_and_normalizes() -> None:
    _, data = check_image_inputs(load_digits().data[:4], image_shape=(8, 8))
    out = arrays_to_tensor(data, image_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert out.shape == (4, 3, 32, 32)
    black = (0.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[0, :, 0, 0], black, atol=1e-5)  # digit corners are background


# --------------------------------------------------------------------------- #
# ImageDataset and DataLoader
# --------------------------------------------------------------------------- #


def _dataset(items: list, **kwargs: object) -> ImageDataset:
    return ImageDataset(items, image_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs)


def test_dataset_without_augment_is_resize_and_normalize(photo_path: str) -> None:
    sample = _dataset([photo_path], targets=[1])[0]
    expected = normalize(to_tensor(decode_image(photo_path, index=0), 32), IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(sample["x"], expected)
    assert sample["y"].dtype == torch.long and sample["y"].ndim == 0 and int(sample["y"]) == 1


def test_dataset_center_crop_applies_without_augmentation_only(photo_path: str) -> None:
    img = decode_image(photo_path, index=0)
    cropped = _dataset([photo_path], center_crop=0.875)[0]["x"]
    expected = normalize(to_tensor(center_crop(img, 32, 0.875), 32), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(cropped, expected)
    assert not torch.allclose(cropped, _dataset([photo_path])[0]["x"])  # stretching differs
    augmented = _dataset([photo_path], center_crop=0.875, augment=True, seed=3)[0]["x"]
    torch.testing.assert_close(augmented, _dataset([photo_path], augment=True, seed=3)[0]["x"])


def test_augmentation_is_reproducible_and_varies_by_epoch(photo_path: str) -> None:
    first, second = (
        _dataset([photo_path], augment=True, seed=3),
        _dataset([photo_path], augment=True, seed=3),
    )
    assert torch.equal(first[0]["x"], second[0]["x"])
    second.set_epoch(1)
    assert not torch.equal(first[0]["x"], second[0]["x"])
    assert first[0]["x"].shape == (3, 32, 32)


def test_dataset_rejects_misaligned_targets(photo_path: str) -> None:
    with pytest.raises(InvalidInputError, match="got 2 targets for 1 items"):
        _dataset([photo_path], targets=[0, 1])


@pytest.mark.timeout(60)
def test_dataloader_with_workers_batches_the_sample() -> None:
    paths, labels = load_hymenoptera_sample("val")
    targets = [int(label == "bees") for label in labels]
    loader = DataLoader(
        _dataset(paths, targets=targets, augment=True),
        batch_size=5,
        num_workers=2,
        collate_fn=ImageDataset.collate,
    )
    batches = list(loader)
    assert [b["x"].shape[0] for b in batches] == [5, 5, 2]
    assert batches[0]["x"].shape == (5, 3, 32, 32)
    assert torch.cat([b["y"] for b in batches]).tolist() == targets


@pytest.mark.timeout(60)
def test_worker_decode_error_surfaces_in_main_process(tmp_path: Path, photo_path: str) -> None:
    bad = _write(tmp_path / "ant photo.jpg", b"this is text")
    loader = DataLoader(
        _dataset([photo_path, bad], targets=[0, 1]),
        batch_size=1,
        num_workers=1,
        collate_fn=ImageDataset.collate,
    )
    with pytest.raises(InvalidInputError, match=r"X\[1\] \(.*ant photo\.jpg'\) is not a recognised image"):
        list(loader)


# --------------------------------------------------------------------------- #
# Bundled sample
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("split, per_class", [("train", 12), ("val", 6)])
def test_hymenoptera_sample(split: str, per_class: int) -> None:
    paths, labels = load_hymenoptera_sample(split)
    assert labels == ["ants"] * per_class + ["bees"] * per_class
    for path in paths:
        assert os.path.isabs(path) and Path(path).parent.name in labels
        with Image.open(path) as img:
            assert img.format == "JPEG" and max(img.size) <= 224


def test_hymenoptera_sample_rejects_unknown_split() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"split must be one of \['train', 'val'\], got split='test'"
    ):
        load_hymenoptera_sample("test")


def test_bytes_from_memory_buffer_decode(photo: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    np.testing.assert_array_equal(np.asarray(decode_image(buffer.getvalue(), index=0)), photo)
