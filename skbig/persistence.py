"""Saving and loading fitted estimators without pickle.

A model file is a zip archive with two members: ``skbig.json`` (format
version, estimator class, parameters, learned preprocessing such as
vocabularies, class labels, history) and ``weights.safetensors``.  Loading
parses JSON and raw tensors only, so a hostile file cannot run code; the
estimator class is looked up in a fixed table, never imported by name.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from skbig.exceptions import PersistenceError, SkbigError

__all__ = ["save", "load", "FORMAT_VERSION", "encode_labels", "decode_labels"]

FORMAT_VERSION = 1
CONFIG_MEMBER = "skbig.json"
WEIGHTS_MEMBER = "weights.safetensors"
_MAX_CONFIG_BYTES = 512 * 1024 * 1024
_ESTIMATORS = {
    "TextClassifier": "skbig.estimators.text",
    "ImageClassifier": "skbig.estimators.image",
    "SpeechRecognizer": "skbig.estimators.speech",
}
# Parameters that are live objects or machine-specific and are not saved.
_UNSAVED_PARAMS = {"callbacks"}


def save(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted ``estimator`` to ``path`` atomically and return the path."""
    from safetensors.torch import save as save_tensors

    estimator._check_is_fitted()
    name = type(estimator).__name__
    if name not in _ESTIMATORS:
        raise PersistenceError(f"cannot save {name}: only {sorted(_ESTIMATORS)} are supported")
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in _UNSAVED_PARAMS}
    config = {
        "format_version": FORMAT_VERSION,
        "skbig_version": _skbig_version(),
        "estimator": name,
        "params": _json_params(params),
        "backend_distribution": _distribution_of(estimator.backend_),
        "backend_state": estimator._backend.get_state(),
        "fitted": estimator._fitted_json(),
    }
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in estimator.module_.state_dict().items()}
    path = Path(path)
    if path.is_dir():
        raise PersistenceError(f"cannot save to {str(path)!r}: it is a directory; pass a file path inside it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(CONFIG_MEMBER, json.dumps(config, ensure_ascii=False))
            archive.writestr(WEIGHTS_MEMBER, save_tensors(weights))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a model file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _skbig_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skbig")
    except PackageNotFoundError:
        return "unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike[str]) -> Any:
    """Load a model written by ``estimator.save(path)``; never unpickles.

    Raises
    ------
    PersistenceError
        If the file is not a skbig model, comes from an unknown format version,
        contains unsafe archive members, or needs a backend plugin that is not
        installed (the message names it).
    """
    from importlib import import_module

    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    from skbig.backends.registry import get_backend
    from skbig.exceptions import BackendNotFoundError, PluginError

    path = Path(path)
    if not path.is_file():
        raise PersistenceError(f"no model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(archive, path)
            config = json.loads(_read_member(archive, CONFIG_MEMBER, path))
            weights = load_tensors(_read_member(archive, WEIGHTS_MEMBER, path))
    except SafetensorError as exc:
        raise PersistenceError(
            f"{str(path)!r}: {WEIGHTS_MEMBER} is not a valid safetensors file ({exc}); the model is "
            "corrupt or was crafted (pickled weights are never loaded)"
        ) from exc
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersistenceError(
            f"{str(path)!r} is not a skbig model file (expected a zip archive with "
            f"{CONFIG_MEMBER} and {WEIGHTS_MEMBER}; pickles are never loaded): {exc}"
        ) from exc
    version = config.get("format_version") if isinstance(config, dict) else None
    if version != FORMAT_VERSION:
        raise PersistenceError(
            f"{str(path)!r} has model format version {version!r}; this skbig reads version "
            f"{FORMAT_VERSION}. Upgrade skbig (or re-save the model with this version)."
        )
    name = config.get("estimator")
    if name not in _ESTIMATORS:
        raise PersistenceError(f"{str(path)!r} names an unknown estimator {name!r}")
    cls = getattr(import_module(_ESTIMATORS[name]), name)
    fitted = config["fitted"]
    try:
        backend_cls = get_backend(fitted["backend"], cls._task)
    except (BackendNotFoundError, PluginError) as exc:
        dist = config.get("backend_distribution")
        how = (
            f"install {dist} (pip install {dist})"
            if dist
            else "it was registered in the saving process (register_backend), so register the same "
            "backend class before skbig.load, or install the plugin that provides it"
        )
        raise PersistenceError(
            f"{str(path)!r} needs the backend {fitted['backend']!r}, which is not available here: "
            f"{how}. Details: {exc}"
        ) from exc
    params = {key: _from_json(value) for key, value in config["params"].items()}
    unknown = sorted(set(params) - set(cls().get_params(deep=False)))
    if unknown:
        raise PersistenceError(
            f"{str(path)!r} was saved by skbig {config.get('skbig_version', '(a newer one)')} with "
            f"parameters this skbig does not know: {unknown}; upgrade skbig to load it"
        )
    estimator = cls(**params)
    try:
        backend = backend_cls(estimator.backend_params)
        backend.set_state(config["backend_state"])
        backend.pretrained = estimator.pretrained if backend_cls.uses_pretrained_weights else False
        estimator._restore_fitted(fitted, backend, weights)
    except SkbigError:
        raise  # already says what to do (e.g. a plugin's missing model directory)
    except (KeyError, TypeError, RuntimeError) as exc:  # a hand-edited or mismatched file
        raise PersistenceError(
            f"{str(path)!r} is damaged: its configuration and weights do not fit together ({exc!r}); "
            "re-save the model"
        ) from exc
    return estimator


def _check_members(archive: zipfile.ZipFile, path: Path) -> None:
    for info in archive.infolist():
        member = PurePosixPath(info.filename)
        if member.is_absolute() or ".." in member.parts or "\\" in info.filename:
            raise PersistenceError(
                f"{str(path)!r} contains an unsafe archive member {info.filename!r} "
                "(absolute path or '..'); refusing to load it"
            )
        if info.filename not in (CONFIG_MEMBER, WEIGHTS_MEMBER):
            raise PersistenceError(f"{str(path)!r} contains an unexpected member {info.filename!r}")


def _read_member(archive: zipfile.ZipFile, member: str, path: Path) -> bytes:
    try:
        info = archive.getinfo(member)
    except KeyError as exc:
        raise PersistenceError(f"{str(path)!r} lacks {member}; it is not a complete skbig model") from exc
    if member == CONFIG_MEMBER and info.file_size > _MAX_CONFIG_BYTES:
        raise PersistenceError(f"{str(path)!r}: {member} is implausibly large ({info.file_size} bytes)")
    with archive.open(info) as handle:
        return handle.read()


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.random.RandomState):
            value = None
        try:
            out[key] = _to_json(value)
            json.dumps(out[key])
        except TypeError as exc:
            raise PersistenceError(
                f"parameter {key}={value!r} cannot be saved as JSON; set it to a plain value "
                "before save(), or use joblib.dump for arbitrary objects"
            ) from exc
    return out


#: Marks a dict whose keys are not all strings (``class_weight={0: 1.0, 1: 3.0}``):
#: JSON objects have string keys only, so it is stored as a list of pairs.
_ITEMS = "__skbig_items__"


def _to_json(value: Any) -> Any:
    """``value`` with numpy scalars (a grid from ``np.arange``), arrays and paths made plain."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: _to_json(v) for k, v in value.items()}
        return {_ITEMS: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    """Undo :func:`_to_json`'s encoding of dicts with non-string keys."""
    if isinstance(value, dict):
        if set(value) == {_ITEMS}:
            return {_hashable(k): _from_json(v) for k, v in value[_ITEMS]}
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _distribution_of(backend_name: str) -> str | None:
    from skbig.backends.registry import _REGISTRY

    entry = _REGISTRY.entries().get(backend_name)
    return entry.distribution if entry is not None and not entry.distribution.startswith("<") else None


def encode_labels(classes: np.ndarray) -> dict[str, Any]:
    """Class labels as JSON, keeping their numpy dtype."""
    values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
    for value in values:
        if not isinstance(value, (str, int, float, bool)):
            raise PersistenceError(
                f"class label {value!r} of type {type(value).__name__} cannot be saved as JSON; "
                "use str, int, float or bool labels (or joblib.dump)"
            )
    return {"dtype": classes.dtype.str, "values": values}


def decode_labels(data: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_labels`."""
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "biufUO":
        raise PersistenceError(f"unsupported label dtype {dtype}")
    return np.asarray(data["values"], dtype=dtype)
