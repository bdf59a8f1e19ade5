"""Plugin discovery through real entry points, with broken plugins isolated."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import skbig
from skbig.backends.registry import _REGISTRY, block_backend, get_backend, list_backends, unregister_backend
from skbig.cli import main as cli_main
from skbig.exceptions import BackendNotFoundError, PluginError

PLUGIN_MODULE = textwrap.dedent(
    """
    from skbig.backends.base import TextClassificationBackend
    from skbig.backends.fasttext import FastTextBackend


    class GoodBackend(FastTextBackend):
        name = "fake_good"


    class OldApiBackend(FastTextBackend):
        name = "fake_oldapi"
        api_version = 0


    class IncompleteBackend(TextClassificationBackend):
        name = "fake_incomplete"


    class RaisingInitBackend(FastTextBackend):
        name = "fake_raises"

        def __init__(self, params=None):
            raise RuntimeError("constructor exploded")
    """
)

ENTRY_POINTS = textwrap.dedent(
    """
    [skbig.backends]
    fake_good = fake_skbig_plugin:GoodBackend
    fake_oldapi = fake_skbig_plugin:OldApiBackend
    fake_incomplete = fake_skbig_plugin:IncompleteBackend
    fake_raises = fake_skbig_plugin:RaisingInitBackend
    fake_missing = no_such_module_anywhere:Backend
    """
)


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """A plugin distribution written as a real dist-info folder on sys.path."""
    (tmp_path / "fake_skbig_plugin.py").write_text(PLUGIN_MODULE)
    dist = tmp_path / "fake_skbig_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-skbig-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake-skbig-plugin"
    for name in ("fake_good", "fake_oldapi", "fake_incomplete", "fake_raises", "fake_missing"):
        _REGISTRY.forget(name)
    sys.modules.pop("fake_skbig_plugin", None)


def test_builtins_are_registered_through_entry_points():
    rows = {r.name: r for r in list_backends()}
    assert rows["fasttext"].distribution == "skbig" and rows["fasttext"].status == "ok"
    assert rows["fasttext"].source == "skbig.backends.fasttext:FastTextBackend"
    assert rows["lstm"].task == "text-classification"


def test_fake_distribution_is_discovered_with_its_metadata(fake_distribution):
    rows = {r.name: r for r in list_backends()}
    good = rows["fake_good"]
    assert (good.distribution, good.version, good.status, good.task) == (
        fake_distribution,
        "1.2.3",
        "ok",
        "text-classification",
    )
    assert get_backend("fake_good").__name__ == "GoodBackend"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("fake_oldapi", "API version 0"),
        ("fake_incomplete", "missing required method"),
        ("fake_raises", "constructor exploded"),
        ("fake_missing", "No module named 'no_such_module_anywhere'"),
    ],
)
def test_broken_plugins_are_reported_and_isolated(fake_distribution, name, reason):
    rows = {r.name: r for r in list_backends()}
    assert rows[name].status == "broken"
    assert reason in rows[name].error
    assert rows["fasttext"].status == "ok" and rows["fake_good"].status == "ok"
    with pytest.raises(PluginError, match=reason):
        get_backend(name)
    clf = skbig.TextClassifier(backend="fake_good", max_epochs=1).fit(["a", "b", "c", "d"], [0, 1, 0, 1])
    assert clf.backend_ == "fake_good"


def test_import_failure_is_an_import_error_subclass(fake_distribution):
    with pytest.raises(ImportError):
        get_backend("fake_missing")


def test_unknown_name_lists_installed_and_broken(fake_distribution):
    list_backends()
    with pytest.raises(BackendNotFoundError) as info:
        get_backend("fake_god", "text-classification")
    message = str(info.value)
    assert "did you mean 'fake_good'" in message
    assert "fasttext" in message and "fake_missing" in message


def test_cli_plugins_prints_table_with_broken_reasons(fake_distribution, capsys):
    assert cli_main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "fasttext" in out and "fake_good" in out
    assert "fake_raises" in out and "constructor exploded" in out


def test_python_dash_m_skbig_plugins():
    result = subprocess.run(
        [sys.executable, "-m", "skbig", "plugins"], capture_output=True, text=True, timeout=120, check=True
    )
    assert "fasttext" in result.stdout and "ok" in result.stdout


def test_register_backend_in_process():
    from skbig.backends.fasttext import FastTextBackend

    class Tiny(FastTextBackend):
        name = "tiny_inprocess"
        defaults = {**FastTextBackend.defaults, "embed_dim": 4}

    try:
        skbig.register_backend(Tiny)
        with pytest.raises(ValueError, match="already registered"):
            skbig.register_backend(Tiny)
        row = {r.name: r for r in list_backends()}["tiny_inprocess"]
        assert row.distribution == "<in-process>" and row.status == "ok"
        clf = skbig.TextClassifier(backend="tiny_inprocess", max_epochs=1).fit(
            ["a", "b", "c", "d"], [0, 1, 0, 1]
        )
        assert clf.module_.embedding.weight.shape[1] == 4
    finally:
        unregister_backend("tiny_inprocess")
    with pytest.raises(BackendNotFoundError):
        get_backend("tiny_inprocess")


def test_register_backend_validates_the_contract():
    from skbig.backends.base import TextClassificationBackend

    class Incomplete(TextClassificationBackend):
        name = "incomplete_inprocess"

    with pytest.raises(PluginError, match="missing required method"):
        skbig.register_backend(Incomplete)
    assert "incomplete_inprocess" not in {r.name for r in list_backends()}


def test_blocked_backend_is_listed_and_refused(monkeypatch):
    monkeypatch.setenv("SKBIG_BLOCK_BACKENDS", "lstm")
    rows = {r.name: r for r in list_backends()}
    assert rows["lstm"].status == "blocked"
    with pytest.raises(PluginError, match="blocked"):
        get_backend("lstm")


def test_block_backend_function():
    block_backend("nonexistent_backend_for_block_test")
    assert "nonexistent_backend_for_block_test" in _REGISTRY.blocked()
    _REGISTRY._blocked.discard("nonexistent_backend_for_block_test")
