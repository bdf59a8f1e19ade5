"""CSVLogger and TensorBoardLogger: what they write, on fresh fits, resumed fits and crashes."""

from __future__ import annotations

import builtins
import csv

import pytest
from sklearn.base import clone

from skbig import TextClassifier
from skbig.callbacks import Callback, CSVLogger, TensorBoardLogger
from skbig.engine.loggers import CSVLogger as EngineCSVLogger

TEXTS = ["free prize call now", "win cash today", "see you at lunch", "meeting moved to noon"] * 10
LABELS = ["spam", "spam", "ham", "ham"] * 10


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def fit(callbacks, **params):
    params = {"max_epochs": 3, "early_stopping": False, "random_state": 0, **params}
    return TextClassifier(callbacks=callbacks, **params).fit(TEXTS, LABELS)


def test_csv_logger_writes_one_row_per_epoch_matching_history(tmp_path):
    path = tmp_path / "logs" / "history.csv"
    clf = fit([CSVLogger(path)])
    rows = read_rows(path)
    assert list(rows[0]) == ["epoch", "train_loss", "valid_loss", "valid_score", "lr", "seconds"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, record in zip(rows, clf.history_):
        for key in ("train_loss", "valid_loss", "valid_score", "lr"):
            assert float(row[key]) == pytest.approx(record[key])


def test_a_fresh_fit_starts_the_file_over(tmp_path):
    path = tmp_path / "history.csv"
    logger = CSVLogger(path)
    fit([logger])
    fit([logger], max_epochs=2)
    assert [r["epoch"] for r in read_rows(path)] == ["1", "2"]


def test_rows_are_on_disk_when_training_crashes(tmp_path):
    path = tmp_path / "history.csv"

    class CrashAfterTwo(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit([CSVLogger(path), CrashAfterTwo()])
    assert [r["epoch"] for r in read_rows(path)] == ["1", "2"]


def test_a_resumed_fit_appends_and_drops_epochs_it_trains_again(tmp_path):
    path, checkpoints = tmp_path / "history.csv", str(tmp_path / "ckpt")

    class Stop(Exception):
        pass

    class CrashAtEpoch2(Callback):
        """Raise after the logger wrote epoch 2 but before its checkpoint: epoch 2 will be redone."""

        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise Stop

    with pytest.raises(Stop):
        fit([CSVLogger(path), CrashAtEpoch2()], checkpoint_dir=checkpoints)
    assert [r["epoch"] for r in read_rows(path)] == ["1", "2"]
    clf = fit([CSVLogger(path)], checkpoint_dir=checkpoints)
    rows = read_rows(path)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["train_loss"]) == pytest.approx(clf.history_[-1]["train_loss"])


def test_loggers_survive_clone_and_are_exported_from_skbig_callbacks(tmp_path):
    assert CSVLogger is EngineCSVLogger
    original = TextClassifier(callbacks=[CSVLogger(tmp_path / "a.csv"), TensorBoardLogger(tmp_path / "tb")])
    cloned = clone(original)
    assert repr(cloned.callbacks[0]) == f"CSVLogger({str(tmp_path / 'a.csv')!r})"
    assert cloned.callbacks[0] is not original.callbacks[0]


def test_tensorboard_logger_writes_scalars_per_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = tmp_path / "tb"
    clf = fit([TensorBoardLogger(log_dir, log_batches=True)])
    events = EventAccumulator(str(log_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "valid_loss", "valid_score", "lr", "seconds", "batch_loss"} <= tags
    train_loss = events.Scalars("train_loss")
    assert [e.step for e in train_loss] == [1, 2, 3]
    for event, record in zip(train_loss, clf.history_):
        assert event.value == pytest.approx(record["train_loss"], rel=1e-6)
    batch_steps = [e.step for e in events.Scalars("batch_loss")]
    assert batch_steps == list(range(1, len(batch_steps) + 1)) and len(batch_steps) >= 3


def test_tensorboard_logger_without_tensorboard_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"pip install 'skbig\[tensorboard\]'"):
        fit([TensorBoardLogger(tmp_path / "tb")])


def test_a_resumed_fit_rewrites_the_log_from_its_checkpoint_history(tmp_path):
    # The file left there may be another fit's, or gone: the log must still match history_.
    path, checkpoints = tmp_path / "history.csv", str(tmp_path / "ckpt")

    class Stop(Exception):
        pass

    class CrashAtEpoch3(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 3:
                raise Stop

    with pytest.raises(Stop):
        fit([CrashAtEpoch3()], max_epochs=4, checkpoint_dir=checkpoints)  # no logger: no file yet
    path.write_text("epoch,train_loss\n1,99.0\n", encoding="utf-8")  # another fit's row
    clf = fit([CSVLogger(path)], max_epochs=4, checkpoint_dir=checkpoints)
    rows = read_rows(path)
    assert [int(r["epoch"]) for r in rows] == [r["epoch"] for r in clf.history_] == [1, 2, 3, 4]
    for row, record in zip(rows, clf.history_):
        assert float(row["train_loss"]) == pytest.approx(record["train_loss"])


def test_a_field_that_appears_later_widens_the_header(tmp_path):
    path = tmp_path / "history.csv"

    class LateField(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] >= 2:
                record["micro_batch_size"] = 4  # as the out-of-memory back-off adds it

    clf = fit([LateField(), CSVLogger(path)])
    rows = read_rows(path)
    assert "micro_batch_size" in rows[0]
    assert [r["micro_batch_size"] for r in rows] == ["", "4", "4"]
    assert [int(r["epoch"]) for r in rows] == [r["epoch"] for r in clf.history_]
