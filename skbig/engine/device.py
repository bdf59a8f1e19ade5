"""Where to train and in which precision, decided once per fit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from skbig.exceptions import InvalidParameterError

__all__ = ["resolve_device", "resolve_precision", "autocast"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got device={device!r}"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device={device!r} was requested but CUDA is not available; use device='auto'"
        )
    mps = getattr(torch.backends, "mps", None)
    if resolved.type == "mps" and (mps is None or not mps.is_available()):
        raise InvalidParameterError(
            f"device={device!r} was requested but Apple MPS is not available here; use device='auto'"
        )
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` means bf16 autocast on CUDA GPUs that support it, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise InvalidParameterError(f"precision must be one of {PRECISIONS}, got precision={precision!r}")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    return precision


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed-precision context for forward passes; a no-op in fp32."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
