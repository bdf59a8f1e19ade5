"""Every ``Examples`` section in skbig and its bundled plugins runs and prints what it shows.

Docstring examples are documentation users copy; run here, they cannot
drift from the code.  The suite's ``filterwarnings = error`` holds inside
them too, so an example that warns (or leaks a file) fails.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

#: skbig and the plugin distributions in ``plugins/`` (``make`` installs them all).
PACKAGES = ["skbig", "skbig_toy", "skbig_transformers", "skbig_efficientnet", "skbig_whisper"]


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not info.name.endswith("__main__"):  # running it would start the CLI
                names.append(info.name)
    return names


MODULES = _modules()


def test_every_package_has_examples() -> None:
    finder = doctest.DocTestFinder()
    with_examples = {
        name.split(".")[0]
        for name in MODULES
        if any(test.examples for test in finder.find(importlib.import_module(name)))
    }
    assert with_examples == set(PACKAGES)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in finder.find(module):
        if test.examples:
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
