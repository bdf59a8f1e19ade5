"""The ``skbig`` command on the bundled data: fit, predict, evaluate, search and their errors."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.pruners import BasePruner
from sklearn.model_selection import train_test_split

import skbig
from skbig.cli import build_parser, main
from skbig.datasets import load_fsdd_sample, load_hymenoptera_sample, load_sms_spam_sample

COLUMNS = ["--text-column", "message", "--label-column", "category"]
FAST_TEXT = ["--max-epochs", "1", "--random-state", "0", "-q"]
TINY_CTC = [
    "--max-epochs",
    "1",
    "--random-state",
    "0",
    "-q",
    "--param",
    "backend_params__hidden_size=16",
    "--param",
    "backend_params__num_layers=1",
    "--param",
    "backend_params__conv_channels=8",
    "--param",
    "validation_fraction=0.0",
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Bundled samples written as the CLI expects them: a CSV, an image folder, audio + transcripts.tsv."""
    root = tmp_path_factory.mktemp("cli")
    texts, labels = load_sms_spam_sample()
    texts, _, labels, _ = train_test_split(texts, labels, train_size=160, stratify=labels, random_state=0)
    with (root / "sms.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "message", "category"])
        writer.writerows((f"m{i}", t, lab) for i, (t, lab) in enumerate(zip(texts, labels)))
    for split in ("train", "val"):
        for path, label in zip(*load_hymenoptera_sample(split)):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / split / label)
    paths, words = load_fsdd_sample()
    speech = root / "speech"
    (speech / "clips").mkdir(parents=True)
    with (speech / "transcripts.tsv").open("w", encoding="utf-8") as fh:
        fh.write("filename\ttext\n")
        for path, word in list(zip(paths, words))[::10]:  # one clip per digit
            shutil.copy(path, speech / "clips")
            fh.write(f"clips/{Path(path).name}\t{word}\n")
    return root


def fit_text(work, model, *extra):
    """``skbig fit --task text`` on the SMS sample, one fast epoch; returns the exit code."""
    return main(
        ["fit", "--task", "text", str(work / "sms.csv"), "-o", str(model), *COLUMNS, *extra, *FAST_TEXT]
    )


@pytest.fixture(scope="module")
def text_model(work):
    model = work / "sms.skbig"
    code = fit_text(work, model, "--param", "lr=0.01")
    assert code == 0
    return model


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# -- text ---------------------------------------------------------------------------------------------
def test_fit_text_saves_a_model_with_the_given_parameters(text_model):
    model = skbig.load(text_model)
    assert isinstance(model, skbig.TextClassifier)
    assert model.lr == 0.01 and model.max_epochs == 1 and model.random_state == 0
    assert len(model.history_) == 1
    assert sorted(model.classes_) == ["ham", "spam"]


def test_predict_text_writes_ids_predictions_and_probabilities(work, text_model, tmp_path):
    out = tmp_path / "predictions.csv"
    code = main(
        [
            "predict",
            str(text_model),
            str(work / "sms.csv"),
            "-o",
            str(out),
            *COLUMNS[:2],
            "--id-column",
            "id",
            "-q",
        ]
    )
    assert code == 0
    rows = read_csv(out)
    assert len(rows) == 160
    assert list(rows[0]) == ["id", "prediction", "proba_ham", "proba_spam"]
    assert rows[0]["id"] == "m0" and rows[-1]["id"] == "m159"
    assert all(r["prediction"] in {"ham", "spam"} for r in rows)
    for r in rows:
        ham, spam = float(r["proba_ham"]), float(r["proba_spam"])
        assert ham + spam == pytest.approx(1, abs=1e-5)
        assert r["prediction"] == ("spam" if spam > ham else "ham")


def test_predict_without_output_writes_csv_to_stdout_with_row_numbers(work, text_model, capsys):
    assert main(["predict", str(text_model), str(work / "sms.csv"), "--text-column", "message", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id,prediction,proba_ham,proba_spam"
    assert [line.split(",")[0] for line in lines[1:4]] == ["0", "1", "2"]
    assert len(lines) == 161


def test_evaluate_text_prints_metrics_and_draws_the_confusion_matrix(work, text_model, tmp_path, capsys):
    png = tmp_path / "cm.png"
    code = main(
        [
            "evaluate",
            str(text_model),
            str(work / "sms.csv"),
            "--confusion-matrix",
            str(png),
            *COLUMNS,
            "--normalize",
            "true",
            "-q",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    accuracy = float(next(line for line in out.splitlines() if line.startswith("accuracy")).split()[1])
    f1 = float(next(line for line in out.splitlines() if line.startswith("f1_macro")).split()[1])
    assert 0 <= f1 <= 1 and 0.5 <= accuracy <= 1  # ham alone is 87% of the sample
    assert "spam" in out and "macro avg" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_scores_labels_the_model_never_saw_as_errors(text_model, tmp_path, capsys):
    data = tmp_path / "odd.csv"
    data.write_text("message,category\nsee you at lunch,ham\nwin a prize,other\n", encoding="utf-8")
    assert main(["evaluate", str(text_model), str(data), *COLUMNS, "-q"]) == 0
    out = capsys.readouterr().out
    report = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert report["other"][0] == "0.0000"  # its precision: never predicted
    assert float(report["accuracy"][0]) <= 0.5


# -- image and speech ---------------------------------------------------------------------------------
def test_image_folder_fit_predict_evaluate(work, tmp_path, capsys):
    model = tmp_path / "ants.skbig"
    assert main(["fit", "--task", "image", str(work / "train"), "-o", str(model), *FAST_TEXT]) == 0
    assert "ImageClassifier (cnn)" in capsys.readouterr().out
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(work / "val"), "-o", str(out), "-q"]) == 0
    rows = read_csv(out)
    assert len(rows) == 12 and rows[0]["id"].startswith("ants/") and rows[-1]["id"].startswith("bees/")
    assert {"proba_ants", "proba_bees"} <= set(rows[0])
    assert (
        main(["evaluate", str(model), str(work / "val"), "--confusion-matrix", str(tmp_path / "c.png")]) == 0
    )
    assert "accuracy" in capsys.readouterr().out
    assert (tmp_path / "c.png").stat().st_size > 0


def test_speech_folder_fit_predict_evaluate(work, tmp_path, capsys):
    model = tmp_path / "digits.skbig"
    assert main(["fit", "--task", "speech", str(work / "speech"), "-o", str(model), *TINY_CTC]) == 0
    assert isinstance(skbig.load(model), skbig.SpeechRecognizer)
    out = tmp_path / "t.csv"
    clip = next((work / "speech" / "clips").iterdir())
    assert main(["predict", str(model), str(work / "speech"), str(clip), "-o", str(out), "-q"]) == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["id", "prediction"]
    assert len(rows) == 11 and rows[0]["id"].startswith("clips/") and rows[-1]["id"] == str(clip)
    capsys.readouterr()
    # A path to the transcripts table works as DATA too.
    assert main(["evaluate", str(model), str(work / "speech" / "transcripts.tsv"), "-q"]) == 0
    metrics = dict(line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.strip())
    assert set(metrics) == {"wer", "cer"} and float(metrics["wer"]) >= 0


def test_evaluate_prepares_references_like_the_models_score(work, tmp_path, capsys):
    # A normalize_text model writes lowercase without punctuation: references that differ from
    # its predictions only in case and a "!" are no error, as in model.score.
    table = work / "speech" / "transcripts.tsv"
    rows = [line.split("\t") for line in table.read_text(encoding="utf-8").splitlines()[1:]]
    X = [str(work / "speech" / name) for name, _ in rows]
    tiny = {"hidden_size": 16, "num_layers": 1, "conv_channels": 8}  # TINY_CTC's
    asr = skbig.SpeechRecognizer(
        max_epochs=1, normalize_text=True, validation_fraction=0.0, random_state=0, backend_params=tiny
    )
    asr.fit(X, [w.strip() for _, w in rows])
    model = asr.save(tmp_path / "normalised.skbig")
    shouted = [text.upper() + "!" for text in asr.predict(X)]
    assert all(text.strip("!") for text in shouted)  # something to score
    loud = tmp_path / "loud" / "transcripts.tsv"
    loud.parent.mkdir()
    shutil.copytree(work / "speech" / "clips", loud.parent / "clips")
    loud.write_text("filename\ttext\n" + "".join(f"{n}\t{w}\n" for (n, _), w in zip(rows, shouted)), "utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(model), str(loud), "-q"]) == 0
    metrics = dict(line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.strip())
    assert float(metrics["wer"]) == 0.0 == 1 - asr.score(X, shouted)


# -- search, plugins, search-worker -------------------------------------------------------------------
def test_search_saves_the_best_model_and_resumes_its_study(work, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["search", "--task", "text", str(work / "sms.csv"), *COLUMNS]
    common += ["--storage", storage, "--study", "sms", "--cv", "2"]
    best = tmp_path / "best.skbig"
    assert main([*common, "--n-trials", "1", "-o", str(best), *FAST_TEXT]) == 0
    assert "1 trial(s) counted" in capsys.readouterr().out
    assert isinstance(skbig.load(best), skbig.TextClassifier)
    assert main([*common, "--n-trials", "2", "--max-epochs", "1", "--random-state", "0"]) == 0
    captured = capsys.readouterr()
    assert "2 trial(s) counted" in captured.out
    assert captured.err.count("trial 1 ") == 1 and "trial 0 " not in captured.err  # only the new trial ran


def test_search_worker_fills_a_sqlite_study(tmp_path, capsys):
    from skbig.search import OptunaSearchCV

    texts, labels = load_sms_spam_sample()
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    search = OptunaSearchCV(
        skbig.TextClassifier(max_epochs=1, random_state=0),
        {"lr": [1e-3, 1e-2]},
        cv=2,
        storage=url,
        study_name="shared",
    )
    search.create_study(texts[:80], labels[:80])
    assert main(["search-worker", "--storage", url, "--study", "shared", "--n-trials", "1"]) == 0
    assert "worker ran 1 trial(s)" in capsys.readouterr().out
    assert main(["search-worker", "--storage", url, "--study", "nope", "--n-trials", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"skbig search-worker: error: no study named 'nope' in {url}"


def test_search_param_fixes_a_parameter_instead_of_searching_it(work, tmp_path, capsys):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = ["search", "--task", "text", str(work / "sms.csv"), *COLUMNS, "--storage", storage, "--study", "s"]
    assert main([*argv, "--cv", "2", "--n-trials", "2", "--param", "lr=0.004", *FAST_TEXT]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "fixed by --param, not searched: lr=0.004"
    assert "  lr = " not in out  # not among the best parameters found
    study = optuna.load_study(study_name="s", storage=storage)
    assert [sorted(t.params) for t in study.trials] == [
        ["backend_params__dropout", "backend_params__embed_dim", "backend_params__word_ngrams"]
    ] * 2


class _NeverPrune(BasePruner):
    """A pruner of the user's own: the spec can name it but search-worker cannot rebuild it."""

    def prune(self, study, trial):
        return False


@pytest.mark.parametrize("kind", ["optuna-pruner", "own-pruner"])
def test_search_worker_uses_the_pruner_the_search_asked_for(tmp_path, capsys, kind):
    import optuna

    from skbig.search import OptunaSearchCV

    texts, labels = load_sms_spam_sample()
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    pruner = optuna.pruners.ThresholdPruner(lower=2.0) if kind == "optuna-pruner" else _NeverPrune()
    OptunaSearchCV(
        skbig.TextClassifier(max_epochs=2, early_stopping=False, random_state=0),
        {"lr": [1e-3, 1e-2]},
        cv=2,
        storage=url,
        study_name="shared",
        pruner=pruner,  # every score is < 2: ThresholdPruner prunes each trial at its first epoch
    ).create_study(texts[:80], labels[:80])
    assert main(["search-worker", "--storage", url, "--study", "shared", "--n-trials", "2"]) == 0
    states = {t.state.name for t in optuna.load_study(study_name="shared", storage=url).trials}
    err = capsys.readouterr().err
    if kind == "optuna-pruner":
        assert states == {"PRUNED"} and "note" not in err
    else:  # said, and skbig's "auto" pruner used: it waits for 2 complete trials, so none is pruned here
        assert "_NeverPrune" in err and "this worker uses pruner='auto'" in err
        assert states == {"COMPLETE"}


def test_plugins_lists_the_builtin_backends(capsys):
    assert main(["plugins", "--task", "text-classification"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["name", "task", "status"]
    assert any(line.split()[:3] == ["fasttext", "text-classification", "ok"] for line in out.splitlines())


@pytest.mark.slow
def test_demo_fits_the_sms_sample_and_reloads(tmp_path, capsys):
    model = tmp_path / "demo.skbig"
    assert main(["demo", "-q", "-o", str(model)]) == 0
    assert "reloaded predictions identical: True" in capsys.readouterr().out
    assert model.is_file()


# -- help and errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", ["fit", "predict", "evaluate", "search", "plugins", "search-worker", "demo"]
)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: skbig {command}")
    assert re.search(rf"examples?:\n  skbig {command}", out)


BAD = {
    "missing-task": (
        ["fit", "data.csv", "-o", "m"],
        "skbig fit: error: the following arguments are required",
    ),
    "bad-task": (["fit", "--task", "video", "x", "-o", "m"], "skbig fit: error: argument --task"),
    "no-data": (
        ["fit", "--task", "text", "{w}/nope.csv", "-o", "m"],
        "skbig fit: error: DATA '{w}/nope.csv'",
    ),
    "bad-column": (["fit", "--task", "text", "{w}/sms.csv", "-o", "m"], "has no column 'text'"),
    "bad-param": (
        ["fit", "--task", "text", "{w}/sms.csv", "-o", "m", *COLUMNS, "--param", "max_epoch=2"],
        "did you mean 'max_epochs'?",
    ),
    "param-syntax": (["fit", "--task", "text", "x", "-o", "m", "--param", "lr"], "expected key=value"),
    "fit-error": (
        ["fit", "--task", "text", "{w}/sms.csv", "-o", "m", *COLUMNS, "--param", "lr=-1", "-q"],
        "skbig fit: error: lr must be > 0",
    ),
    "no-images": (["fit", "--task", "image", "{w}/speech", "-o", "m"], "no images"),
    "no-transcripts": (["fit", "--task", "speech", "{w}/train", "-o", "m"], "has no transcripts.tsv"),
    "no-model": (["predict", "{w}/missing.skbig", "x.csv"], "skbig predict: error: MODEL"),
    "not-a-model": (["evaluate", "{w}/sms.csv", "{w}/sms.csv"], "is not a skbig model file"),
    "unknown-command": (["frobnicate"], "skbig: error: argument COMMAND: invalid choice"),
    "output-is-a-folder": (  # refused before training, not after
        ["fit", "--task", "text", "{w}/sms.csv", "-o", "{w}", *COLUMNS],
        "skbig fit: error: output '{w}' is a directory",
    ),
    "predict-output-folder-missing": (
        ["predict", "{w}/missing.skbig", "x.csv", "-o", "{w}/no/such/p.csv"],
        "the folder '{w}/no/such' does not exist",
    ),
    "one-fold": (["search", "--task", "text", "{w}/sms.csv", "--cv", "1"], "argument --cv: must be >= 2"),
    "storage-not-a-url": (
        ["search", "--task", "text", "{w}/sms.csv", *COLUMNS, "--storage", "notaurl", "-q"],
        "storage='notaurl' is not a database URL",
    ),
    "storage-folder-missing": (
        ["search", "--task", "text", "{w}/sms.csv", *COLUMNS, "--storage", "sqlite:///{w}/no/s.db", "-q"],
        "skbig search: error: cannot open storage='sqlite:///{w}/no/s.db': the folder '{w}/no' does not",
    ),
    "storage-is-a-folder": (
        ["search", "--task", "text", "{w}/sms.csv", *COLUMNS, "--storage", "sqlite:///{w}/train", "-q"],
        "skbig search: error: cannot open storage='sqlite:///{w}/train': unable to open database file",
    ),
    "zero-grace-period": (
        ["search-worker", "--storage", "sqlite:///x.db", "--study", "s", "--n-trials", "1",
         "--grace-period", "0"],
        "argument --grace-period: must be >= 1",
    ),
    "negative-grace-period": (
        ["search-worker", "--storage", "sqlite:///x.db", "--study", "s", "--n-trials", "1",
         "--grace-period", "-3"],
        "argument --grace-period: must be >= 1",
    ),
    "search-fixed-param-invalid": (
        ["search", "--task", "text", "{w}/sms.csv", *COLUMNS, "--n-trials", "2", "--cv", "2",
         "--param", "lr=-1", *FAST_TEXT],
        "skbig search: error: no trial completed: all 2 trials failed with the same error: "
        "InvalidParameterError: lr must be > 0, got lr=-1",
    ),
    "zero-heartbeat": (
        ["search-worker", "--storage", "sqlite:///x.db", "--study", "s", "--n-trials", "1",
         "--heartbeat-interval", "0"],
        "argument --heartbeat-interval: must be >= 1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_exit_2_with_one_line(case, work, capsys):
    argv, expected = BAD[case]
    argv = [a.replace("{w}", str(work)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own syntax errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert expected.replace("{w}", str(work)) in err


def test_python_dash_m_reports_a_data_error_in_one_line_without_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "skbig", "fit", "--task", "image", str(tmp_path), "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("skbig fit: error: no images") and done.stderr.count("\n") == 1


def test_fit_summary_shows_the_settings_the_fit_ran_with(work, tmp_path, capsys):
    code = fit_text(work, tmp_path / "m.skbig")
    assert code == 0
    out = capsys.readouterr().out
    # fasttext's recommended lr and batch size; the fallbacks for what it does not recommend.
    assert "lr=0.005" in out and "lr_schedule=constant" in out and "validation_fraction=0.1" in out
