"""Experiment loggers: callbacks that write each epoch's history record somewhere durable.

They keep no open handle between hooks that a crash could lose or a
``clone``/pickle could trip over: the CSV file is opened, written, flushed
and closed once per epoch, and the TensorBoard writer lives only between
``on_fit_begin`` and ``on_fit_end``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skbig.engine.callbacks import Callback

if TYPE_CHECKING:
    from skbig.engine.trainer import Trainer

__all__ = ["CSVLogger", "TensorBoardLogger"]

# History fields in the order a reader expects them; backends may add others after these.
_FIELD_ORDER = ("epoch", "train_loss", "valid_loss", "valid_score", "lr", "seconds")


class CSVLogger(Callback):
    """Write one CSV row per epoch with the epoch's history record.

    The file always matches ``history_``: a fresh ``fit`` starts it over
    (header first), and a fit that resumes from ``checkpoint_dir`` rewrites it
    from the history its checkpoint restored, then appends.  A field that
    first appears in a later epoch (``micro_batch_size`` after an
    out-of-memory back-off) widens the header.  Every row is flushed and the
    file closed before training continues: nothing logged is lost if the
    process dies.  Each fit rewrites the file, so give each fit its own path
    (the folds of ``cross_val_score`` sharing one keep only the last fold's).

    Parameters
    ----------
    path : str or path-like
        The CSV file; its folder is created if needed.

    Examples
    --------
    >>> import csv, tempfile, pathlib
    >>> from skbig import TextClassifier
    >>> from skbig.callbacks import CSVLogger
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
    >>> clf = TextClassifier(max_epochs=2, random_state=0, callbacks=[CSVLogger(path)])
    >>> clf = clf.fit(["good", "bad"] * 20, ["+", "-"] * 20)
    >>> [row["epoch"] for row in csv.DictReader(path.read_text().splitlines())]
    ['1', '2']
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._fields: list[str] | None = None

    def on_fit_begin(self, trainer: Trainer) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._rewrite(trainer.history)  # empty for a fresh fit; a resumed fit's restored epochs

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> bool | None:
        if self._fields is None or not set(record) <= set(self._fields):
            self._rewrite(trainer.history)  # the history already holds ``record``
        else:
            _write_rows(Path(self.path), self._fields, [record], header=False)
        return None

    def _rewrite(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Replace the file (atomically) with a header and one row per record of ``history``."""
        path = Path(self.path)
        self._fields = _ordered_fields({k: None for record in history for k in record}) if history else None
        tmp = path.with_name(f".{path.name}.tmp")
        if self._fields is None:
            tmp.write_text("", encoding="utf-8")
        else:
            _write_rows(tmp, self._fields, list(history), header=True, mode="w")
        os.replace(tmp, path)

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.path)!r})"


class TensorBoardLogger(Callback):
    """Write each epoch's numeric history fields as TensorBoard scalars.

    Each field of the history record (``train_loss``, ``valid_loss``,
    ``valid_score``, ``lr``, ``seconds``) becomes the scalar of that name at
    step ``epoch``; with ``log_batches=True`` the loss of every optimisation
    step is logged too, as ``batch_loss``.  View with
    ``tensorboard --logdir LOG_DIR``.

    Needs tensorboard (``pip install 'skbig[tensorboard]'``), imported when
    training starts.

    Parameters
    ----------
    log_dir : str or path-like
        Folder for the event files; runs logged to the same folder are
        shown as one run, so give each run its own folder.
    log_batches : bool, default=False
        Also log every step's training loss.

    Raises
    ------
    ImportError
        At the start of ``fit``, if tensorboard is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, log_batches: bool = False) -> None:
        self.log_dir = log_dir
        self.log_batches = log_batches
        self._writer: Any = None
        self._step = 0

    def on_fit_begin(self, trainer: Trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                f"TensorBoardLogger needs tensorboard: pip install 'skbig[tensorboard]' ({exc})"
            ) from exc
        self._writer = SummaryWriter(log_dir=os.fspath(self.log_dir))
        self._step = trainer.epoch * trainer.steps_per_epoch

    def on_batch_end(self, trainer: Trainer, *, batch_index: int, loss: float) -> None:
        self._step += 1
        if self.log_batches and self._writer is not None:
            self._writer.add_scalar("batch_loss", loss, self._step)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> bool | None:
        if self._writer is None:
            return None
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(key, float(value), epoch)
        self._writer.flush()
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.log_dir)!r}, log_batches={self.log_batches})"


def _ordered_fields(record: Mapping[str, Any]) -> list[str]:
    known = [k for k in _FIELD_ORDER if k in record]
    return known + sorted(k for k in record if k not in _FIELD_ORDER)


def _write_rows(
    path: Path, fields: list[str], rows: Sequence[Mapping[str, Any]], *, header: bool, mode: str = "a"
) -> None:
    with path.open(mode, encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", restval="")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
