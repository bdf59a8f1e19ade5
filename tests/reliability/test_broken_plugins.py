"""Broken plugins break only themselves: not ``list_backends()``, not the CLI, not a search.

The plugins are real installed distributions (a ``dist-info`` folder with
``entry_points.txt`` on ``sys.path``), discovered through entry points the
way ``pip install`` makes them visible.  ``tests/backends/test_registry.py``
covers listing, error messages and in-process use; this module adds the
failure modes that only show while training (a forward pass that raises),
plugins that exit the interpreter on import, a fresh-process CLI, and
what a search makes of all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import optuna
import pytest
from optuna.trial import TrialState

import skbig
import skbig.cli
from skbig import OptunaSearchCV, TextClassifier
from skbig.backends.registry import _REGISTRY, get_backend, list_backends
from skbig.exceptions import PluginError
from skbig.search._worker import ERROR_ATTR

PLUGIN = textwrap.dedent(
    """
    from skbig.backends.fasttext import FastTextBackend


    class RaisesInForward(FastTextBackend):
        name = "rel_forward"

        def loss(self, module, batch, *, class_weight=None):
            raise RuntimeError("forward pass exploded in the plugin")


    class OtherApi(FastTextBackend):
        name = "rel_api"
        api_version = 99


    class RaisesInInit(FastTextBackend):
        name = "rel_init"

        def __init__(self, params=None):
            raise ValueError("constructor exploded in the plugin")
    """
)
EXPLODES_ON_IMPORT = "raise RuntimeError('the plugin module exploded on import')\n"
EXITS_ON_IMPORT = "import sys\nsys.exit('the plugin called sys.exit on import')\n"
ENTRY_POINTS = textwrap.dedent(
    """
    [skbig.backends]
    rel_forward = rel_plugin:RaisesInForward
    rel_api = rel_plugin:OtherApi
    rel_init = rel_plugin:RaisesInInit
    rel_import = rel_plugin_explodes:Backend
    rel_exit = rel_plugin_exits:Backend
    rel_absent = rel_plugin_absent_module:Backend
    """
)
NAMES = ("rel_forward", "rel_api", "rel_init", "rel_import", "rel_exit", "rel_absent")
BROKEN = {
    "rel_api": "API version 99",
    "rel_init": "constructor exploded",
    "rel_import": "exploded on import",
    "rel_exit": "sys.exit on import",
    "rel_absent": "No module named 'rel_plugin_absent_module'",
}
TEXTS = ["good day", "bad day", "good night", "bad night"] * 3
LABELS = [1, 0, 1, 0] * 3


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    (tmp_path / "rel_plugin.py").write_text(PLUGIN)
    (tmp_path / "rel_plugin_explodes.py").write_text(EXPLODES_ON_IMPORT)
    (tmp_path / "rel_plugin_exits.py").write_text(EXITS_ON_IMPORT)
    dist = tmp_path / "rel_skbig_plugin-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rel-skbig-plugin\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in NAMES:
        _REGISTRY.forget(name)
    for module in ("rel_plugin", "rel_plugin_explodes", "rel_plugin_exits"):
        sys.modules.pop(module, None)


def test_list_backends_survives_every_broken_plugin(plugin_dir):
    rows = {r.name: r for r in list_backends()}
    for name, reason in BROKEN.items():
        assert rows[name].status == "broken" and reason in rows[name].error, name
        with pytest.raises(PluginError, match=reason):
            get_backend(name)
    assert rows["rel_forward"].status == "ok"  # its bug only shows when it trains
    assert all(rows[n].status == "ok" for n in ("fasttext", "lstm", "cnn", "resnet", "ctc"))


@pytest.fixture
def hijacker(tmp_path, monkeypatch):
    """A distribution, first on sys.path, announcing skbig's "fasttext" and a broken weights target."""
    (tmp_path / "rel_hijack.py").write_text(
        "from skbig.backends.fasttext import FastTextBackend\n\n\n"
        "class Impostor(FastTextBackend):\n    name = 'fasttext'\n"
    )
    dist = tmp_path / "aaa_hijack-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aaa-hijack\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(
        "[skbig.backends]\nfasttext = rel_hijack:Impostor\n\n"
        "[skbig.weights]\nall-MiniLM-L6-v2 = rel_hijack_absent_module:path\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _REGISTRY.forget("fasttext")
    yield
    _REGISTRY.forget("fasttext")
    _REGISTRY._clashes.pop("fasttext", None)
    sys.modules.pop("rel_hijack", None)


def test_a_plugin_cannot_take_over_a_built_in_name_and_the_clash_is_shown(hijacker, capsys):
    rows = {r.name: r for r in list_backends()}
    assert rows["fasttext"].distribution == "skbig" and rows["fasttext"].status == "ok"
    assert (
        "also provided by aaa-hijack 0.0.1 (rel_hijack:Impostor), which is ignored" in rows["fasttext"].error
    )
    assert get_backend("fasttext").__module__ == "skbig.backends.fasttext"
    assert skbig.cli.main(["plugins", "--task", "text-classification"]) == 0
    assert "fasttext (skbig): name clash" in capsys.readouterr().out


def test_a_broken_weights_announcement_breaks_neither_auto_nor_other_sources(hijacker):
    from skbig.backends._auto import choose_backend
    from skbig.pretrained import WeightsNotFoundError, resolve_weights, weights_resolve_offline

    weights_resolve_offline("all-MiniLM-L6-v2")  # True with the real package installed; never raises
    assert choose_backend("text-classification") in {"minilm", "fasttext"}
    try:
        assert resolve_weights("all-MiniLM-L6-v2").exists()  # the real package, announced second
    except WeightsNotFoundError as exc:  # no real package here: the broken one is named
        assert "Skipped: aaa-hijack announces 'all-MiniLM-L6-v2'" in str(exc)


def test_a_plugin_that_raises_in_forward_fails_only_its_own_fit(plugin_dir):
    with pytest.raises(RuntimeError, match="forward pass exploded"):
        TextClassifier(backend="rel_forward", max_epochs=1).fit(TEXTS, LABELS)
    clf = TextClassifier(backend="fasttext", max_epochs=1, random_state=0).fit(TEXTS, LABELS)
    assert len(clf.predict(TEXTS)) == len(TEXTS)


def test_the_cli_lists_them_in_a_fresh_process(plugin_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "skbig", "plugins"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    for name, reason in BROKEN.items():
        assert name in result.stdout and reason in result.stdout, name
    assert "fasttext" in result.stdout and "rel-skbig-plugin" in result.stdout


class InOrder(optuna.samplers.BaseSampler):
    """Trial ``n`` takes the ``n``-th choice: every backend is tried exactly once."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name != "backend":
            return optuna.samplers.RandomSampler(seed=trial.number).sample_independent(
                study, trial, param_name, param_distribution
            )
        return param_distribution.choices[trial.number % len(param_distribution.choices)]


def test_inside_a_search_each_broken_plugin_is_a_failed_trial(plugin_dir):
    candidates = ["fasttext", *NAMES]
    search = OptunaSearchCV(
        TextClassifier(max_epochs=1, random_state=0, backend_params={"embed_dim": 4}),
        {"backend": candidates},
        n_trials=len(candidates),
        cv=2,
        sampler=InOrder(),
    ).fit(TEXTS, LABELS)
    by_backend = {t.params["backend"]: t for t in search.study_.trials}
    assert set(by_backend) == set(candidates)  # every trial ran, none stopped the study
    for name in NAMES:
        trial = by_backend[name]
        assert trial.state == TrialState.FAIL, name
        assert ERROR_ATTR in trial.user_attrs, name
    assert "forward pass exploded" in by_backend["rel_forward"].user_attrs[ERROR_ATTR]
    assert by_backend["fasttext"].state == TrialState.COMPLETE
    assert search.best_params_["backend"] == "fasttext"
    assert len(search.predict(TEXTS)) == len(TEXTS)
    assert skbig.list_backends()  # and the registry still answers afterwards
