"""Register the ``slow`` marker until the plugin's pyproject declares it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (model conversion/decoding)")
