"""What the ``skbig`` command reads from files: CSV cells, image folders, transcript tables, ids."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skbig._cli_data import load_inputs, load_labelled
from skbig.cli import main
from skbig.datasets import load_fsdd_sample
from skbig.exceptions import InvalidInputError


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


# -- text CSVs ---------------------------------------------------------------------------------------
def test_a_blank_label_cell_is_missing_not_a_class(tmp_path):
    # Excel leaves "," rows at the end of a sheet; they are not a class named "".
    data = _csv(tmp_path / "d.csv", [["text", "label"], ["hi", "ham"], ["win", "spam"], ["", ""]])
    with pytest.raises(InvalidInputError, match=r"line 4 lacks a value for column\(s\) \['label'\]"):
        load_labelled("text", data)


def test_errors_name_the_file_line_after_multi_line_cells(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text('text,label\n"one\ntwo\nthree",spam\n\nhello,ham\nbad\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 7 lacks a value"):
        load_labelled("text", data)


def test_a_cell_longer_than_the_csv_modules_limit_is_read(tmp_path):
    article = "word " * 40_000  # 200 KB: csv's default field limit is 128 KiB
    data = _csv(tmp_path / "d.csv", [["text", "label"], [article, "long"], ["short", "short"]])
    X, y = load_labelled("text", data)
    assert X[0] == article and y == ["long", "short"]


def test_a_missing_id_column_names_the_flag_that_chose_it(tmp_path):
    data = _csv(tmp_path / "d.csv", [["text", "label"], ["hi", "ham"]])
    with pytest.raises(InvalidInputError, match="no column 'idd'.*choose another with --id-column"):
        load_inputs("text", [str(data)], id_column="idd")


# -- image folders ------------------------------------------------------------------------------------
def test_image_classes_include_nested_folders_and_skip_hidden_ones(tmp_path):
    _png(tmp_path / "ants" / "a.png", 0)
    _png(tmp_path / "ants" / "more" / "b.png", 1)
    _png(tmp_path / "bees" / "c.png", 2)
    _png(tmp_path / "bees" / ".ipynb_checkpoints" / "c-checkpoint.png", 3)
    _png(tmp_path / ".thumbnails" / "d.png", 4)
    X, y = load_labelled("image", tmp_path)
    assert [Path(p).name for p in X] == ["a.png", "b.png", "c.png"]
    assert y == ["ants", "ants", "bees"]
    ids, inputs = load_inputs("image", [str(tmp_path)])
    assert ids == ["ants/a.png", "ants/more/b.png", "bees/c.png"] and len(inputs) == 3


def test_predict_ids_from_several_folders_stay_unique(tmp_path):
    for folder, seed in (("ants", 0), ("bees", 1)):
        _png(tmp_path / folder / "0.png", seed)
    alone = tmp_path / "loose.png"
    _png(alone, 2)
    ids, _ = load_inputs("image", [str(tmp_path / "ants"), str(tmp_path / "bees"), str(alone)])
    assert ids == [f"{tmp_path}/ants/0.png", f"{tmp_path}/bees/0.png", str(alone)]
    ids, _ = load_inputs("image", [str(tmp_path / "ants"), str(alone)])  # no clash: short ids
    assert ids == ["0.png", str(alone)]


# -- transcript tables --------------------------------------------------------------------------------
@pytest.fixture
def speech_folder(tmp_path) -> Path:
    paths, words = load_fsdd_sample()
    for path in paths[:3]:
        shutil.copy(path, tmp_path)
    (tmp_path / "transcripts.tsv").write_text(
        "filename\ttext\tspeaker\n"
        + "".join(f"{Path(p).name}\t{w}\tjackson\n" for p, w in zip(paths, words[:3])),
        encoding="utf-8",
    )
    return tmp_path


def test_extra_transcript_columns_are_ignored(speech_folder):
    X, y = load_labelled("speech", speech_folder)
    assert len(X) == 3 and y == load_fsdd_sample()[1][:3]


def test_a_transcript_table_that_is_not_utf8_is_named(speech_folder):
    table = speech_folder / "transcripts.tsv"
    table.write_bytes(table.read_bytes().replace(b"jackson", "jos\u00e9".encode("latin-1")))
    with pytest.raises(InvalidInputError, match="transcripts.tsv' is not UTF-8 text"):
        load_labelled("speech", speech_folder)


# -- outputs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["under-a-file", "pseudo-file-system"])
def test_an_output_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, where):
    data = _csv(tmp_path / "d.csv", [["text", "label"], *[[f"text {i}", f"c{i % 2}"] for i in range(20)]])
    output = {"under-a-file": f"{data}/model.skbig", "pseudo-file-system": "/proc/model.skbig"}[where]
    if where == "pseudo-file-system" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    assert main(["fit", "--task", "text", str(data), "-o", output, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"skbig fit: error: output {output!r}") and "epoch" not in err
