"""One exception tree, shaped for the ``except`` clauses users already write.

Every error derives from :class:`SkbigError` *and* from the built-in (or
scikit-learn) exception a user would naturally catch, so ``except ValueError``
keeps working while ``except skbig.SkbigError`` catches everything of ours.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "SkbigError",
    "InvalidParameterError",
    "InvalidInputError",
    "InputTypeError",
    "BackendNotFoundError",
    "PluginError",
    "NotFittedError",
    "NumericalError",
    "PersistenceError",
    "CheckpointError",
    "DeviceMemoryError",
]


class SkbigError(Exception):
    """Root of every error raised by skbig."""


class InvalidParameterError(SkbigError, ValueError):
    """A constructor parameter has a value outside its allowed range or set."""


class InvalidInputError(SkbigError, ValueError):
    """An item of ``X`` or ``y`` is malformed (names the index and, if any, the path)."""


class InputTypeError(SkbigError, TypeError):
    """An item of ``X`` or ``y`` has a type the estimator cannot use."""


class BackendNotFoundError(SkbigError, ValueError):
    """No backend of that name is installed for the task."""


class PluginError(SkbigError, ImportError):
    """A backend plugin is installed but cannot be loaded or does not meet the contract."""


class NotFittedError(SkbigError, _SklearnNotFittedError):
    """The estimator was used before ``fit``."""


class NumericalError(SkbigError, FloatingPointError):
    """Training produced a non-finite loss; the message names the epoch and batch."""


class PersistenceError(SkbigError, ValueError):
    """A saved model cannot be read: unknown format, hostile content or missing plugin."""


class CheckpointError(PersistenceError):
    """A training checkpoint cannot be written, or cannot be used to resume this fit."""


class DeviceMemoryError(SkbigError, MemoryError):
    """Training ran out of device memory even at the smallest micro-batch (names the batch size)."""
