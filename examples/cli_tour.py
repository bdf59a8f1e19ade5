"""A tour of the ``skbig`` command: fit, predict and evaluate text and image models from files.

Writes the bundled SMS sample as a CSV and the ants/bees photos as class
folders into a temporary folder, then runs the commands a user would type
(shown with a ``$`` prompt).  ``python -m skbig`` is the same as ``skbig``.
Run: ``.venv/bin/python examples/cli_tour.py`` (about a minute on a laptop CPU).
"""

import csv
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from skbig.datasets import load_hymenoptera_sample, load_sms_spam_sample


def skbig(command_line: str, cwd: Path) -> None:
    """Run ``skbig <command_line>`` in ``cwd`` and show its output as a terminal would."""
    print(f"\n$ skbig {command_line}", flush=True)
    command = [sys.executable, "-m", "skbig", *shlex.split(command_line)]
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = done.stdout.strip().splitlines()
    print("\n".join(output[:18] + (["..."] if len(output) > 18 else [])))
    if done.returncode != 0:
        print(f"(exit code {done.returncode})")


with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp)
    texts, labels = load_sms_spam_sample()
    for name, rows in (("sms_train.csv", range(0, 1000)), ("sms_test.csv", range(1500, 2500))):
        with (work / name).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["message", "label"])
            writer.writerows((texts[i], labels[i]) for i in rows)
    for split in ("train", "val"):
        for path, label in zip(*load_hymenoptera_sample(split)):
            (work / split / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, work / split / label)

    skbig("plugins --task text-classification", cwd=work)
    skbig(
        "fit --task text sms_train.csv --text-column message -o sms.skbig "
        "--max-epochs 3 --param lr=0.005 --random-state 0 -q",
        cwd=work,
    )
    skbig("predict sms.skbig sms_test.csv --text-column message -o predictions.csv", cwd=work)
    print("predictions.csv starts with:")
    print("".join((work / "predictions.csv").open().readlines()[:4]).rstrip())
    skbig("evaluate sms.skbig sms_test.csv --text-column message --confusion-matrix cm.png -q", cwd=work)

    skbig("fit --task image train -o ants.skbig --max-epochs 3 --random-state 0 -q", cwd=work)
    skbig("predict ants.skbig val/ants/ -q", cwd=work)

    print("\nmistakes are reported on one line, with exit code 2:")
    skbig("fit --task text sms_train.csv -o x.skbig", cwd=work)
