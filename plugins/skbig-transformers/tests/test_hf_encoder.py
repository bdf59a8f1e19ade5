"""``hf_encoder`` on a tiny BERT written by the test: contract, transfer knobs, persistence."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skbig_transformers.backend import HFEncoderBackend

import skbig
from skbig import TextClassifier
from skbig.backends.base import TaskSpec
from skbig.engine.callbacks import Callback
from skbig.exceptions import InvalidParameterError
from skbig.pretrained import WeightsNotFoundError
from skbig.testing import BackendConformance, tiny_task_data

ENCODER_WEIGHT = "encoder.encoder.layer.0.attention.self.query.weight"
EMBEDDING_WEIGHT = "encoder.embeddings.word_embeddings.weight"


def tiny(model, **params):
    """A TextClassifier on the tiny BERT that fits in well under a second.

    The tiny BERT's weights are random, so it trains like a scratch model:
    a constant lr of 1e-3 and nothing frozen, not the fine-tuning recipe.
    """
    defaults = dict(
        backend="hf_encoder",
        backend_params={"model": model},
        max_epochs=2,
        batch_size=8,
        lr=1e-3,
        lr_schedule="constant",
        warmup=0.0,
        freeze=None,
        validation_fraction=0.0,
        random_state=0,
    )
    return TextClassifier(**{**defaults, **params})


class Snapshots(Callback):
    """Copies of the weights before training and after every epoch."""

    def __init__(self):
        self.weights = []

    def on_fit_begin(self, trainer):
        self.weights = [_copy(trainer.module)]

    def on_epoch_end(self, trainer, record):
        self.weights.append(_copy(trainer.module))


def _copy(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class TestHFEncoderConformance(BackendConformance):
    """The suite on the tiny BERT; one fitted model shared by the class (fits are the cost)."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend_cls(cls):
        return HFEncoderBackend

    @pytest.fixture(scope="class")
    @classmethod
    def estimator_params(cls, tiny_bert):
        return {
            "backend_params": {"model": tiny_bert},
            "max_epochs": 2,
            "batch_size": 8,
            "random_state": 0,
            "validation_fraction": 0.0,
        }

    @pytest.fixture(scope="class")
    @classmethod
    def sample_data(cls, backend_cls):
        return tiny_task_data(backend_cls.task)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, backend_cls, estimator_params, sample_data):
        X, y, _ = sample_data
        return TextClassifier(backend=backend_cls.name, **estimator_params).fit(X, y)


@pytest.fixture(scope="module")
def fitted(tiny_bert, sentiment):
    texts, labels = sentiment
    return tiny(tiny_bert, max_epochs=3, validation_fraction=0.2).fit(texts, labels)


# -- transfer learning ---------------------------------------------------------------------------
def test_backbone_is_the_encoder_and_the_head_is_fresh(fitted):
    backbone = fitted._backend.backbone_parameter_names(fitted.module_)
    assert backbone == ["encoder.*"]
    names = {name for name, _ in fitted.module_.named_parameters()}
    assert {n for n in names if not n.startswith("encoder.")} == {"head.weight", "head.bias"}
    assert fitted.module_.head.out_features == 2


def test_freeze_backbone_keeps_encoder_bit_identical_until_unfreeze_at(tiny_bert, sentiment):
    texts, labels = sentiment
    snaps = Snapshots()
    tiny(tiny_bert, max_epochs=3, freeze="backbone", unfreeze_at=2, callbacks=[snaps]).fit(texts, labels)
    for key in (ENCODER_WEIGHT, EMBEDDING_WEIGHT):
        w = [s[key] for s in snaps.weights]
        assert torch.equal(w[0], w[1]) and torch.equal(w[1], w[2]), key  # frozen for epochs 0 and 1
        assert not torch.equal(w[2], w[3]), key  # trains from epoch index 2
    head = [s["head.weight"] for s in snaps.weights]
    assert not torch.equal(head[0], head[1])


def test_freeze_backbone_for_the_whole_fit_trains_only_the_head(tiny_bert, sentiment):
    texts, labels = sentiment
    snaps = Snapshots()
    clf = tiny(tiny_bert, max_epochs=1, freeze="backbone", callbacks=[snaps]).fit(texts, labels)
    final = _copy(clf.module_)
    trained = [k for k in final if not torch.equal(final[k], snaps.weights[0][k])]
    assert sorted(trained) == ["head.bias", "head.weight"]
    assert all(p.requires_grad for p in clf.module_.parameters())  # unfrozen again after fit


def test_backbone_learning_rate_is_lr_times_backbone_lr_mult(tiny_bert, sentiment):
    class OptimizerProbe(Callback):
        def on_fit_begin(self, trainer):
            self.groups = [
                (g["is_backbone"], g["lr"], len(g["params"])) for g in trainer.optimizer.param_groups
            ]

    texts, labels = sentiment
    probe = OptimizerProbe()
    tiny(tiny_bert, lr=2e-3, backbone_lr_mult=0.1, max_epochs=1, callbacks=[probe]).fit(texts, labels)
    backbone = [lr for is_backbone, lr, _ in probe.groups if is_backbone]
    head = [lr for is_backbone, lr, _ in probe.groups if not is_backbone]
    assert backbone and head
    assert backbone == pytest.approx([2e-4] * len(backbone))
    assert head == pytest.approx([2e-3] * len(head))
    assert sum(n for is_backbone, _, n in probe.groups if not is_backbone) == 2  # head weight and bias


class ConfigProbe(Callback):
    """Records the resolved training settings and the optimizer's groups at the start of fit."""

    def on_fit_begin(self, trainer):
        self.config = trainer.config
        self.frozen = {n for n, p in trainer.module.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("pretrained", [True, False])
def test_settings_left_to_the_backend_are_its_fine_tuning_recipe(tiny_bert, sentiment, pretrained):
    texts, labels = sentiment
    probe = ConfigProbe()
    clf = TextClassifier(
        backend="hf_encoder",
        backend_params={"model": tiny_bert},
        max_epochs=1,
        pretrained=pretrained,
        callbacks=[probe],
        random_state=0,
    ).fit(texts, labels)
    cfg = probe.config
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.weight_decay) == (5e-5, 16, 1, 0.01)
    assert (cfg.lr_schedule, cfg.warmup) == ("cosine", 0.1)
    assert clf.history_[-1].get("valid_score") is None  # validation_fraction 0: every row trains
    # The embedding layer is frozen only when there are pretrained vectors to keep.
    assert (EMBEDDING_WEIGHT in probe.frozen) is pretrained
    assert not any(name.startswith("encoder.encoder.") for name in probe.frozen)
    assert clf.get_params()["freeze"] == "auto" and clf.get_params()["lr_schedule"] is None


class StopAfterOneEpoch(ConfigProbe):
    def on_epoch_end(self, trainer, record):
        return True


@pytest.mark.parametrize(("n_texts", "max_epochs", "epochs"), [(40, None, 67), (400, None, 8), (40, 2, 2)])
def test_small_data_trains_at_least_min_steps_unless_max_epochs_is_set(
    tiny_bert, sentiment, n_texts, max_epochs, epochs
):
    texts, labels = sentiment
    reps = n_texts // len(texts)
    probe = StopAfterOneEpoch()
    TextClassifier(
        backend="hf_encoder",
        backend_params={"model": tiny_bert},
        max_epochs=max_epochs,
        callbacks=[probe],
        random_state=0,
    ).fit(texts * reps, labels * reps)
    # batch 16: 40 texts are 3 steps an epoch, so 67 epochs reach 200 steps; 400 texts 25 steps, 8 epochs.
    assert probe.config.max_epochs == epochs


def test_explicit_settings_override_the_backend_recipe(tiny_bert, sentiment):
    texts, labels = sentiment
    probe = ConfigProbe()
    params = {"lr_schedule": "onecycle", "warmup": None, "freeze": None, "validation_fraction": 0.2}
    tiny(tiny_bert, callbacks=[probe], **params).fit(texts, labels)
    assert probe.config.lr_schedule == "onecycle"
    assert probe.config.warmup == 0.1  # None: the backend's warm-up
    assert probe.frozen == set()  # freeze=None trains everything, the recipe notwithstanding
    assert probe.config.patience is not None  # a validation split, so early stopping


def test_pretrained_false_initialises_the_encoder_at_random(tiny_bert):
    spec = TaskSpec("text-classification", 3)
    weights = {}
    for pretrained in (True, False):
        backend = HFEncoderBackend({"model": tiny_bert})
        backend.pretrained = pretrained
        backend.fit_preprocessing([])
        torch.manual_seed(1)
        weights[pretrained] = backend.build_module(spec).state_dict()
    from safetensors.torch import load_file

    saved = load_file(f"{tiny_bert}/model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(weights[True]["encoder." + key], saved[key])
    assert not torch.equal(weights[False]["encoder." + key], saved[key])
    assert weights[True]["head.weight"].shape == (3, 32)


# -- tokenisation, batching and pooling ------------------------------------------------------------
def test_make_data_trims_each_batch_to_its_longest_text(tiny_bert):
    backend = HFEncoderBackend({"model": tiny_bert, "max_length": 6})
    backend.fit_preprocessing([])
    data = backend.make_data(["good", "a good nice great film movie poor sad"], [0, 1])
    assert data.tensors["lengths"].tolist() == [3, 6]  # [CLS] good [SEP]; cut at max_length
    assert data.batch(torch.tensor([0]))["input_ids"].shape == (1, 3)
    assert data.batch(torch.tensor([0, 1]))["input_ids"].shape == (2, 6)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_a_text_s_scores(tiny_bert, pooling):
    backend = HFEncoderBackend({"model": tiny_bert, "pooling": pooling})
    backend.fit_preprocessing([])
    module = backend.build_module(TaskSpec("text-classification", 2)).eval()
    data = backend.make_data(["good film", "a bad movie and the awful film poor sad"])
    with torch.inference_mode():
        alone = backend.forward(module, data.batch(torch.tensor([0])))
        padded = backend.forward(module, data.batch(torch.tensor([0, 1])))[:1]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-5)


def _mixed_length_batch(tiny_bert):
    """A fresh backend and module in eval mode, and one batch of 21 texts of 1 to 15 words."""
    backend = HFEncoderBackend({"model": tiny_bert})
    backend.fit_preprocessing([])
    module = backend.build_module(TaskSpec("text-classification", 2)).eval()
    texts = [" ".join(["good", "bad", "film"][: 1 + i % 3] * (1 + i % 5)) for i in range(21)]
    return backend, module, backend.make_data(texts).batch(torch.arange(len(texts)))


def test_length_groups_give_the_scores_of_the_whole_batch(tiny_bert):
    backend, module, batch = _mixed_length_batch(tiny_bert)
    with torch.inference_mode():
        grouped = backend.forward(module, batch)
        module.group_size = 0
        whole = backend.forward(module, batch)
    torch.testing.assert_close(grouped, whole, rtol=1e-5, atol=1e-5)


def test_learns_an_obvious_rule(fitted, sentiment):
    texts, labels = sentiment
    assert (fitted.predict(texts) == np.array(labels)).mean() >= 0.9
    assert {"valid_score", "valid_loss"} <= set(fitted.history_[-1])


# -- persistence ------------------------------------------------------------------------------------
def test_state_names_the_model_as_json(fitted, tiny_bert):
    state = fitted._backend.get_state()
    assert json.loads(json.dumps(state)) == state
    assert state["path"] == str(fitted._backend.model_path) and state["hub_id"] is None


def test_save_and_load_offline(fitted, sentiment, tmp_path):
    texts, _ = sentiment
    reloaded = skbig.load(fitted.save(tmp_path / "model.skbig"))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert reloaded._backend.model_path == fitted._backend.model_path
    np.testing.assert_allclose(
        reloaded.predict_proba(texts), fitted.predict_proba(texts), rtol=1e-5, atol=1e-6
    )
    assert reloaded.predict(texts).tolist() == fitted.predict(texts).tolist()


@pytest.mark.slow
def test_save_and_load_offline_in_a_fresh_process(fitted, sentiment, tmp_path):
    texts, _ = sentiment
    path = fitted.save(tmp_path / "model.skbig")
    expected = fitted.predict_proba(texts)
    probe = (
        "import json, sys, skbig; m = skbig.load(sys.argv[1]); "
        "print(json.dumps(m.predict_proba(json.loads(sys.argv[2])).tolist()))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(np.array(json.loads(out.stdout)), expected, rtol=1e-5, atol=1e-6)


def test_load_names_a_model_directory_that_has_gone(tiny_bert, sentiment, tmp_path):
    texts, labels = sentiment
    moved = shutil.copytree(tiny_bert, tmp_path / "encoder")
    clf = tiny(str(moved), max_epochs=1).fit(texts[:8], labels[:8])
    path = clf.save(tmp_path / "model.skbig")
    shutil.rmtree(moved)
    with pytest.raises(WeightsNotFoundError, match=r"fitted from .*encoder.* no longer exists"):
        skbig.load(path)


def test_unpickling_names_a_model_directory_that_has_gone(tiny_bert, sentiment, tmp_path):
    texts, labels = sentiment
    moved = shutil.copytree(tiny_bert, tmp_path / "encoder")
    pickled = pickle.dumps(tiny(str(moved), max_epochs=1).fit(texts[:8], labels[:8]))
    shutil.rmtree(moved)
    with pytest.raises(WeightsNotFoundError, match=r"fitted from .*encoder.* no longer exists"):
        pickle.loads(pickled)


def test_an_unpickled_model_finds_the_weights_package_again_by_name():
    # A pickle from another machine names a site-packages path that does not exist here.
    from skbig_transformers.backend import MiniLMBackend
    from skbig_transformers.weights import minilm_path

    backend = MiniLMBackend()
    backend.set_state({"model": "all-MiniLM-L6-v2", "hub_id": MiniLMBackend.hub, "path": str(minilm_path())})
    backend.model_path = Path("/gone/model")
    assert pickle.loads(pickle.dumps(backend)).model_path == minilm_path()


def test_a_moved_weights_package_is_found_again_by_name():
    from skbig_transformers.backend import MiniLMBackend
    from skbig_transformers.weights import minilm_path

    backend = MiniLMBackend()
    backend.set_state({"model": "all-MiniLM-L6-v2", "hub_id": MiniLMBackend.hub, "path": "/gone/model"})
    assert backend.model_path == minilm_path()


# -- errors state the rule, the value and the fix ------------------------------------------------------
@pytest.mark.parametrize(
    "params, message",
    [
        ({"pooling": "max"}, r"pooling must be one of \['mean', 'cls'\], got pooling='max'"),
        ({"max_length": 1}, "max_length must be an int >= 2"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\), got dropout=1.5"),
        ({"model": ""}, "model must be a hub id, a weights name or a directory"),
        ({"allow_download": "yes"}, "allow_download must be True or False"),
        ({"poolin": "cls"}, "did you mean 'pooling'"),
    ],
    ids=["pooling", "max-length", "dropout", "empty-model", "allow-download", "typo"],
)
def test_bad_hyperparameters_state_the_rule(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        HFEncoderBackend(params)


def test_missing_model_says_how_to_name_one(sentiment):
    texts, labels = sentiment
    with pytest.raises(
        InvalidParameterError, match=r"needs a model: pass backend_params=\{'model': \.\.\.\}"
    ):
        TextClassifier(backend="hf_encoder").fit(texts, labels)


def test_model_path_that_does_not_exist(tmp_path, sentiment):
    texts, labels = sentiment
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(WeightsNotFoundError, match=r"model='.*no-such-model' is not an existing directory"):
        tiny(missing).fit(texts, labels)


def test_hub_id_not_in_the_offline_cache():
    backend = HFEncoderBackend({"model": "no-such-org/no-such-encoder"})
    with pytest.raises(
        WeightsNotFoundError, match=r"no offline copy of 'no-such-org/no-such-encoder'.*allow_download"
    ):
        backend.fit_preprocessing([])


def test_max_length_is_capped_at_the_model_limit(tiny_bert):
    backend = HFEncoderBackend({"model": tiny_bert, "max_length": 100})
    backend.fit_preprocessing([])
    assert backend.max_length() == 64  # the tiny model's position embeddings
    data = backend.make_data([" ".join(["good"] * 200)])
    assert data.tensors["input_ids"].shape == (1, 64)


def test_max_length_is_capped_by_the_position_embeddings_when_the_tokenizer_sets_no_limit(
    tiny_bert, sentiment, tmp_path
):
    # A tokenizer saved without model_max_length must not let a long text index past position 64.
    model = shutil.copytree(tiny_bert, tmp_path / "no-limit")
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("model_max_length", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    texts, labels = sentiment
    clf = tiny(str(model), max_epochs=1, backend_params={"model": str(model), "max_length": 512})
    clf.fit(texts[:8], labels[:8])
    assert clf._backend.max_length() == 64
    assert clf.predict([" ".join(["good"] * 300)]).shape == (1,)


@pytest.mark.parametrize("kept", [("config.json", "model.safetensors"), (), ("tokenizer.json",)])
def test_a_pretrained_directory_missing_model_or_tokenizer_files_is_named(
    tiny_bert, sentiment, tmp_path, kept
):
    # Without the tokenizer, transformers may build an empty one that maps every word to [UNK].
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in kept:
        shutil.copy(os.path.join(tiny_bert, name), partial / name)
    texts, labels = sentiment
    missing = "holds no tokenizer" if "config.json" in kept else r"not a Hugging Face model directory"
    with pytest.raises(WeightsNotFoundError, match=missing):
        tiny(tiny_bert, pretrained=str(partial)).fit(texts, labels)
    with pytest.raises(WeightsNotFoundError, match=missing):
        tiny(str(partial)).fit(texts, labels)


def test_an_empty_pretrained_path_is_not_the_current_directory(sentiment):
    texts, labels = sentiment
    with pytest.raises(WeightsNotFoundError, match=r"pretrained='' is not"):
        TextClassifier(backend="minilm", pretrained="").fit(texts, labels)


def test_a_reloaded_model_continues_with_the_same_pretrained_recipe(tiny_bert, sentiment):
    # freeze="auto" freezes the embeddings of pretrained weights: after pickling too.
    texts, labels = sentiment
    clf = tiny(tiny_bert, freeze="auto", max_epochs=1, warm_start=True).fit(texts[:8], labels[:8])
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded._backend.pretrained == clf._backend.pretrained is True
    for model in (clf, loaded):
        model.fit(texts[:8], labels[:8])
        assert model.training_settings_["frozen"] == ["encoder.embeddings.*"]


# -- packaging --------------------------------------------------------------------------------------------
def test_listing_backends_does_not_import_transformers():
    probe = (
        "import sys, skbig; rows = {r.name: r.status for r in skbig.list_backends()}; "
        "assert rows['minilm'] == rows['hf_encoder'] == 'ok', rows; "
        "print('transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


# -- head_init="linear_probe" ------------------------------------------------------------------------
def test_head_inputs_are_the_pooled_vectors_in_batch_order_despite_length_groups(tiny_bert):
    backend, module, batch = _mixed_length_batch(tiny_bert)
    with torch.inference_mode():
        from_features = module.head(backend.head_inputs(module, batch))
        scores = backend.forward(module, batch)
    assert backend.classifier_head(module) is module.head
    torch.testing.assert_close(from_features, scores, rtol=1e-5, atol=1e-5)


def test_linear_probe_starts_from_scikit_learns_logistic_regression(tiny_bert, sentiment):
    from sklearn.linear_model import LogisticRegression

    texts, labels = sentiment
    spy = Snapshots()
    clf = tiny(tiny_bert, head_init="linear_probe", batch_size=16, max_epochs=1, callbacks=[spy])
    clf.fit(texts, labels)
    backend, module = clf._backend, clf.module_
    module.load_state_dict(spy.weights[0])  # as training started: probed head, untouched encoder
    targets = clf.classes_.searchsorted(labels)
    batch = backend.make_data(texts).batch(torch.arange(len(texts)))
    with torch.inference_mode():
        features = backend.head_inputs(module.eval(), batch).double().numpy()
        proba = torch.softmax(backend.forward(module, batch).double(), dim=1).numpy()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(features, targets)
    np.testing.assert_allclose(proba, reference.predict_proba(features), atol=1e-3)


def test_training_settings_record_the_resolved_recipe_and_survive_save(tiny_bert, sentiment, tmp_path):
    texts, labels = sentiment
    clf = TextClassifier(
        backend="hf_encoder", backend_params={"model": tiny_bert}, max_epochs=1, random_state=0
    ).fit(texts, labels)
    settings = clf.training_settings_
    assert settings["lr"] == 5e-5 and settings["lr_schedule"] == "cosine" and settings["warmup"] == 0.1
    assert settings["frozen"] == ["encoder.embeddings.*"] and settings["validation_fraction"] == 0.0
    assert settings["head_init"] == "random" and settings["backbone_lr_mult"] == 1.0
    assert skbig.load(clf.save(tmp_path / "m.skbig")).training_settings_ == settings
