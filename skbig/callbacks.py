"""Training callbacks users pass as ``callbacks=[...]`` to any skbig estimator.

The public home of the engine's callback API: subclass :class:`Callback`
(every hook is a no-op) for custom behaviour, or use the loggers that record
each epoch's history record to a CSV file or to TensorBoard.
"""

from __future__ import annotations

from skbig.engine.callbacks import Callback, EpochScoreReporter, ProgressBar
from skbig.engine.loggers import CSVLogger, TensorBoardLogger

__all__ = ["Callback", "ProgressBar", "EpochScoreReporter", "CSVLogger", "TensorBoardLogger"]
