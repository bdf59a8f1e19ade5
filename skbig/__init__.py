"""skbig: big pretrained models with scikit-learn manners.

Only public names live here.  Heavy or optional pieces (the search module and
its Optuna dependency, every backend plugin) are imported on first use, so
``import skbig`` stays fast and never fails for a missing extra.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from skbig.backends.registry import list_backends, register_backend
from skbig.exceptions import SkbigError

__version__ = "0.1.0"

__all__ = [
    "TextClassifier",
    "ImageClassifier",
    "SpeechRecognizer",
    "OptunaSearchCV",
    "list_backends",
    "register_backend",
    "load",
    "SkbigError",
    "__version__",
]

_LAZY = {
    "TextClassifier": "skbig.estimators.text",
    "ImageClassifier": "skbig.estimators.image",
    "SpeechRecognizer": "skbig.estimators.speech",
    "OptunaSearchCV": "skbig.search.optuna_search",
    "load": "skbig.persistence",
}
# Submodules reachable as ``skbig.metrics`` etc. after a bare ``import skbig`` (as the README
# writes ``scoring=skbig.metrics.wer_scorer``); imported on first use, none imports an extra.
_SUBMODULES = ("callbacks", "datasets", "metrics", "plot", "pretrained", "search", "testing")

if TYPE_CHECKING:
    from skbig import callbacks as callbacks
    from skbig import datasets as datasets
    from skbig import metrics as metrics
    from skbig import plot as plot
    from skbig import pretrained as pretrained
    from skbig import search as search
    from skbig import testing as testing
    from skbig.estimators.image import ImageClassifier
    from skbig.estimators.speech import SpeechRecognizer
    from skbig.estimators.text import TextClassifier
    from skbig.persistence import load
    from skbig.search.optuna_search import OptunaSearchCV


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f"skbig.{name}")
    raise AttributeError(f"module 'skbig' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])
