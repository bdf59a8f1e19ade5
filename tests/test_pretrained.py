"""``skbig.pretrained``: where a backend's model files come from, and finding them again on load.

Every test runs against temporary directories with the weights sources faked:
no announced packages, an empty hub cache, ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import skbig.pretrained
from skbig.exceptions import SkbigError
from skbig.pretrained import (
    ModelLocation,
    WeightsNotFoundError,
    WeightsSource,
    locate_model,
    locate_model_directory,
    locate_named_model,
    relocate_model,
    resolve_weights,
    weights_resolve_offline,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No installed weights, an empty hub cache; records every hub look-up as ``(hub_id, local_only)``."""
    calls: list[tuple[str, bool]] = []

    def no_snapshot(hub_id, local_only):
        calls.append((hub_id, local_only))
        return None

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(skbig.pretrained, "list_weights", lambda: {})
    monkeypatch.setattr(skbig.pretrained, "_hub_snapshot", no_snapshot)
    return calls


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A directory shaped like ``save_pretrained``'s output."""
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    return directory


@pytest.fixture
def cached_hub(monkeypatch, tmp_path: Path):
    """Put hub ids in a fake local cache: ``cached_hub("org/name")`` returns its directory."""
    cache: dict[str, Path] = {}

    def snapshot(hub_id, local_only):
        return cache.get(hub_id)

    def add(hub_id: str) -> Path:
        cache[hub_id] = tmp_path / "hub" / hub_id.replace("/", "--")
        cache[hub_id].mkdir(parents=True)
        return cache[hub_id]

    monkeypatch.setattr(skbig.pretrained, "_hub_snapshot", snapshot)
    return add


@pytest.fixture
def announced(monkeypatch, tmp_path: Path):
    """Announce a weights name as an installed package would: ``announced("name")`` returns its directory."""
    sources: dict[str, WeightsSource] = {}
    module = types.ModuleType("fake_weights_package")
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def add(name: str) -> Path:
        path = tmp_path / "package" / name
        path.mkdir(parents=True)
        attr = name.replace("-", "_").replace(".", "_")
        setattr(module, attr, lambda: path)
        sources[name] = WeightsSource(name, "fake-weights-package", f"{module.__name__}:{attr}")
        return path

    monkeypatch.setattr(skbig.pretrained, "list_weights", lambda: dict(sources))
    return add


# -- ModelLocation --------------------------------------------------------------------------------------
def test_a_location_unpacks_like_the_tuple_backends_return(model_dir):
    location = ModelLocation("org/name", "org/name", model_dir)
    ref, hub_id, path = location
    assert (ref, hub_id, path) == ("org/name", "org/name", model_dir) and location[2] == model_dir
    assert location.path is path


# -- locate_model: a local directory --------------------------------------------------------------------
@pytest.mark.parametrize("as_path", [False, True], ids=["str", "pathlike"])
def test_an_existing_directory_is_used_as_is(model_dir, offline, as_path):
    location = locate_model(model_dir if as_path else str(model_dir), backend_name="demo")
    assert location == ModelLocation(str(model_dir.resolve()), None, model_dir.resolve())
    assert offline == []  # never looked up by name


def test_a_directory_named_like_a_hub_id_wins_over_the_hub(tmp_path, monkeypatch, offline):
    (tmp_path / "bert-base-uncased").mkdir()
    monkeypatch.chdir(tmp_path)
    location = locate_model("bert-base-uncased", backend_name="demo")
    assert location.hub_id is None and location.path == (tmp_path / "bert-base-uncased").resolve()
    assert offline == []


def test_home_is_expanded(tmp_path, monkeypatch):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert locate_model("~/models/mine", backend_name="demo").path == (tmp_path / "models" / "mine").resolve()


@pytest.mark.parametrize("relative", ["./missing", "a/b/c", "~/missing"], ids=["dot", "nested", "home"])
def test_a_path_that_is_not_a_hub_id_is_never_looked_up(tmp_path, monkeypatch, offline, relative):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(
        WeightsNotFoundError, match=rf"backend 'demo': model='{relative}' is not an existing directory$"
    ):
        locate_model(relative, backend_name="demo")
    assert offline == []


def test_a_missing_directory_names_the_backend_the_value_and_the_fix(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(WeightsNotFoundError) as info:
        locate_model(missing, backend_name="demo", directory_hint="pass an existing directory")
    assert str(info.value) == (
        f"backend 'demo': model={missing!r} is not an existing directory; pass an existing directory"
    )
    assert isinstance(info.value, SkbigError) and isinstance(info.value, FileNotFoundError)


def test_a_required_file_makes_a_directory_qualify(model_dir, tmp_path):
    assert (
        locate_model(model_dir, backend_name="demo", required_file="config.json").path == model_dir.resolve()
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        WeightsNotFoundError,
        match=r"backend 'demo': model='.*empty' is not a Whisper directory \(no config\.json there\); fix$",
    ):
        locate_model(
            empty, backend_name="demo", required_file="config.json", kind="Whisper", directory_hint="fix"
        )


# -- locate_model: a hub id or a weights name -----------------------------------------------------------
def test_a_hub_id_is_found_in_the_local_cache(cached_hub):
    cached = cached_hub("org/encoder")
    assert locate_model("org/encoder", backend_name="demo") == ModelLocation(
        "org/encoder", "org/encoder", cached
    )


def test_a_weights_name_is_found_through_its_package(announced):
    path = announced("tiny-encoder")
    assert locate_model("tiny-encoder", backend_name="demo") == ModelLocation(
        "tiny-encoder", "tiny-encoder", path
    )


def test_a_broken_announcement_is_skipped_not_raised(monkeypatch, cached_hub):
    # A plugin whose skbig.weights target fails to import must not break auto, nor other sources.
    broken = WeightsSource("tiny-encoder", "broken-weights-package", "no_such_module_xyz:path")
    monkeypatch.setattr(skbig.pretrained, "list_weights", lambda: {"tiny-encoder": broken})
    assert not weights_resolve_offline("tiny-encoder")
    with pytest.raises(
        WeightsNotFoundError, match=r"Skipped: broken-weights-package announces 'tiny-encoder'"
    ):
        resolve_weights("tiny-encoder")
    cached = cached_hub("org/tiny-encoder")
    assert resolve_weights("tiny-encoder", hub_id="org/tiny-encoder") == cached  # the next source


def test_a_name_found_nowhere_offline_says_so_and_never_downloads(offline):
    with pytest.raises(WeightsNotFoundError) as info:
        locate_model(
            "org/encoder",
            backend_name="demo",
            allow_download=True,  # HF_HUB_OFFLINE=1 wins
            install_hint="demo-weights",
            offline_hint="or set allow_download=True while online",
        )
    message = str(info.value)
    assert message.startswith("backend 'demo': no local directory and no offline copy of 'org/encoder': ")
    assert "pip install demo-weights" in message
    assert message.endswith("; or set allow_download=True while online")
    assert isinstance(info.value.__cause__, WeightsNotFoundError)
    assert offline == [("org/encoder", True)]


# -- locate_model_directory and locate_named_model ------------------------------------------------------
def test_an_explicit_directory_is_never_looked_up_by_name(tmp_path, monkeypatch, offline):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        WeightsNotFoundError,
        match=r"backend 'demo': pretrained='bert-base-uncased' is not an existing directory; pass one$",
    ):
        locate_model_directory("bert-base-uncased", backend_name="demo", param="pretrained", hint="pass one")
    assert offline == []


def test_a_named_model_keeps_its_own_hub_id(cached_hub):
    cached = cached_hub("org/tiny")
    location = locate_named_model("tiny", backend_name="demo", hub_id="org/tiny")
    assert location == ModelLocation("tiny", "org/tiny", cached)


# -- relocate_model -------------------------------------------------------------------------------------
def test_a_directory_still_there_is_kept(model_dir, offline):
    saved = ModelLocation("org/encoder", "org/encoder", model_dir)
    assert relocate_model(saved, backend_name="demo") == saved
    assert relocate_model(saved, backend_name="demo", required_file="config.json") == saved
    assert offline == []


def test_a_moved_hub_model_is_found_again_by_its_hub_id(cached_hub, tmp_path):
    cached = cached_hub("org/encoder")
    saved = ModelLocation("org/encoder", "org/encoder", tmp_path / "gone")
    assert relocate_model(saved, backend_name="demo") == ModelLocation("org/encoder", "org/encoder", cached)


def test_a_moved_package_model_is_found_again_by_its_name(announced, tmp_path):
    path = announced("tiny-encoder")
    saved = ModelLocation("tiny-encoder", None, tmp_path / "gone")
    assert relocate_model(saved, backend_name="demo").path == path


def test_a_directory_without_its_required_file_is_relocated(cached_hub, tmp_path):
    cached = cached_hub("org/whisper")
    stale = tmp_path / "stale"
    stale.mkdir()
    saved = ModelLocation("org/whisper", "org/whisper", stale)
    assert relocate_model(saved, backend_name="demo").path == stale
    assert relocate_model(saved, backend_name="demo", required_file="config.json").path == cached


def test_a_moved_hub_model_not_in_the_cache_names_the_hint(tmp_path):
    saved = ModelLocation("org/encoder", "org/encoder", tmp_path / "gone")
    with pytest.raises(
        WeightsNotFoundError, match=r"no offline copy of 'org/encoder'.*; set allow_download$"
    ):
        relocate_model(saved, backend_name="demo", hint="set allow_download")


@pytest.mark.parametrize(
    ("required_file", "gone"),
    [(None, "no longer exists"), ("config.json", "no longer holds them")],
    ids=["directory", "required-file"],
)
def test_a_plain_directory_that_has_gone_says_to_put_it_back(tmp_path, offline, required_file, gone):
    path = tmp_path / "encoder"
    saved = ModelLocation(str(path), None, path)
    with pytest.raises(WeightsNotFoundError) as info:
        relocate_model(
            saved, backend_name="demo", required_file=required_file, contents="tokenizer and config"
        )
    assert str(info.value) == (
        f"backend 'demo': this model was fitted from {str(path)!r}, whose tokenizer and config are needed "
        f"to use it, but {str(path)!r} {gone}; put that directory back (or a copy at the same path)"
    )
    assert offline == []
