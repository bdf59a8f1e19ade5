"""``backend="auto"``: the best installed backend for a task.

Order: the usable backend with the highest ``auto_priority``; a pretrained
backend counts as usable only when its weights resolve offline, so a machine
without weight packages falls back to the built-in scratch backends.
"""

from __future__ import annotations

from skbig.backends.registry import get_backend, list_backends
from skbig.exceptions import BackendNotFoundError

__all__ = ["choose_backend"]


def choose_backend(task: str) -> str:
    """Name of the backend ``"auto"`` resolves to for ``task``."""
    candidates = []
    for info in list_backends(task):
        if info.status != "ok" or info.task != task:
            continue
        cls = get_backend(info.name, task)
        if cls.uses_pretrained_weights and not cls.weights_available():
            continue
        candidates.append((-cls.auto_priority, info.name))
    if not candidates:
        raise BackendNotFoundError(f"no usable {task} backend is installed; see `skbig plugins`")
    return min(candidates)[1]
