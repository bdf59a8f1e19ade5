"""The training engine: early stopping, schedules, optimizer groups, freezing, numerical faults."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from skbig import TextClassifier
from skbig.backends.fasttext import FastTextBackend
from skbig.backends.registry import register_backend, unregister_backend
from skbig.engine.callbacks import Callback
from skbig.engine.data import DatasetData, TensorData, count_batches, iterate_batches
from skbig.engine.trainer import Trainer, TrainingConfig
from skbig.exceptions import InvalidParameterError, NumericalError


class Snapshots(Callback):
    """Keep a copy of the weights at the start and after every epoch."""

    def __init__(self):
        self.weights = []

    def on_fit_begin(self, trainer):
        self.weights = [_copy(trainer.module)]

    def on_epoch_end(self, trainer, record):
        self.weights.append(_copy(trainer.module))


def _copy(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_restores_the_best_epoch(small_sms):
    X, y = small_sms
    snaps = Snapshots()
    clf = TextClassifier(
        max_epochs=40, early_stopping=2, lr=0.05, validation_fraction=0.3, callbacks=[snaps], random_state=0
    ).fit(X, y)
    history = clf.history_
    assert len(history) < 40, "training should have stopped early"
    best = max(history, key=lambda r: (r["valid_score"], -r["valid_loss"]))
    assert clf.best_epoch_ == best["epoch"]
    assert len(history) == clf.best_epoch_ + 2  # stopped after `patience` epochs without improvement
    assert _equal(_copy(clf.module_), snaps.weights[clf.best_epoch_])
    assert not _equal(_copy(clf.module_), snaps.weights[-1])


def test_without_early_stopping_keeps_last_weights(small_sms):
    X, y = small_sms
    snaps = Snapshots()
    clf = TextClassifier(max_epochs=3, early_stopping=False, callbacks=[snaps], random_state=0).fit(X, y)
    assert len(clf.history_) == 3
    assert _equal(_copy(clf.module_), snaps.weights[-1])


def test_callback_can_stop_training(small_sms):
    class StopAfterTwo(Callback):
        def on_epoch_end(self, trainer, record):
            return record["epoch"] >= 2

    X, y = small_sms
    clf = TextClassifier(max_epochs=10, callbacks=[StopAfterTwo()], random_state=0).fit(X, y)
    assert len(clf.history_) == 2


def _trainer(**overrides):
    config = TrainingConfig(max_epochs=10, batch_size=4, lr=0.1, device=torch.device("cpu"), **overrides)
    trainer = Trainer(config, backend=None, evaluate=None)
    trainer.steps_per_epoch = 10
    return trainer


def test_lr_schedules():
    constant = _trainer(lr_schedule="constant")
    assert {constant._lr_factor(s) for s in range(100)} == {1.0}
    cosine = _trainer(lr_schedule="cosine", warmup=0.1)
    assert cosine._lr_factor(0) == pytest.approx(0.1) and cosine._lr_factor(9) == pytest.approx(1.0)
    assert cosine._lr_factor(99) < 0.01
    factors = [cosine._lr_factor(s) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(factors))  # monotone decay after warm-up
    onecycle = _trainer(lr_schedule="onecycle")
    assert onecycle._lr_factor(0) == pytest.approx(0.04)
    assert max(onecycle._lr_factor(s) for s in range(100)) == pytest.approx(1.0, abs=0.01)
    assert onecycle._lr_factor(99) < 0.01


@pytest.mark.parametrize(
    ("schedule", "warmup", "recorded"),
    [("onecycle", None, 0.3), ("onecycle", 0.1, 0.1), ("cosine", None, 0.0)],
)
def test_training_settings_record_the_warmup_the_schedule_ran(small_sms, schedule, warmup, recorded):
    # One-cycle warms up for 30% of the steps when warmup is 0; the record must say so.
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, lr_schedule=schedule, warmup=warmup, random_state=0).fit(X, y)
    assert clf.training_settings_["warmup"] == recorded


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_optimizers_and_discriminative_learning_rate(name):
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    trainer = _trainer(optimizer=name, backbone=["0.*"], backbone_lr_mult=0.1, weight_decay=0.01)
    optimizer = trainer._make_optimizer(module)
    groups = {(g["is_backbone"], g["weight_decay"]): g for g in optimizer.param_groups}
    assert groups[(True, 0.01)]["lr"] == pytest.approx(0.01)  # backbone: lr * mult
    assert groups[(False, 0.01)]["lr"] == pytest.approx(0.1)
    assert groups[(True, 0.0)]["params"][0] is module[0].bias  # no decay on biases
    assert type(optimizer).__name__.lower() == name


def test_frozen_parameters_stay_bit_identical_until_unfreeze_at(small_sms):
    X, y = small_sms
    snaps = Snapshots()
    TextClassifier(
        max_epochs=3,
        freeze=["embedding.*"],
        unfreeze_at=2,
        validation_fraction=0.0,
        callbacks=[snaps],
        random_state=0,
    ).fit(X, y)
    emb = [w["embedding.weight"] for w in snaps.weights]
    head = [w["head.weight"] for w in snaps.weights]
    assert torch.equal(emb[0], emb[1]) and torch.equal(emb[1], emb[2])
    assert not torch.equal(emb[2], emb[3])  # trains from epoch index 2 (the third epoch)
    assert not torch.equal(head[0], head[1])


def test_an_interrupted_fit_leaves_no_parameter_frozen(small_sms):
    # A later warm-start fit of the same module must not inherit the crashed fit's freeze.
    class Interrupt(Callback):
        def on_epoch_end(self, trainer, record):
            raise KeyboardInterrupt

    X, y = small_sms
    clf = TextClassifier(
        max_epochs=3,
        freeze=["embedding.*"],
        validation_fraction=0.0,
        callbacks=[Interrupt()],
        warm_start=True,
    )
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert all(p.requires_grad for p in clf.module_.parameters())


@pytest.mark.parametrize("unfreeze_at", [None, 1])
def test_a_freeze_that_leaves_nothing_to_train_is_refused(small_sms, unfreeze_at):
    X, y = small_sms
    clf = TextClassifier(max_epochs=2, freeze=["*"], unfreeze_at=unfreeze_at, validation_fraction=0.0)
    with pytest.raises(InvalidParameterError, match=r"freeze=\['\*'\] matches all 3 parameters"):
        clf.fit(X, y)
    TextClassifier(max_epochs=1, freeze=["*"], unfreeze_at=0, validation_fraction=0.0).fit(X, y)


def test_early_stopping_waits_for_the_unfreeze(small_sms):
    # A negligible lr never improves the score, so patience 1 alone would stop after epoch 2, before
    # the embeddings train.
    X, y = small_sms
    snaps = Snapshots()
    clf = TextClassifier(
        max_epochs=8,
        lr=1e-12,
        freeze=["embedding.*"],
        unfreeze_at=4,
        early_stopping=1,
        validation_fraction=0.3,
        callbacks=[snaps],
        random_state=0,
    ).fit(X, y)
    assert len(clf.history_) == 5  # four frozen epochs, then one unfrozen epoch of fresh patience
    emb = [w["embedding.weight"] for w in snaps.weights]
    assert torch.equal(emb[0], emb[4]) and not torch.equal(emb[4], emb[5])


def test_frozen_batch_norm_keeps_its_running_statistics():
    from skbig import ImageClassifier

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8), ["a", "b"] * 12
    snaps = Snapshots()
    ImageClassifier(
        backend="resnet",
        max_epochs=1,
        freeze=["conv1.*", "bn1.*", "layer*"],
        validation_fraction=0.0,
        callbacks=[snaps],
    ).fit(X, y)
    before, after = snaps.weights
    frozen = [k for k in before if k.startswith(("bn1.", "layer")) and "running_" in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)


@pytest.mark.parametrize(("n", "sizes"), [(17, [8, 9]), (16, [8, 8]), (9, [9]), (1, [1])])
def test_training_batches_never_end_in_a_single_sample(n, sizes):
    # A batch of one breaks batch norm on 1x1 feature maps; it joins the batch before.
    data = TensorData({"x": torch.arange(n), "y": torch.arange(n)})
    got = [len(b["y"]) for b in iterate_batches(data, 8, shuffle=True, generator=torch.Generator())]
    assert got == sizes and count_batches(n, 8) == len(sizes)
    dataset = DatasetData(list(range(n)), lambda items: {"y": torch.tensor(items)})
    loaded = [len(b["y"]) for b in iterate_batches(dataset, 8, shuffle=True, generator=torch.Generator())]
    assert loaded == sizes
    evaluation = [len(b["y"]) for b in iterate_batches(data, 8, shuffle=False)]
    assert evaluation == [8] * (n // 8) + ([n % 8] if n % 8 else [])  # prediction batches unchanged


def test_tensor_fast_path_batches_cover_every_row_once():
    x = torch.zeros((10, 6), dtype=torch.long)
    lengths = torch.tensor([1, 2, 3, 1, 1, 6, 2, 2, 1, 3])
    for i, n in enumerate(lengths):
        x[i, :n] = i + 1
    data = TensorData({"x": x, "lengths": lengths, "y": torch.arange(10)}, trim=("x", "lengths"))
    seen = []
    for batch in iterate_batches(data, 4, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert batch["x"].shape[1] == int(batch["lengths"].max())  # padding trimmed per batch
        seen += batch["y"].tolist()
    assert sorted(seen) == list(range(10))


class NanAfterBackend(FastTextBackend):
    """Loss turns NaN on the 7th call: a stand-in for a diverging model."""

    name = "nan_after"
    calls = 0

    def loss(self, module, batch, *, class_weight=None):
        NanAfterBackend.calls += 1
        value = super().loss(module, batch, class_weight=class_weight)
        return value * math.nan if NanAfterBackend.calls >= 7 else value


def test_non_finite_loss_stops_with_epoch_and_batch_and_keeps_good_weights():
    register_backend(NanAfterBackend, replace=True)
    NanAfterBackend.calls = 0
    try:
        X = ["good day", "bad day", "good night", "bad night"] * 4
        y = [1, 0, 1, 0] * 4
        clf = TextClassifier(backend="nan_after", batch_size=4, max_epochs=5, validation_fraction=0.0)
        with pytest.raises(NumericalError, match=r"epoch 2, batch 2") as info:
            clf.fit(X, y)
        assert isinstance(info.value, FloatingPointError)
        assert len(clf.history_) == 1  # the completed epoch is kept
        assert all(torch.isfinite(p).all() for p in clf.module_.parameters())
        assert len(clf.predict(X)) == len(X)
    finally:
        unregister_backend("nan_after")


class ScoredFirstBackend(FastTextBackend):
    """FastText whose untrained model is scored before the first epoch; ``frozen`` stops learning."""

    name = "scored_first"
    evaluate_before_training = True
    frozen = False

    def loss(self, module, batch, *, class_weight=None):
        value = super().loss(module, batch, class_weight=class_weight)
        return value * 0.0 if ScoredFirstBackend.frozen else value


@pytest.mark.parametrize("frozen", [True, False], ids=["no-epoch-beats-epoch-0", "training-helps"])
def test_evaluate_before_training_lets_early_stopping_keep_the_initial_weights(frozen):
    register_backend(ScoredFirstBackend, replace=True)
    ScoredFirstBackend.frozen = frozen
    try:
        X = ["good day", "bad day", "good night", "bad night", "good", "bad"] * 6
        y = [1, 0, 1, 0, 1, 0] * 6
        snaps = Snapshots()
        clf = TextClassifier(
            backend="scored_first",
            max_epochs=3,
            lr=0.05,
            weight_decay=0.0,
            validation_fraction=0.3,
            early_stopping=5,
            callbacks=[snaps],
            random_state=0,
        ).fit(X, y)
        assert len(clf.history_) == 3  # epoch 0 is scored, not recorded as a training epoch
        if frozen:  # every epoch only ties the untrained model: its weights are kept
            assert clf.best_epoch_ == 0
            assert _equal(_copy(clf.module_), snaps.weights[0])
        else:
            assert clf.best_epoch_ >= 1
    finally:
        ScoredFirstBackend.frozen = False
        unregister_backend("scored_first")


# -- WiSE-FT (finetune_mix) ----------------------------------------------------------------------
def _fit_sms(X, y, **params):
    snaps = Snapshots()
    defaults = {"max_epochs": 3, "early_stopping": False, "lr": 0.05, "random_state": 0}
    clf = TextClassifier(callbacks=[snaps], **{**defaults, **params}).fit(X, y)
    return clf, snaps


@pytest.mark.parametrize("mix", [0.0, 0.3])
def test_finetune_mix_lands_on_the_line_from_start_to_the_trained_weights(small_sms, mix):
    X, y = small_sms
    trained, full = _fit_sms(X, y)
    mixed, snaps = _fit_sms(X, y, finetune_mix=mix)
    start, end = full.weights[0], full.weights[-1]
    assert _equal(snaps.weights[0], start) and _equal(snaps.weights[-1], end)  # same training
    got = _copy(mixed.module_)
    for name, value in got.items():
        torch.testing.assert_close(value, start[name] + mix * (end[name] - start[name]))
    assert not _equal(got, end)
    assert [r["train_loss"] for r in mixed.history_] == [r["train_loss"] for r in trained.history_]


def test_finetune_mix_survives_resuming_a_checkpoint(small_sms, tmp_path):
    X, y = small_sms
    first, _ = _fit_sms(X, y, finetune_mix=0.5, checkpoint_dir=str(tmp_path))
    # The same fit again finds the finished checkpoint: no epoch runs, and the mix still
    # starts from the saved start weights, not from the checkpoint's last weights.
    again, snaps = _fit_sms(X, y, finetune_mix=0.5, checkpoint_dir=str(tmp_path))
    assert len(snaps.weights) == 1  # resumed after the last epoch
    assert _equal(_copy(again.module_), _copy(first.module_))


class TiedOutput(torch.nn.Module):
    """An embedding whose weight is also the output projection's, as in Whisper."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(5, 3)
        self.inner = torch.nn.Linear(3, 3)
        self.out = torch.nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight


def test_finetune_mix_moves_tied_weights_once():
    module = TiedOutput()
    trainer = _trainer(finetune_mix=0.5)
    start = _copy(module)
    trainer._start_weights = {k: v.clone() for k, v in start.items()}
    with torch.no_grad():
        for param in module.parameters():
            param.add_(1.0)
    trainer._mix_with_start(module)
    for name, value in _copy(module).items():
        torch.testing.assert_close(value, start[name] + 0.5, msg=name)


@pytest.mark.parametrize("mix", [-0.1, 1.5, "half"])
def test_finetune_mix_outside_zero_one_is_named(small_sms, mix):
    X, y = small_sms
    with pytest.raises(InvalidParameterError, match="finetune_mix"):
        TextClassifier(finetune_mix=mix, max_epochs=1).fit(X, y)


# -- how a fit ends ------------------------------------------------------------------------------
class FailAtStart(Callback):
    """A callback that fails before any epoch, as a logger with an unusable path does."""

    def __init__(self):
        self.ended = False

    def on_fit_begin(self, trainer):
        raise OSError("cannot create the log folder")

    def on_fit_end(self, trainer):
        self.ended = True


def test_a_fit_failing_before_its_first_epoch_keeps_the_fitted_model(small_sms):
    X, y = small_sms
    clf = TextClassifier(max_epochs=2, random_state=0).fit(X, y)
    before, history = clf.predict_proba(X[:5]), list(clf.history_)
    failing = FailAtStart()
    with pytest.raises(OSError, match="log folder"):
        clf.set_params(callbacks=[failing]).fit(X, y)
    assert failing.ended  # on_fit_end still ran: a logger closes what it opened
    assert clf.history_ == history
    np.testing.assert_array_equal(clf.predict_proba(X[:5]), before)
    unfitted = TextClassifier(max_epochs=2, callbacks=[FailAtStart()])
    with pytest.raises(OSError):
        unfitted.fit(X, y)
    assert not hasattr(unfitted, "module_")


class InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("early_stopping", [True, False])
def test_an_interrupted_fit_keeps_the_weights_best_epoch_names(small_sms, early_stopping):
    X, y = small_sms
    snaps = Snapshots()
    clf = TextClassifier(
        max_epochs=8,
        lr=0.05,
        validation_fraction=0.3,
        early_stopping=20 if early_stopping else False,
        callbacks=[snaps, InterruptAt(4)],
        random_state=0,
    )
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert len(clf.history_) == 4
    if early_stopping:
        best = max(clf.history_, key=lambda r: (r["valid_score"], -r["valid_loss"]))["epoch"]
        assert clf.best_epoch_ == best
    else:
        assert clf.best_epoch_ == 4
    assert _equal(_copy(clf.module_), snaps.weights[clf.best_epoch_])


def test_without_early_stopping_best_epoch_is_the_last(small_sms):
    # The last weights are kept, so best_epoch_ must say so even when an earlier epoch scored higher.
    X, y = small_sms
    clf = TextClassifier(max_epochs=6, lr=0.5, early_stopping=False, validation_fraction=0.3, random_state=0)
    clf.fit(X, y)
    assert clf.best_epoch_ == 6


def test_a_warmup_that_rounds_to_no_step_is_not_replaced_by_one_cycles_own():
    # 0.05 of 12 steps is no whole step: no warm-up, not one-cycle's 30% (which warmup=0 means).
    asked = _trainer(lr_schedule="onecycle", warmup=0.05)
    default = _trainer(lr_schedule="onecycle", warmup=0.0)
    for trainer in (asked, default):
        trainer.steps_per_epoch, trainer.config.max_epochs = 3, 4
    assert asked._lr_factor(0) == pytest.approx(1.0)
    assert default._lr_factor(0) == pytest.approx(0.04)  # warming up over 3 of the 12 steps


def test_the_recorded_lr_is_the_heads_not_the_backbones():
    from skbig import ImageClassifier

    images = np.random.default_rng(0).random((12, 16, 16, 3), dtype=np.float32)
    clf = ImageClassifier(backend="resnet", max_epochs=1, lr=0.01, backbone_lr_mult=0.1, random_state=0)
    clf.fit(images, [0, 1] * 6)
    assert clf.history_[0]["lr"] == pytest.approx(0.01)


def test_a_single_callback_not_in_a_list_is_named(small_sms):
    X, y = small_sms
    with pytest.raises(InvalidParameterError, match=r"wrap a single one in a list: callbacks=\[cb\]"):
        TextClassifier(max_epochs=1, callbacks=Snapshots()).fit(X, y)


def test_an_unavailable_mps_device_is_named(small_sms):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        pytest.skip("this machine has MPS")
    X, y = small_sms
    with pytest.raises(InvalidParameterError, match="Apple MPS is not available"):
        TextClassifier(max_epochs=1, device="mps").fit(X, y)


# -- fp16 loss scaling ---------------------------------------------------------------------------------
class TinyLossBackend(FastTextBackend):
    """FastText whose loss is scaled by 1e-9: its fp16 gradients are below fp16's smallest value."""

    name = "tiny_loss"

    def loss(self, module, batch, *, class_weight=None):
        return super().loss(module, batch, class_weight=class_weight) * 1e-9


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_fp16_scales_the_loss_so_small_gradients_still_train(small_sms, grad_clip):
    register_backend(TinyLossBackend, replace=True)
    try:
        X, y = small_sms
        snaps = Snapshots()
        params = {"max_epochs": 1, "weight_decay": 0.0, "validation_fraction": 0.0, "random_state": 0}
        clf = TextClassifier(
            backend="tiny_loss",
            device="cpu",
            precision="fp16",
            grad_clip=grad_clip,
            callbacks=[snaps],
            **params,
        ).fit(X[:64], y[:64])
        start, end = snaps.weights[0], snaps.weights[-1]
        # Unscaled, every fp16 gradient flushes to zero and Adam leaves the head as it was.
        assert not torch.equal(start["head.weight"], end["head.weight"])
        assert all(torch.isfinite(p).all() for p in clf.module_.parameters())
        assert clf.training_settings_["precision"] == "fp16"
        assert clf.training_settings_["grad_clip"] == grad_clip
    finally:
        unregister_backend("tiny_loss")


class HugeLossBackend(FastTextBackend):
    """FastText whose loss is scaled by 1e5: its scaled fp16 gradients overflow, so the scaler backs off."""

    name = "huge_loss"

    def loss(self, module, batch, *, class_weight=None):
        return super().loss(module, batch, class_weight=class_weight) * 1e5


class ScaleAtStart(Callback):
    def on_fit_begin(self, trainer):
        self.scale = trainer.scaler.get_scale()


def test_fp16_loss_scale_survives_resuming_a_checkpoint(small_sms, tmp_path):
    register_backend(HugeLossBackend, replace=True)
    try:
        X, y = small_sms
        params = {
            "backend": "huge_loss",
            "device": "cpu",
            "precision": "fp16",
            "max_epochs": 3,
            "validation_fraction": 0.0,
            "random_state": 0,
            "checkpoint_dir": str(tmp_path),
        }
        with pytest.raises(KeyboardInterrupt):
            TextClassifier(**params, callbacks=[InterruptAt(2)]).fit(X[:64], y[:64])
        saved = torch.load(next(tmp_path.glob("checkpoint-*.pt")), weights_only=True)["grad_scaler"]["scale"]
        assert saved < 2.0**16  # the scaler backed off from its initial scale in epoch 1
        start = ScaleAtStart()
        clf = TextClassifier(**params, callbacks=[start]).fit(X[:64], y[:64])
        assert start.scale == saved  # resumed with the scale it had found, not from 65536 again
        assert len(clf.history_) == 3
        assert all(torch.isfinite(p).all() for p in clf.module_.parameters())
    finally:
        unregister_backend("huge_loss")


class WarnEveryBatchBackend(FastTextBackend):
    """FastText whose loss warns on every batch, as a user's or a library's code may."""

    name = "warn_every_batch"

    def loss(self, module, batch, *, class_weight=None):
        warnings.warn("input was truncated", UserWarning, stacklevel=1)
        return super().loss(module, batch, class_weight=class_weight)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_warning_repeated_every_batch_is_shown_once(small_sms, precision):
    # Python shows a "default" warning once per place; resetting the warnings state on every
    # step (catch_warnings) made it print on every batch.
    register_backend(WarnEveryBatchBackend, replace=True)
    try:
        X, y = small_sms
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            TextClassifier(
                backend="warn_every_batch", device="cpu", precision=precision, max_epochs=2, batch_size=8
            ).fit(X[:64], y[:64])
        shown = sum("input was truncated" in str(w.message) for w in caught)
        # fp16 hides torch's scheduler-order warning around its first step, which shows it once more.
        assert shown == (1 if precision == "fp32" else 2)
    finally:
        unregister_backend("warn_every_batch")
