"""skbig-transformers: Hugging Face encoders as skbig text backends (see README.md).

Backends ``minilm`` and ``hf_encoder`` are found by skbig through the
``skbig.backends`` entry points; import this package only to use the classes
directly.  Names resolve lazily so that importing it stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["HFEncoderBackend", "MiniLMBackend", "minilm_path", "__version__"]

_LAZY = {
    "HFEncoderBackend": "skbig_transformers.backend",
    "MiniLMBackend": "skbig_transformers.backend",
    "minilm_path": "skbig_transformers.weights",
}

if TYPE_CHECKING:
    from skbig_transformers.backend import HFEncoderBackend, MiniLMBackend
    from skbig_transformers.weights import minilm_path


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skbig_transformers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
