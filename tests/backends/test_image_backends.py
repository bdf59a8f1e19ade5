"""The built-in image backends: ``cnn`` and ``resnet``, and what they share."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from skbig import ImageClassifier, list_backends
from skbig.backends.base import TaskSpec
from skbig.backends.cnn import CNNBackend, CNNModule
from skbig.backends.image_common import augment_batch
from skbig.backends.resnet import ResNetBackend, ResNetModule
from skbig.data.image import ImageDataset, check_image_inputs
from skbig.datasets import load_hymenoptera_sample
from skbig.engine.data import DatasetData, TensorData
from skbig.exceptions import InvalidParameterError
from skbig.search.spaces import Categorical, Float, Int
from skbig.testing import BackendConformance

SPEC = TaskSpec("image-classification", 3)
TINY_RESNET = {"width": 4, "layers": [1, 1], "image_size": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the pool thrashes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TestCNNConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return CNNBackend

    @pytest.fixture
    def estimator_params(self):
        return {
            "max_epochs": 2,
            "batch_size": 8,
            "random_state": 0,
            "validation_fraction": 0.0,
            "backend_params": {"width": 4},
        }


class TestResNetConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return ResNetBackend

    @pytest.fixture
    def estimator_params(self):
        return {
            "max_epochs": 2,
            "batch_size": 8,
            "random_state": 0,
            "validation_fraction": 0.0,
            "backend_params": dict(TINY_RESNET),
        }


@pytest.mark.parametrize("cls", [CNNBackend, ResNetBackend], ids=["cnn", "resnet"])
def test_search_space_is_declared_with_skbig_search_specs(cls):
    space = cls.search_space()
    assert space and all(isinstance(spec, (Float, Int, Categorical)) for spec in space.values())


def test_both_are_listed_for_image_classification():
    names = {b.name for b in list_backends("image-classification") if b.status == "ok"}
    assert {"cnn", "resnet"} <= names


# -- input size --------------------------------------------------------------------------------
def _prepared(backend, X):
    backend.fit_preprocessing(list(X))
    return backend.input_size


def test_image_size_none_keeps_one_size_arrays_native():
    _, pixels = check_image_inputs(np.zeros((3, 8, 8)))
    assert _prepared(CNNBackend(), pixels) == (8, 8)
    assert _prepared(ResNetBackend({"image_size": None}), pixels) == (8, 8)


def test_image_size_none_uses_the_file_size_for_files_and_mixed_sizes():
    paths, _ = load_hymenoptera_sample("val")
    mixed = [np.zeros((8, 8)), np.zeros((9, 8))]
    assert _prepared(CNNBackend(), paths) == (64, 64)
    assert _prepared(CNNBackend(), mixed) == (64, 64)
    assert _prepared(ResNetBackend({"image_size": None}), paths) == (128, 128)


def test_explicit_image_size_wins_and_state_round_trips_as_json():
    backend = CNNBackend({"image_size": [12, 20]})
    assert _prepared(backend, [np.zeros((8, 8))]) == (12, 20)
    state = json.loads(json.dumps(backend.get_state()))
    restored = CNNBackend()
    restored.set_state(state)
    assert restored.input_size == (12, 20)
    assert _prepared(ResNetBackend(), [np.zeros((8, 8))]) == (128, 128)  # the documented default


def test_center_crop_is_saved_with_the_model_and_older_models_keep_stretching():
    backend = ResNetBackend({"center_crop": 0.875, "image_size": 32})
    backend.fit_preprocessing([])
    state = json.loads(json.dumps(backend.get_state()))
    assert state["center_crop"] == 0.875
    restored = ResNetBackend()  # defaults say None; the saved model says 0.875
    restored.set_state(state)
    assert restored.center_crop == 0.875
    del state["center_crop"]  # a model saved before center_crop existed was stretched
    restored.set_state(state)
    assert restored.center_crop is None


def test_arrays_and_files_get_the_same_center_crop(tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    photo = (rng.rand(60, 90, 3) * 255).astype(np.uint8)
    photo[:, :20] = 0  # the left third is cut away by a 0.875 centre crop of the 60-pixel side
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    backend = ResNetBackend({"center_crop": 0.875, "image_size": 16})
    backend.fit_preprocessing([str(path)])
    from_file = backend.make_data([str(path)]).dataset[0]["x"]
    from_array = backend.prepare_pixels(torch.from_numpy(photo[None] / 255.0).float())[0]
    assert from_file.shape == from_array.shape == (3, 16, 16)
    assert float((from_file - from_array).abs().mean()) < 0.05
    stretched = ResNetBackend({"image_size": 16})
    stretched.fit_preprocessing([str(path)])
    assert float((stretched.make_data([str(path)]).dataset[0]["x"] - from_file).abs().mean()) > 0.1


# -- data pipelines ------------------------------------------------------------------------------
def test_arrays_take_the_in_memory_path_and_items_the_lazy_one():
    backend = CNNBackend()
    _, pixels = check_image_inputs(np.random.RandomState(0).rand(4, 20, 20, 3))
    backend.fit_preprocessing(list(pixels))
    train = backend.make_data(pixels, [0, 1, 0, 1], train=True)
    assert isinstance(train, TensorData)
    assert set(train.tensors) == {"pixels", "y", "augment"}  # 20x20 >= 16: "auto" augments
    assert train.tensors["pixels"].data_ptr() == torch.from_numpy(pixels).data_ptr()  # no copy
    assert "augment" not in backend.make_data(pixels, [0, 1, 0, 1], train=False).tensors
    backend.augment = None
    assert "augment" not in backend.make_data(pixels, [0, 1, 0, 1], train=True).tensors

    paths, _ = load_hymenoptera_sample("val")
    lazy = backend.make_data(paths, list(range(len(paths))), train=True)
    assert isinstance(lazy, DatasetData) and isinstance(lazy.dataset, ImageDataset)
    assert lazy.dataset.image_size == (20, 20) and not lazy.dataset.augment


def test_prepare_pixels_makes_rgb_at_the_input_size_and_normalises():
    backend = CNNBackend({"image_size": 6})
    backend.fit_preprocessing([])
    gray = torch.full((2, 4, 5, 1), 0.5)
    rgba = torch.full((2, 4, 5, 4), 0.5)
    for pixels in (gray, rgba):
        x = backend.prepare_pixels(pixels)
        assert x.shape == (2, 3, 6, 6)
        torch.testing.assert_close(x, torch.zeros_like(x))  # (0.5 - 0.5) / 0.25
    resnet = ResNetBackend({"image_size": 4})
    resnet.fit_preprocessing([])
    x = resnet.prepare_pixels(torch.full((1, 4, 4, 3), 0.485))
    assert abs(float(x[0, 0].mean())) < 1e-6 and float(x[0, 1].mean()) > 0  # ImageNet statistics


def test_augment_batch_is_seeded_keeps_shape_and_constant_images():
    x = torch.rand(4, 3, 16, 16)
    torch.manual_seed(1)
    a = augment_batch(x)
    torch.manual_seed(1)
    b = augment_batch(x)
    assert a.shape == x.shape
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, x)
    flat = torch.full((2, 3, 16, 16), 0.3)
    torch.testing.assert_close(augment_batch(flat), flat)


# -- the cnn network ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(8, 8), (64, 64), (1, 64), (1, 1), (3, 5)], ids=str)
def test_cnn_reads_any_input_size(size):
    module = CNNModule(3, size, width=4, depth=4, dropout=0.0).eval()
    assert module(torch.zeros(2, 3, *size)).shape == (2, 3)


def test_cnn_hyperparameters_shape_the_network():
    def n_params(**kw):
        backend = CNNBackend(kw)
        backend.fit_preprocessing([np.zeros((8, 8))])
        return sum(p.numel() for p in backend.build_module(SPEC).parameters())

    assert n_params(width=8) < n_params(width=16)
    assert n_params(depth=2) < n_params(depth=3)


# -- the resnet network ----------------------------------------------------------------------------
def test_resnet_default_is_resnet18_with_torchvision_names():
    module = ResNetModule(2)
    names = dict(module.named_parameters())
    assert sum(p.numel() for p in names.values()) == 11_177_538  # torchvision resnet18, 2-class head
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias"} <= set(names)
    assert names["conv1.weight"].shape == (64, 3, 7, 7)
    assert [len(getattr(module, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    "image_size, stem, pooled",
    [(128, "auto", True), (32, "auto", False), (32, "imagenet", True), (128, "small", False)],
)
def test_resnet_stem(image_size, stem, pooled):
    backend = ResNetBackend({"width": 4, "layers": [1], "image_size": image_size, "stem": stem})
    backend.fit_preprocessing([])
    module = backend.build_module(SPEC).eval()
    assert isinstance(module.maxpool, torch.nn.MaxPool2d) is pooled
    assert module(torch.zeros(1, 3, image_size, image_size)).shape == (1, 3)


def test_resnet_backbone_is_everything_but_fc():
    backend = ResNetBackend(TINY_RESNET)
    backend.fit_preprocessing([])
    module = backend.build_module(SPEC)
    backbone = backend.backbone_parameter_names(module)
    assert backbone and not any(name.startswith("fc.") for name in backbone)
    assert set(backbone) | {"fc.weight", "fc.bias"} == {name for name, _ in module.named_parameters()}


def test_freeze_backbone_trains_only_the_head():
    X = np.random.RandomState(0).rand(16, 16, 16, 3)
    y = np.array([0, 1] * 8)
    params = {
        "backend": "resnet",
        "backend_params": TINY_RESNET,
        "random_state": 0,
        "freeze": "backbone",
        "validation_fraction": 0.0,
        "augment": None,
    }
    untrained = ImageClassifier(max_epochs=0, **params).fit(X, y).module_.state_dict()
    trained = ImageClassifier(max_epochs=2, **params).fit(X, y).module_.state_dict()
    torch.testing.assert_close(trained["conv1.weight"], untrained["conv1.weight"])
    torch.testing.assert_close(trained["layer2.0.conv2.weight"], untrained["layer2.0.conv2.weight"])
    assert not torch.allclose(trained["fc.weight"], untrained["fc.weight"])


# -- hyper-parameter validation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, params, message",
    [
        (CNNBackend, {"width": 0}, "width must be an int >= 1, got width=0"),
        (CNNBackend, {"depth": "3"}, "depth must be an int >= 1, got depth='3'"),
        (CNNBackend, {"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got dropout=1.0"),
        (CNNBackend, {"image_size": -1}, "image_size must be a positive int"),
        (CNNBackend, {"widht": 8}, "did you mean 'width'"),
        (ResNetBackend, {"layers": []}, r"layers must be a non-empty list of ints >= 1.*\[2, 2, 2, 2\]"),
        (ResNetBackend, {"stem": "big"}, r"stem must be one of \['auto', 'imagenet', 'small'\]"),
        (ResNetBackend, {"center_crop": 1.2}, r"center_crop must be None .* got center_crop=1.2"),
    ],
    ids=["width", "depth", "dropout", "image-size", "typo", "layers", "stem", "center-crop"],
)
def test_bad_hyperparameters_state_the_rule(cls, params, message):
    with pytest.raises(InvalidParameterError, match=message):
        cls(params)


@pytest.mark.slow
def test_default_resnet_fits_the_bundled_photos():
    paths, labels = load_hymenoptera_sample("train")
    clf = ImageClassifier(backend="resnet", max_epochs=1, batch_size=8, random_state=0).fit(paths, labels)
    assert clf._backend.input_size == (128, 128)
    assert clf.predict_proba(paths[:3]).shape == (3, 2)
