"""Loader for the small ants-vs-bees image sample bundled with skbig."""

from __future__ import annotations

from pathlib import Path

from skbig.exceptions import InvalidParameterError

__all__ = ["load_hymenoptera_sample"]

_ROOT = Path(__file__).parent / "data" / "hymenoptera"
_SPLITS = ("train", "val")
_CLASSES = ("ants", "bees")
_SUFFIXES = (".jpg", ".jpeg")


def load_hymenoptera_sample(split: str = "train") -> tuple[list[str], list[str]]:
    """Return the paths and labels of the bundled ants-vs-bees sample.

    The sample is a 36-image cut of the PyTorch transfer-learning tutorial set
    (12 train + 6 val images per class, longer side 224 px). It ships inside
    the package so image examples and tests run offline in seconds; see
    ``skbig/datasets/data/hymenoptera/SOURCE.md`` for origin and licence.

    Parameters
    ----------
    split : {"train", "val"}, default="train"
        Which of the upstream splits to return.

    Returns
    -------
    paths : list of str
        Absolute file paths, sorted by class then file name, so the order is
        the same on every platform.
    labels : list of str
        ``"ants"`` or ``"bees"``, aligned with ``paths``.

    Raises
    ------
    InvalidParameterError
        If ``split`` is not ``"train"`` or ``"val"``.

    Examples
    --------
    >>> paths, labels = load_hymenoptera_sample("val")
    >>> len(paths), sorted(set(labels))
    (12, ['ants', 'bees'])
    """
    if split not in _SPLITS:
        raise InvalidParameterError(
            f"split must be one of {list(_SPLITS)}, got split={split!r}; "
            "use 'train' for fitting and 'val' for scoring"
        )
    paths: list[str] = []
    labels: list[str] = []
    for label in _CLASSES:
        folder = _ROOT / split / label
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES)
        paths.extend(str(p.resolve()) for p in files)
        labels.extend(label for _ in files)
    return paths, labels
