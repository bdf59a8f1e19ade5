"""Shared pieces of the reliability suite: hypothesis budgets and hostile files on disk.

The hypothesis budget is small by default so ``make test`` stays fast, and
large under ``SKBIG_HYPOTHESIS=full`` (what ``make test-all`` sets).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from PIL import Image

# Fuzzing fits real (tiny) models: each example takes tens of milliseconds, so
# there is no meaningful per-example deadline, and fixtures are reused on purpose.
_COMMON = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("skbig-default", max_examples=12, **_COMMON)
settings.register_profile("skbig-full", max_examples=200, **_COMMON)
settings.load_profile("skbig-full" if os.environ.get("SKBIG_HYPOTHESIS") == "full" else "skbig-default")


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """Tiny models gain nothing from intra-op threads; on a shared machine the pool thrashes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def png_bytes(width: int, height: int, value: int = 128) -> bytes:
    """A valid grayscale PNG, written row by row so huge images never sit in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes([value]) * width  # filter byte 0, then the pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def wav_bytes(n_samples: int, rate: int = 8000, seed: int = 0) -> bytes:
    """A mono 16-bit WAV of low noise (``n_samples`` may be 0)."""
    samples = (np.random.RandomState(seed).randn(n_samples) * 3000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="package")
def files(tmp_path_factory) -> dict[str, Path]:
    """Good, corrupt and hostile files, written once for the whole suite."""
    root = tmp_path_factory.mktemp("reliability-files")
    good_png = png_bytes(6, 5)
    good_wav = wav_bytes(4000)
    noisy = io.BytesIO()  # incompressible pixels: cutting the file loses image data, not the header
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32, 3), dtype=np.uint8)).save(noisy, "PNG")
    paths = {
        "png": good_png,
        "png_1x1": png_bytes(1, 1),
        "png_huge": png_bytes(10_000, 10_000),
        "png_corrupt": os.urandom(512),
        "png_truncated": noisy.getvalue()[: 2 * len(noisy.getvalue()) // 3],
        "png_empty": b"",
        "wav": good_wav,
        "wav_16k": wav_bytes(8000, rate=16000, seed=1),
        "wav_one_sample": wav_bytes(1),
        "wav_zero_samples": wav_bytes(0),
        "wav_corrupt": b"RIFF" + os.urandom(300),
        "wav_truncated": good_wav[:30],
        "wav_empty": b"",
    }
    out = {}
    for name, data in paths.items():
        suffix = ".png" if name.startswith("png") else ".wav"
        out[name] = root / f"{name}{suffix}"
        out[name].write_bytes(data)
    out["directory"] = root / "a_directory.png"
    out["directory"].mkdir()
    out["loop"] = root / "loop.png"
    os.symlink(root / "loop2.png", out["loop"])
    os.symlink(out["loop"], root / "loop2.png")
    out["missing"] = root / "missing.png"
    return out


@pytest.fixture(scope="package")
def open_files() -> Iterator[dict[str, Path]]:
    """Readable and mode-000 files in a folder anyone may enter (pytest's own tmp is 0700).

    Tests that check "permission denied" drop to user ``nobody`` when run as
    root (root ignores mode bits), and ``nobody`` must reach the readable ones.
    """
    root = Path(tempfile.mkdtemp(prefix="skbig-perm-"))
    root.chmod(0o755)
    contents = {"png": png_bytes(6, 5), "wav": wav_bytes(4000)}
    out = {}
    for kind, data in contents.items():
        out[kind] = root / f"readable.{kind}"
        out[f"unreadable_{kind}"] = root / f"unreadable.{kind}"
        for name, mode in ((kind, 0o644), (f"unreadable_{kind}", 0o000)):
            out[name].write_bytes(data)
            out[name].chmod(mode)
    yield out
    shutil.rmtree(root)
