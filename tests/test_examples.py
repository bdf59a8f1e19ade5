"""Every script in examples/ runs to the end offline and prints what it promises (slow suite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> a line (or part of one) its output must contain
EXPECTED = {
    "text_quickstart.py": "saved and reloaded",
    "image_transfer.py": "max_epochs=0: 3-fold CV accuracy",
    "speech_quickstart.py": "unseen speaker: WER",
    "speech_transfer.py": "45-s recording (said: ",
    "sklearn_interop.py": "identical predictions: True",
    "search_sqlite.py": "the first 4 were kept unchanged: True",
    "plugin_authoring.py": "saved and reloaded with identical predictions: True",
    "cli_tour.py": "skbig fit: error: ",
    "plots_and_logging.py": "history.csv: ",
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # each takes under 3 minutes on an idle CPU; shared CI machines are slower
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,  # examples write their outputs (models, databases, plots) to the current folder
        capture_output=True,
        text=True,
        env=env,
        timeout=1100,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert EXPECTED[script] in done.stdout, done.stdout[-3000:]
