"""Per-epoch training checkpoints, written so that a crash never corrupts them.

The state is written to a temporary file in the same directory, flushed to
disk, then renamed over the previous checkpoint: a reader sees either the old
complete file or the new complete file, never half of one.  Loading uses
``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from skbig.exceptions import CheckpointError

__all__ = ["CHECKPOINT_NAME", "save", "load"]

CHECKPOINT_NAME = "checkpoint.pt"


def save(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically replace ``directory/checkpoint.pt`` with ``state``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    _remove_torn_writes(directory)
    return target


def _remove_torn_writes(directory: Path) -> None:
    """Delete temp files left by a process killed while writing (the checkpoint itself is intact)."""
    for leftover in directory.glob(".checkpoint-*.tmp"):
        leftover.unlink(missing_ok=True)


def load(directory: str | os.PathLike[str], fingerprint: str) -> dict[str, Any] | None:
    """Return the checkpoint in ``directory``, or None when there is none yet.

    Raises
    ------
    CheckpointError
        If the file is unreadable or belongs to a different configuration or
        data set (its fingerprint differs): resuming it would silently mix runs.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({exc}); delete it or choose another checkpoint_dir"
        ) from exc
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by a fit with other parameters or data; "
            "use a new checkpoint_dir for this fit, or delete the old checkpoint to start over"
        )
    return state


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
