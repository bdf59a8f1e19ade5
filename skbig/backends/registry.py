"""Backend discovery through the ``skbig.backends`` entry-point group.

Listing reads installed-package metadata; a backend's module is imported only
when that backend is used or its status is asked for.  Every load is isolated:
a plugin that fails to import, raises in its constructor, misses a required
method or declares another contract version is recorded as broken with the
reason, and only a request for *that* backend raises.  skbig's own backends
are registered through skbig's ``pyproject.toml`` exactly like third-party ones.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import threading
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from skbig.backends.base import API_VERSION, TASKS, Backend
from skbig.exceptions import BackendNotFoundError, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendInfo",
    "list_backends",
    "get_backend",
    "register_backend",
    "unregister_backend",
    "block_backend",
]

ENTRY_POINT_GROUP = "skbig.backends"
#: Comma-separated backend names that must never be loaded.
BLOCK_ENV = "SKBIG_BLOCK_BACKENDS"


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`list_backends`.

    Attributes
    ----------
    name, task : str
        Registered name and task (``None`` when the backend could not be loaded).
    distribution, version : str
        The installed package that provides it (``"<in-process>"`` for
        :func:`register_backend`).
    source : str
        The entry point's ``module:Class`` target.
    status : str
        ``"ok"``, ``"broken"`` or ``"blocked"``.
    error : str or None
        Why it is broken; for a backend that loads, a name clash it won (another
        distribution announces the same name and is ignored), else None.
    pretrained : bool
        Whether it starts from pretrained weights by default.
    """

    name: str
    task: str | None
    distribution: str
    version: str
    source: str
    status: str
    error: str | None = None
    pretrained: bool = False


@dataclass
class _Entry:
    name: str
    source: str
    distribution: str
    version: str
    target: Any = None  # a class registered in-process, else loaded from ``source``


def _precedence(ep: metadata.EntryPoint) -> tuple[bool, str]:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None else "~"
    return (name != "skbig", name.lower())


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._in_process: dict[str, _Entry] = {}
        self._loaded: dict[str, type[Backend]] = {}
        self._errors: dict[str, str] = {}
        #: Names two distributions announce: the note on the one that is ignored.
        self._clashes: dict[str, str] = {}
        self._blocked: set[str] = set()

    def entries(self) -> dict[str, _Entry]:
        found: dict[str, _Entry] = {}
        # skbig's own backends first, then by distribution name: which of two packages
        # announcing one name wins must not depend on sys.path (or the working directory),
        # and no plugin can take over a built-in name.
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_precedence):
            dist = getattr(ep, "dist", None)
            entry = _Entry(
                ep.name,
                ep.value,
                dist.metadata["Name"] if dist is not None else "<unknown>",
                dist.version if dist is not None else "",
            )
            if ep.name in found and found[ep.name].source != ep.value:
                self._clashes.setdefault(
                    ep.name,
                    f"name clash: also provided by {entry.distribution} {entry.version} "
                    f"({entry.source}), which is ignored; uninstall one of them",
                )
                continue
            found[ep.name] = entry
        found.update(self._in_process)
        return found

    def blocked(self) -> set[str]:
        names = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
        return names | self._blocked

    def load(self, entry: _Entry) -> type[Backend]:
        with self._lock:
            if entry.name in self._loaded:
                return self._loaded[entry.name]
            try:
                cls = entry.target if entry.target is not None else _import(entry.source)
                _validate(cls, entry.name)
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() on import is broken too
                reason = f"{type(exc).__name__}: {exc}"
                self._errors[entry.name] = reason
                raise PluginError(
                    f"backend {entry.name!r} from {entry.distribution} {entry.version} "
                    f"({entry.source}) cannot be used: {reason}"
                ) from exc
            self._errors.pop(entry.name, None)
            self._loaded[entry.name] = cls
            return cls

    def forget(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)
            self._errors.pop(name, None)


_REGISTRY = _Registry()


def _import(source: str) -> Any:
    module_name, _, attr = source.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attr.strip().split("."):
        if part:
            obj = getattr(obj, part)
    return obj


def _validate(cls: Any, name: str) -> None:
    """Check ``cls`` against the backend contract; raise TypeError naming what is wrong."""
    if not (inspect.isclass(cls) and issubclass(cls, Backend)):
        raise TypeError(f"{cls!r} is not a subclass of skbig.backends.Backend")
    if cls.api_version != API_VERSION:
        raise TypeError(
            f"written for backend API version {cls.api_version!r}, but this skbig "
            f"implements version {API_VERSION}; upgrade the plugin or skbig"
        )
    if cls.task not in TASKS:
        raise TypeError(f"task must be one of {TASKS}, got {cls.task!r}")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise TypeError(f"missing required method(s) {missing}")
    if cls.name and cls.name != name:
        raise TypeError(f"class declares name {cls.name!r} but is registered as {name!r}")
    cls()  # the constructor must work with default hyper-parameters


def list_backends(task: str | None = None) -> list[BackendInfo]:
    """Every installed backend, whether it loads, and where it comes from.

    Parameters
    ----------
    task : str, optional
        Keep only backends for this task (one of ``"text-classification"``,
        ``"image-classification"``, ``"speech-recognition"``).  Broken
        backends, whose task is unknown, are always listed.

    Returns
    -------
    list of BackendInfo
        Sorted by task then name.  Loading a broken plugin never raises here.

    Examples
    --------
    >>> import skbig
    >>> [b.name for b in skbig.list_backends("text-classification") if b.distribution == "skbig"]
    ['fasttext', 'lstm']
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got task={task!r}")
    rows = []
    blocked = _REGISTRY.blocked()
    for name, entry in sorted(_REGISTRY.entries().items()):
        common: dict[str, Any] = dict(
            name=name, distribution=entry.distribution, version=entry.version, source=entry.source
        )
        if name in blocked:
            rows.append(BackendInfo(task=None, status="blocked", **common))
            continue
        try:
            cls = _REGISTRY.load(entry)
        except PluginError:
            rows.append(BackendInfo(task=None, status="broken", error=_REGISTRY._errors.get(name), **common))
            continue
        if task is None or cls.task == task:
            clash = _REGISTRY._clashes.get(name)  # an "ok" row's note is a name clash it won
            rows.append(
                BackendInfo(
                    task=cls.task, status="ok", pretrained=cls.uses_pretrained_weights, error=clash, **common
                )
            )
    return sorted(rows, key=lambda r: (r.task or "~", r.name))


def get_backend(name: str, task: str | None = None) -> type[Backend]:
    """Return the backend class registered as ``name`` (loading it now).

    Raises
    ------
    BackendNotFoundError
        If no backend has that name (the message lists those installed and
        suggests the closest), or it serves another task.
    PluginError
        If the backend is installed but broken or blocked.
    """
    entries = _REGISTRY.entries()
    if not isinstance(name, str) or name not in entries:
        raise BackendNotFoundError(_unknown_message(name, task, entries))
    if name in _REGISTRY.blocked():
        raise PluginError(f"backend {name!r} is blocked by {BLOCK_ENV} or block_backend()")
    cls = _REGISTRY.load(entries[name])
    if task is not None and cls.task != task:
        raise BackendNotFoundError(
            f"backend {name!r} is for {cls.task}, not {task}; {task} backends: {_names_for(task, entries)}"
        )
    return cls


def _names_for(task: str | None, entries: dict[str, _Entry]) -> list[str]:
    names = []
    for name, entry in sorted(entries.items()):
        cls = _REGISTRY._loaded.get(name)
        if cls is None and name not in _REGISTRY._errors:
            try:
                cls = _REGISTRY.load(entry)
            except PluginError:
                continue
        if cls is not None and (task is None or cls.task == task):
            names.append(name)
    return names


def _unknown_message(name: object, task: str | None, entries: dict[str, _Entry]) -> str:
    installed = _names_for(task, entries)
    broken = sorted(n for n in entries if n in _REGISTRY._errors)
    close = difflib.get_close_matches(str(name), installed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    what = f"{task} backend" if task else "backend"
    return f"unknown {what} {name!r}; {hint}installed: {installed}" + (
        f"; broken: {broken} (see `skbig plugins`)" if broken else ""
    )


def register_backend(
    backend: type[Backend] | str, *, name: str | None = None, replace: bool = False
) -> type[Backend]:
    """Register a backend in this process, without installing a package.

    Parameters
    ----------
    backend : Backend subclass or str
        The class, or a ``"module:Class"`` path imported now.
    name : str, optional
        Registered name; defaults to ``backend.name``.
    replace : bool
        Allow replacing a backend of the same name.

    Returns
    -------
    type
        The validated class.

    Raises
    ------
    PluginError
        If the class does not meet the backend contract.
    ValueError
        If the name is taken and ``replace`` is False.
    """
    cls = _import(backend) if isinstance(backend, str) else backend
    reg_name = name or getattr(cls, "name", "")
    if not reg_name:
        raise ValueError("register_backend needs a name: set `name` on the class or pass name=")
    if not replace and reg_name in _REGISTRY.entries():
        raise ValueError(f"a backend named {reg_name!r} is already registered; pass replace=True")
    entry = _Entry(reg_name, f"{cls.__module__}:{cls.__qualname__}", "<in-process>", "", target=cls)
    _REGISTRY.forget(reg_name)
    loaded = _REGISTRY.load(entry)
    _REGISTRY._in_process[reg_name] = entry
    return loaded


def unregister_backend(name: str) -> None:
    """Remove a backend registered with :func:`register_backend`."""
    _REGISTRY._in_process.pop(name, None)
    _REGISTRY.forget(name)


def block_backend(name: str) -> None:
    """Refuse to load ``name`` for the rest of the process (see also ``SKBIG_BLOCK_BACKENDS``)."""
    _REGISTRY._blocked.add(name)
    _REGISTRY.forget(name)
