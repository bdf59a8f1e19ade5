"""skbig-whisper: OpenAI Whisper as a skbig speech backend (see README.md).

Backends ``whisper_tiny_en`` and ``whisper`` are found by skbig through the
``skbig.backends`` entry points; import this package only to use the classes
directly.  Names resolve lazily so that importing it stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "WhisperBackend",
    "WhisperTinyEnBackend",
    "cached_hf_whisper_dir",
    "whisper_log_mel",
    "whisper_tiny_en_path",
    "__version__",
]

_LAZY = {
    "WhisperBackend": "skbig_whisper.backend",
    "WhisperTinyEnBackend": "skbig_whisper.backend",
    "cached_hf_whisper_dir": "skbig_whisper.convert",
    "whisper_log_mel": "skbig_whisper.features",
    "whisper_tiny_en_path": "skbig_whisper.weights",
}

if TYPE_CHECKING:
    from skbig_whisper.backend import WhisperBackend, WhisperTinyEnBackend
    from skbig_whisper.convert import cached_hf_whisper_dir
    from skbig_whisper.features import whisper_log_mel
    from skbig_whisper.weights import whisper_tiny_en_path


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skbig_whisper' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
