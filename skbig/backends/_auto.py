"""``backend="auto"``: the best installed backend for a task.

Order: the usable backend with the highest ``auto_priority``.  A pretrained
backend counts as usable when its default weights resolve offline, or whatever
they are when ``pretrained`` names a path (the user's weights); so a machine
without weight packages falls back to the built-in scratch backends.  With
``pretrained=False`` only backends built to train from scratch count: random
initialisation throws away what a pretrained backend is for.
"""

from __future__ import annotations

import os

from skbig.backends.registry import get_backend, list_backends
from skbig.exceptions import BackendNotFoundError

__all__ = ["choose_backend"]


def choose_backend(task: str, pretrained: bool | str | os.PathLike[str] = True) -> str:
    """Name of the backend ``"auto"`` resolves to for ``task`` and the estimator's ``pretrained``."""
    candidates = []
    for info in list_backends(task):
        if info.status != "ok" or info.task != task:
            continue
        cls = get_backend(info.name, task)
        if cls.uses_pretrained_weights:
            if pretrained is False:
                continue
            if pretrained is True and not _weights_available(cls):
                continue
        candidates.append((-cls.auto_priority, info.name))
    if not candidates:
        raise BackendNotFoundError(f"no usable {task} backend is installed; see `skbig plugins`")
    return min(candidates)[1]


def _weights_available(cls: type) -> bool:
    """A plugin's availability check that raises counts as "no weights", never as a crash of auto."""
    try:
        return bool(cls.weights_available())  # type: ignore[attr-defined]
    except Exception:
        return False
