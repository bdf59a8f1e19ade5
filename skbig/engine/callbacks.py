"""Callbacks: small objects the engine notifies during training.

Every hook is a no-op by default, so a callback overrides only what it needs.
``on_epoch_end`` may return ``True`` (or set ``trainer.stop_training``) to stop
training after that epoch; this is how pruning and custom stopping rules work.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skbig.engine.trainer import Trainer

__all__ = ["Callback", "ProgressBar", "EpochScoreReporter"]


class Callback:
    """Base class with a no-op hook for each training event."""

    def on_fit_begin(self, trainer: Trainer) -> None:
        """Called once before the first epoch (also when resuming)."""

    def on_batch_end(self, trainer: Trainer, *, batch_index: int, loss: float) -> None:
        """Called after every optimisation step."""

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> bool | None:
        """Called after each epoch with its history record; return True to stop."""
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once after training ends, normally or not."""


class ProgressBar(Callback):
    """A tqdm bar over all optimisation steps, with the latest epoch's figures."""

    def __init__(self) -> None:
        self._bar: Any = None

    def on_fit_begin(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        total = trainer.steps_per_epoch * trainer.max_epochs
        done = trainer.steps_per_epoch * trainer.epoch
        self._bar = tqdm(total=total, initial=done, desc="fit", unit="batch", file=sys.stderr)

    def on_batch_end(self, trainer: Trainer, *, batch_index: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(epoch=trainer.epoch + 1, loss=f"{loss:.4f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> bool | None:
        if self._bar is not None:
            shown = {k: f"{v:.4g}" for k, v in record.items() if isinstance(v, float)}
            self._bar.set_postfix(epoch=record["epoch"], **shown)
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochScoreReporter(Callback):
    """Forward each epoch's validation score to a function; used by search pruning.

    Parameters
    ----------
    report : callable
        Called as ``report(epoch, score)``; returning True stops training.
    """

    def __init__(self, report: Any) -> None:
        self.report = report

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> bool | None:
        score = record.get("valid_score")
        if score is None:
            return None
        return bool(self.report(int(record["epoch"]), float(score)))
