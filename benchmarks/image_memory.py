"""Memory of ImageClassifier.fit on image paths: 2,000 files vs 200 files.

Files are decoded lazily, one batch at a time, so peak memory should not
grow with the number of paths.  The script writes 2,000 JPEG files into a
temporary folder (re-encoded copies of ``shared/data/hymenoptera``: each
photo downscaled to at most 256 px, then saved mirrored and/or at another
JPEG quality so that every file is a distinct encoding), then fits
``ImageClassifier()`` on the first 200 and on all 2,000 paths, each fit in a
fresh Python process, with the same settings (defaults, ``max_epochs=1``,
``batch_size=64``, ``num_workers=0`` so all decoding happens in the measured
process).  Peak RSS is read with ``resource.getrusage(RUSAGE_CHILDREN)`` by a
parent that has run only that one child.

Run: ``.venv/bin/python benchmarks/image_memory.py [--sizes 200 2000]``, or
``python -m benchmarks run --suite full --only image_memory``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Samples, comparison

TARGET_RATIO = 1.3
FIT_PARAMS = {"max_epochs": 1, "batch_size": 64, "num_workers": 0, "random_state": 0}


#: The parent's torch thread count, handed to the measured child process.
THREADS_ENV = "SKBIG_BENCH_THREADS"


def write_images(data_dir: Path, folder: Path, n: int) -> list[tuple[str, str]]:
    """Write ``n`` distinct JPEG files re-encoded from the hymenoptera photos; return (path, label)."""
    from PIL import Image, ImageOps

    sources = sorted((Path(data_dir) / "hymenoptera").glob("*/*/*.jp*g"))
    rows = []
    for i in range(n):
        source = sources[i % len(sources)]
        variant = i // len(sources)  # 0: as is, 1: mirrored, 2: quality 75, 3: mirrored + 75, ...
        with Image.open(source) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((256, 256))
            if variant % 2:
                img = ImageOps.mirror(img)
            path = folder / f"{i:05d}_{source.parent.name}.jpg"
            img.save(path, quality=90 - 5 * (variant // 2))
        rows.append((str(path), source.parent.name))
    return rows


def fit_child(listing: Path, n: int) -> None:
    """In the measured process: fit on the first ``n`` files and report what /proc saw."""
    import torch

    from skbig import ImageClassifier

    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    rows = json.loads(listing.read_text())[:n]
    paths, labels = [r[0] for r in rows], [r[1] for r in rows]
    start = time.perf_counter()
    ImageClassifier(**FIT_PARAMS).fit(paths, labels)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    hwm_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    print(
        json.dumps({"fit_seconds": seconds, "vm_hwm_mib": hwm_kb / 1024, "threads": torch.get_num_threads()})
    )


def measure(listing: Path, n: int) -> None:
    """Run one fit in a child process and print its peak RSS (this process has no other child)."""
    child = subprocess.run(
        [sys.executable, __file__, "--fit-child", str(listing), str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    report = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps({**report, "peak_rss_mib": peak_kb / 1024}))


def run(data_dir: Path, *, quick: bool = False, sizes: list[int] | None = None) -> dict[str, Any]:
    """Fit on the smallest and largest number of paths in fresh processes; the RSS ratio row.

    ``quick`` uses 100 and 1,000 paths instead of 200 and 2,000.  Memory is
    measured once per size (it does not vary between runs like a timing).
    """
    import torch

    sizes = sizes or ([100, 1000] if quick else [200, 2000])
    figures: dict[str, Any] = {"fit_params": FIT_PARAMS, "sizes": sizes}
    env = {**os.environ, THREADS_ENV: str(torch.get_num_threads())}
    threads: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="skbig-image-memory-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        rows = write_images(data_dir, folder, max(sizes))
        listing = folder / "listing.json"
        listing.write_text(json.dumps(rows))
        print(f"wrote {len(rows)} JPEG files to {folder} in {time.perf_counter() - start:.1f} s\n")
        print(f"{'paths':>6s} {'peak RSS MiB':>13s} {'fit s':>7s}")
        for n in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(listing), str(n)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            threads[n] = int(result["threads"])
            figures[f"peak_rss_mib_{n}"] = result["peak_rss_mib"]
            figures[f"fit_seconds_{n}"] = result["fit_seconds"]
            print(f"{n:6d} {result['peak_rss_mib']:13.1f} {result['fit_seconds']:7.1f}")
    small, large = min(sizes), max(sizes)
    ratio = figures[f"peak_rss_mib_{large}"] / figures[f"peak_rss_mib_{small}"]  # type: ignore[operator]
    figures["ratio"] = ratio
    print(f"\npeak RSS ratio {large} / {small} paths: {ratio:.3f}")
    print(f"target ratio <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    figures["comparisons"] = [
        comparison(
            f"peak RSS, {large} paths",
            skbig=Samples([figures[f"peak_rss_mib_{large}"]], [threads[large]]),
            peer=Samples([figures[f"peak_rss_mib_{small}"]], [threads[small]]),
            peer_name=f"same fit on {small} paths",
            compared=f"ImageClassifier({FIT_PARAMS}) on JPEG paths, each fit in a fresh process; peak RSS",
            unit="MiB",
            target=("ratio", "<=", TARGET_RATIO),
        )
    ]
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--fit-child":
        fit_child(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--measure":
        measure(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
        from benchmarks._common import data_dir, write_result

        write_result("image_memory", run(data_dir(), sizes=parser.parse_args().sizes))
