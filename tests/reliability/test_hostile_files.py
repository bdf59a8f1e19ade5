"""Hostile model files: ``skbig.load`` refuses them and never runs what they carry.

Every payload below, if unpickled, would write a marker file; each test
asserts both the refusal (a ``PersistenceError`` saying why) and that the
marker never appeared.
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

import skbig
from skbig import TextClassifier
from skbig.engine import _checkpoint
from skbig.exceptions import CheckpointError, PersistenceError
from skbig.persistence import CONFIG_MEMBER, WEIGHTS_MEMBER

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this object writes ``marker``: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"with open({self.marker!r}, 'w') as f: f.write('pwned')",))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A genuine saved model whose parts the tests recombine into hostile files."""
    clf = TextClassifier(max_epochs=1, random_state=0, backend_params={"embed_dim": 4})
    clf.fit(["good day", "bad day", "good night", "bad night"] * 2, [1, 0, 1, 0] * 2)
    return clf.save(tmp_path_factory.mktemp("model") / "real.skbig")


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _torch_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _hostile_files(tmp: Path, marker: Path, model_file: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, fragment of the refusal)."""
    payload = Payload(marker)
    real = _members(model_file)
    raw = tmp / "raw-pickle.skbig"
    raw.write_bytes(pickle.dumps(payload))
    joblib_file = tmp / "joblib.skbig"
    joblib.dump({"model": payload}, joblib_file)
    torch_file = tmp / "torch-save.skbig"
    torch.save({"model": payload}, torch_file)
    config = json.loads(real[CONFIG_MEMBER])
    return {
        "raw pickle renamed .skbig": (raw, "not a skbig model file"),
        "joblib dump": (joblib_file, "not a skbig model file"),
        "torch.save file (a zip of pickles)": (torch_file, "unexpected member|unsafe archive member"),
        "weights member is a torch pickle": (
            _zip(tmp / "weights-pickle.skbig", {**real, WEIGHTS_MEMBER: _torch_pickle({"w": payload})}),
            "weights",
        ),
        "weights member is a plain pickle": (
            _zip(tmp / "weights-plain.skbig", {**real, WEIGHTS_MEMBER: pickle.dumps(payload)}),
            "weights",
        ),
        "config member is a pickle": (
            _zip(tmp / "config-pickle.skbig", {**real, CONFIG_MEMBER: pickle.dumps(payload)}),
            "not a skbig model file",
        ),
        "extra pickle member": (
            _zip(tmp / "extra.skbig", {**real, "payload.pkl": pickle.dumps(payload)}),
            "unexpected member 'payload.pkl'",
        ),
        "member with ..": (
            _zip(tmp / "dotdot.skbig", {**real, "../../evil.pkl": pickle.dumps(payload)}),
            r"unsafe archive member '\.\./\.\./evil\.pkl'",
        ),
        "member with an absolute path": (
            _zip(tmp / "absolute.skbig", {**real, "/etc/evil.pkl": b"x"}),
            "unsafe archive member '/etc/evil.pkl'",
        ),
        "member with a backslash path": (
            _zip(tmp / "backslash.skbig", {**real, "..\\evil.pkl": b"x"}),
            "unsafe archive member",
        ),
        "estimator class named by import path": (
            _zip(
                tmp / "class.skbig",
                {**real, CONFIG_MEMBER: json.dumps({**config, "estimator": "os.system"}).encode()},
            ),
            "unknown estimator 'os.system'",
        ),
        "future format version": (
            _zip(
                tmp / "version.skbig",
                {**real, CONFIG_MEMBER: json.dumps({**config, "format_version": 99}).encode()},
            ),
            "format version 99",
        ),
        "parameter of a newer skbig": (
            _zip(
                tmp / "newer.skbig",
                {
                    **real,
                    CONFIG_MEMBER: json.dumps(
                        {**config, "skbig_version": "9.0", "params": {**config["params"], "future_knob": 1}}
                    ).encode(),
                },
            ),
            r"saved by skbig 9\.0 with parameters this skbig does not know: \['future_knob'\]",
        ),
        "configuration that does not fit the weights": (
            _zip(
                tmp / "mismatch.skbig",
                {
                    **real,
                    CONFIG_MEMBER: json.dumps(
                        {
                            **config,
                            "fitted": {
                                **config["fitted"],
                                "spec": {**config["fitted"]["spec"], "n_outputs": 7},
                            },
                        }
                    ).encode(),
                },
            ),
            "is damaged: its configuration and weights do not fit together",
        ),
        "truncated archive": (_truncated(tmp, model_file), "not a skbig model file"),
        "empty file": (_write(tmp / "empty.skbig", b""), "not a skbig model file"),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(tmp: Path, model_file: Path) -> Path:
    data = model_file.read_bytes()
    return _write(tmp / "truncated.skbig", data[: len(data) // 2])


HOSTILE_NAMES = [
    "raw pickle renamed .skbig",
    "joblib dump",
    "torch.save file (a zip of pickles)",
    "weights member is a torch pickle",
    "weights member is a plain pickle",
    "config member is a pickle",
    "extra pickle member",
    "member with ..",
    "member with an absolute path",
    "member with a backslash path",
    "estimator class named by import path",
    "future format version",
    "parameter of a newer skbig",
    "configuration that does not fit the weights",
    "truncated archive",
    "empty file",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_is_refused_and_its_payload_never_runs(name, tmp_path, marker, model_file):
    files = _hostile_files(tmp_path, marker, model_file)
    assert sorted(files) == sorted(HOSTILE_NAMES)
    path, fragment = files[name]
    with pytest.raises(PersistenceError, match=fragment):
        skbig.load(path)
    assert not marker.exists(), "the payload ran"


def test_the_payload_is_real(tmp_path, marker):
    """The control: unpickling the payload does write the marker, so its absence above means something."""
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "pwned"


def test_the_genuine_file_still_loads(model_file):
    assert len(skbig.load(model_file).predict(["good day"])) == 1


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path, marker):
    torch.save(
        {"fingerprint": "f", "epoch": 1, "evil": Payload(marker)}, _checkpoint.checkpoint_path(tmp_path, "f")
    )
    with pytest.raises(CheckpointError, match="cannot be read"):
        _checkpoint.load(tmp_path, "f")
    assert not marker.exists()


@pytest.mark.parametrize(
    "distribution, fragment",
    [("skbig-fancy", "install skbig-fancy"), (None, "register the same backend class before skbig.load")],
)
def test_model_of_a_missing_plugin_names_it(tmp_path, model_file, distribution, fragment):
    real = _members(model_file)
    config = json.loads(real[CONFIG_MEMBER])
    config["fitted"]["backend"] = "fancy_encoder"
    config["backend_distribution"] = distribution
    path = _zip(tmp_path / "plugin.skbig", {**real, CONFIG_MEMBER: json.dumps(config).encode()})
    with pytest.raises(PersistenceError, match=f"needs the backend 'fancy_encoder'.*{fragment}"):
        skbig.load(path)


def _python_sources() -> list[Path]:
    roots = [REPO / "skbig", REPO / "plugins", REPO / "benchmarks", REPO / "examples", REPO / "tests"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*.py") if ".venv" not in p.parts)


def test_every_torch_load_in_the_code_uses_weights_only():
    calls = 0
    offenders = []
    for path in _python_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            func = node.func
            if func.attr != "load" or not (isinstance(func.value, ast.Name) and func.value.id == "torch"):
                continue
            calls += 1
            safe = any(
                kw.arg == "weights_only" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                for kw in node.keywords
            )
            if not safe:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert calls >= 2  # the scan does find the calls (checkpoints, the efficientnet plugin...)
    assert not offenders, f"torch.load without weights_only=True at {offenders}"


def test_the_library_never_calls_an_unpickler():
    """No pickle/joblib loads anywhere in skbig or its plugins (examples may joblib.load their own files)."""
    banned = {("pickle", "load"), ("pickle", "loads"), ("joblib", "load"), ("dill", "load")}
    found = []
    library = [REPO / "skbig", *(REPO / "plugins").glob("*/src")]
    for path in sorted(p for root in library for p in root.rglob("*.py")):
        if path.name == "testing.py":
            continue  # the conformance suite checks that fitted models pickle (its own round trip)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                value = node.func.value
                if isinstance(value, ast.Name) and (value.id, node.func.attr) in banned:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


def test_a_model_trained_on_a_gpu_loads_and_predicts_on_a_cpu_only_machine(tmp_path, model_file):
    # save() on a GPU machine writes device="cuda"; loading it where CUDA is missing must still work.
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the case is a CPU-only one")
    real = _members(model_file)
    config = json.loads(real[CONFIG_MEMBER])
    config["params"]["device"] = "cuda"
    path = _zip(tmp_path / "gpu.skbig", {**real, CONFIG_MEMBER: json.dumps(config).encode()})
    loaded = skbig.load(path)
    assert loaded.device == "cuda" and loaded.device_ == "cpu"
    expected = skbig.load(model_file).predict_proba(["good day", "bad night"])
    np.testing.assert_array_equal(loaded.predict_proba(["good day", "bad night"]), expected)
