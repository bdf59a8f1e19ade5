"""See training: learning curves and a confusion matrix, and every epoch logged to CSV and TensorBoard.

Writes into ``plots_and_logging/`` in the current folder:
``history.csv`` (one row per epoch, flushed as training goes), ``tensorboard/``
(view with ``tensorboard --logdir plots_and_logging/tensorboard``),
``learning_curves.png`` and ``confusion_matrix.png``.  Needs the ``plot``
extra (matplotlib); TensorBoard logging needs the ``tensorboard`` extra and is
skipped without it.  Run: ``.venv/bin/python examples/plots_and_logging.py`` (seconds).
"""

import csv
import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; no window needed

import skbig
from skbig.callbacks import CSVLogger, TensorBoardLogger
from skbig.datasets import load_sms_spam_sample
from skbig.plot import confusion_matrix, learning_curves

out = Path("plots_and_logging")
out.mkdir(exist_ok=True)
texts, labels = load_sms_spam_sample()
X_train, y_train, X_test, y_test = texts[:1000], labels[:1000], texts[1000:], labels[1000:]

callbacks = [CSVLogger(out / "history.csv")]
if importlib.util.find_spec("tensorboard") is not None:
    callbacks.append(TensorBoardLogger(out / "tensorboard"))
else:
    print("tensorboard is not installed (pip install 'skbig[tensorboard]'); logging to CSV only")

clf = skbig.TextClassifier(max_epochs=6, random_state=0, callbacks=callbacks).fit(X_train, y_train)

with (out / "history.csv").open() as fh:
    rows = list(csv.DictReader(fh))
print(f"history.csv: {len(rows)} rows, columns {list(rows[0])}")
for row in rows:
    print(
        f"  epoch {row['epoch']}: train loss {float(row['train_loss']):.4f}, "
        f"valid accuracy {float(row['valid_score']):.4f}"
    )

ax = learning_curves(clf)
ax.figure.savefig(out / "learning_curves.png", dpi=120, bbox_inches="tight")
ax = confusion_matrix(clf, X_test, y_test, normalize="true")
ax.figure.savefig(out / "confusion_matrix.png", dpi=120, bbox_inches="tight")
print(f"best epoch {clf.best_epoch_} is marked on {out / 'learning_curves.png'}")
print(f"wrote {out / 'confusion_matrix.png'} (rates over the true labels)")
if len(callbacks) > 1:
    print(f"TensorBoard event files in {out / 'tensorboard'}")
