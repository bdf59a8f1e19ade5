"""Per-epoch training checkpoints, written so that a crash never corrupts them.

The state is written to a temporary file in the same directory, flushed to
disk, then renamed over the previous checkpoint: a reader sees either the old
complete file or the new complete file, never half of one.  Loading uses
``torch.load(weights_only=True)``, which refuses pickled code.

Each fit (its parameters and data: the fingerprint) has its own file, so the
folds of ``cross_val_score`` or the candidates of ``GridSearchCV`` can share
one ``checkpoint_dir`` and each resumes only its own run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from skbig.exceptions import CheckpointError

__all__ = ["checkpoint_path", "save", "load"]

#: Characters of the fingerprint (a SHA-256 hex digest) in the file name.
_NAME_DIGITS = 16


def checkpoint_path(directory: str | os.PathLike[str], fingerprint: str) -> Path:
    """Where the fit identified by ``fingerprint`` keeps its checkpoint in ``directory``."""
    return Path(directory) / f"checkpoint-{fingerprint[:_NAME_DIGITS]}.pt"


def check_writable(directory: str | os.PathLike[str]) -> None:
    """Create ``directory`` and check that a checkpoint can be written there, before the first epoch.

    Raises
    ------
    CheckpointError
        Naming the directory, instead of failing after an epoch of training.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(prefix=".skbig-probe-", dir=directory):
            pass
    except OSError as exc:
        raise CheckpointError(
            f"checkpoint_dir {str(directory)!r} cannot be written ({exc.strerror or exc}); "
            "choose a writable checkpoint_dir or pass checkpoint_dir=None"
        ) from exc


def save(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically replace this fit's checkpoint in ``directory`` with ``state``.

    Raises
    ------
    CheckpointError
        If it cannot be written (disk full, directory removed): the previous
        checkpoint, if any, is left as it was.
    """
    directory = Path(directory)
    target = checkpoint_path(directory, state["fingerprint"])
    prefix = f".{target.stem}-"
    tmp: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):  # torch reports a short write as RuntimeError
            raise CheckpointError(
                f"could not write the checkpoint to {str(directory)!r} ({exc}); free disk space "
                "there or choose another checkpoint_dir (the previous checkpoint is intact)"
            ) from exc
        raise
    _fsync_directory(directory)
    _remove_torn_writes(directory, prefix)
    return target


def _remove_torn_writes(directory: Path, prefix: str) -> None:
    """Delete this fit's temp files left by a process killed while writing.

    Only this fit's: another fit sharing the directory may be writing its own.
    """
    for leftover in directory.glob(f"{prefix}*.tmp"):
        leftover.unlink(missing_ok=True)


def load(directory: str | os.PathLike[str], fingerprint: str) -> dict[str, Any] | None:
    """Return the checkpoint of the fit ``fingerprint`` in ``directory``, or None when there is none yet.

    Raises
    ------
    CheckpointError
        If the file is unreadable or belongs to a different configuration or
        data set (its fingerprint differs): resuming it would silently mix runs.
    """
    path = checkpoint_path(directory, fingerprint)
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
