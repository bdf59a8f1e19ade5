"""Two ways to feed the engine: tensors in memory, or a lazily decoding Dataset.

In-memory data is batched by indexing whole tensors (no per-sample Python
work, no collate), which is what makes small models train at the speed of a
hand-written loop.  Data that must be decoded from disk goes through a
``torch.utils.data.DataLoader`` so decoding runs in worker processes and memory
stays bounded by the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Union

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, Subset

__all__ = [
    "TensorData",
    "DatasetData",
    "TrainData",
    "count_batches",
    "iterate_batches",
    "set_epoch",
    "split_batch",
    "subset",
    "to_device",
]

Batch = dict[str, Any]


class TensorData:
    """Aligned tensors, all with the same first dimension.

    Parameters
    ----------
    tensors : mapping of str to Tensor
        E.g. ``{"x": ids, "lengths": lengths, "y": labels}``.
    trim : tuple of (str, str), optional
        ``(padded_key, lengths_key)``: cut the padded tensor to the longest
        item of each batch, so short batches do not pay for long padding.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], *, trim: tuple[str, str] | None = None) -> None:
        sizes = {k: len(v) for k, v in tensors.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"all tensors must have the same length, got {sizes}")
        self.tensors = dict(tensors)
        self.trim = trim

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, index: torch.Tensor) -> Batch:
        """Gather the rows in ``index`` into one batch."""
        batch = {k: v[index] for k, v in self.tensors.items()}
        if self.trim is not None:
            key, lengths = self.trim
            longest = max(int(batch[lengths].max()), 1)
            batch[key] = batch[key][:, :longest]
        return batch

    def with_targets(self, y: torch.Tensor) -> TensorData:
        return TensorData({**self.tensors, "y": y}, trim=self.trim)


class DatasetData:
    """A map-style Dataset returning dict samples, plus the function that collates them."""

    def __init__(self, dataset: Dataset[Any], collate: Callable[[list[Any]], Batch]) -> None:
        self.dataset = dataset
        self.collate = collate

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


TrainData = Union[TensorData, DatasetData]  # noqa: UP007 - a runtime alias must work on 3.10


def subset(data: TrainData, index: Sequence[int]) -> TrainData:
    """The rows of ``data`` at ``index`` (used for validation splits)."""
    if isinstance(data, TensorData):
        idx = torch.as_tensor(index, dtype=torch.long)
        return TensorData({k: v[idx] for k, v in data.tensors.items()}, trim=data.trim)
    return DatasetData(Subset(data.dataset, list(index)), data.collate)


def set_epoch(data: TrainData, epoch: int) -> None:
    """Tell a Dataset with per-epoch randomness (augmentation) which epoch starts."""
    dataset = getattr(data, "dataset", None)
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    hook = getattr(dataset, "set_epoch", None)
    if callable(hook):
        hook(epoch)


def iterate_batches(
    data: TrainData,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
) -> Iterator[Batch]:
    """Yield batches of ``data``; shuffling draws from ``generator`` only.

    Shuffled (training) batches never end in a batch of one sample: it is
    merged into the batch before it, since batch norm cannot normalise a
    single sample's 1x1 feature map and one sample makes a noisy step anyway.
    """
    n = len(data)
    if isinstance(data, TensorData):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start, stop in _batch_bounds(n, batch_size, merge_single=shuffle):
            yield data.batch(order[start:stop])
        return
    sampler: Sampler[list[int]] | None = None
    if shuffle:
        shuffled = RandomSampler(data.dataset, generator=generator)  # type: ignore[arg-type]
        sampler = _MergedBatchSampler(shuffled, batch_size)
    loader = DataLoader(
        data.dataset,
        batch_size=1 if sampler is not None else batch_size,
        batch_sampler=sampler,
        generator=generator,  # also seeds the workers, as with shuffle=True
        collate_fn=data.collate,
        num_workers=num_workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )
    iterator = iter(loader)
    try:
        yield from iterator
    finally:
        # Stop worker processes now: after an error the iterator may otherwise live on in a
        # traceback and only be collected later, stalling on its workers' join timeout.
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()


def count_batches(n: int, batch_size: int) -> int:
    """How many training batches :func:`iterate_batches` yields for ``n`` samples."""
    return len(_batch_bounds(n, batch_size, merge_single=True))


def _batch_bounds(n: int, batch_size: int, *, merge_single: bool) -> list[tuple[int, int]]:
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if merge_single and batch_size > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


class _MergedBatchSampler(Sampler[list[int]]):
    """Batches of ``sampler``'s indices cut by :func:`_batch_bounds` (a last batch of one merged)."""

    def __init__(self, sampler: Sampler[int], batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the shuffle is drawn at the first next(), as BatchSampler draws it.
        order = list(self.sampler)
        for start, stop in _batch_bounds(len(order), self.batch_size, merge_single=True):
            yield order[start:stop]

    def __len__(self) -> int:
        return count_batches(len(self.sampler), self.batch_size)  # type: ignore[arg-type]


def split_batch(batch: Batch, size: int) -> list[Batch]:
    """Cut ``batch`` into as few consecutive micro-batches of at most ``size`` samples as
    possible, of nearly equal sizes (9 by 4: 3, 3, 3; not 4, 4, 1, a part batch norm may reject).

    Every tensor whose first dimension is the number of samples is sliced;
    anything else (shared tensors, metadata) is passed to each part as is.
    The engine uses it only when a whole batch does not fit in memory.
    """
    first = batch.get("y", batch.get("x"))
    n = len(first) if first is not None else 1
    size = math.ceil(n / math.ceil(n / size)) if n else size
    parts = []
    for start in range(0, n, size):
        parts.append(
            {
                k: v[start : start + size] if isinstance(v, torch.Tensor) and v.ndim and len(v) == n else v
                for k, v in batch.items()
            }
        )
    return parts


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor of ``batch`` to ``device`` (non-blocking where it helps)."""
    non_blocking = device.type == "cuda"
    return {
        k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }
