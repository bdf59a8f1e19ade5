"""Read the data the ``skbig`` command is pointed at, for each task.

The command line sees files, the estimators see lists: this module turns a
CSV, a folder of class sub-folders or a folder of audio files with a
transcripts table into ``X`` (texts or absolute paths) and ``y`` (labels or
transcripts), and inputs to predict on into ``ids`` and ``X``.  Every problem
is an :class:`~skbig.exceptions.InvalidInputError` naming the file, column or
line and what to do, so the CLI can report it on one line.

Layouts
-------
text
    A UTF-8 CSV with a header row; the text and label columns are chosen by
    name (``text`` and ``label`` by default).
image
    A folder with one sub-folder per class, holding that class's images
    (``.jpg``, ``.png``, ...), as in ``torchvision.datasets.ImageFolder``.
speech
    A folder of audio files (WAV, FLAC, OGG) and a tab-separated
    ``transcripts.tsv`` whose header is ``filename<TAB>text`` and whose rows
    give each file's path relative to the folder and its transcript (the
    layout of ``skbig/datasets/data/ljspeech``).  A path to such a ``.tsv``
    file works too; its paths are then relative to the folder holding it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from skbig.exceptions import InvalidInputError

__all__ = [
    "TASKS",
    "IMAGE_SUFFIXES",
    "AUDIO_SUFFIXES",
    "TRANSCRIPTS_FILE",
    "load_labelled",
    "load_inputs",
    "task_of",
]

TASKS = ("text", "image", "speech")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
TRANSCRIPTS_FILE = "transcripts.tsv"
_ESTIMATOR_TASKS = {"TextClassifier": "text", "ImageClassifier": "image", "SpeechRecognizer": "speech"}


def task_of(estimator: object) -> str:
    """``"text"``, ``"image"`` or ``"speech"`` for a loaded skbig model."""
    name = type(estimator).__name__
    if name not in _ESTIMATOR_TASKS:
        raise InvalidInputError(f"the model is a {name}, which the skbig command cannot use")
    return _ESTIMATOR_TASKS[name]


def load_labelled(
    task: str, data: str | Path, *, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], list[str]]:
    """Return ``(X, y)`` for training or evaluation from ``data`` laid out for ``task``."""
    path = _existing(data, "DATA")
    if task == "text":
        rows = _read_csv(path, [text_column, label_column])
        return [r[text_column] for r in rows], [r[label_column] for r in rows]
    if task == "image":
        return _image_folder(path)
    if task == "speech":
        return _transcribed_audio(path)
    raise InvalidInputError(f"task must be one of {list(TASKS)}, got {task!r}")


def load_inputs(
    task: str, inputs: Sequence[str | Path], *, text_column: str = "text", id_column: str | None = None
) -> tuple[list[str], list[str]]:
    """Return ``(ids, X)`` to predict on.

    Text: one CSV; ids are ``id_column``'s values, or row numbers from 0.
    Image and speech: files and folders (searched recursively for images or
    audio); ids are the paths as given, or relative to a given folder.
    """
    if not inputs:
        raise InvalidInputError("no INPUTS given; pass a CSV (text) or image/audio files or folders")
    if task == "text":
        if len(inputs) != 1:
            raise InvalidInputError(f"text INPUTS must be one CSV file, got {len(inputs)} paths")
        path = _existing(inputs[0], "INPUTS")
        columns = [text_column] + ([id_column] if id_column else [])
        rows = _read_csv(path, columns)
        row_ids = [r[id_column] for r in rows] if id_column else [str(i) for i in range(len(rows))]
        return row_ids, [r[text_column] for r in rows]
    suffixes = IMAGE_SUFFIXES if task == "image" else AUDIO_SUFFIXES
    ids: list[str] = []
    X: list[str] = []
    for given in inputs:
        path = _existing(given, "INPUTS")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            ids.extend(p.relative_to(path).as_posix() for p in files)
            X.extend(str(p.resolve()) for p in files)
        else:
            ids.append(str(given))
            X.append(str(path.resolve()))
    if not X:
        raise InvalidInputError(
            f"no {task} files ({', '.join(suffixes)}) found in {[str(p) for p in inputs]}"
        )
    return ids, X


# -- layouts ----------------------------------------------------------------------------------------
def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{what} {str(path)!r} does not exist")
    return path


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise InvalidInputError(
            f"{str(path)!r} is not a file; text data must be a CSV file with a header row"
        )
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{str(path)!r} is not UTF-8 text ({exc}); save the CSV as UTF-8") from exc
    except csv.Error as exc:
        raise InvalidInputError(f"{str(path)!r} is not a readable CSV: {exc}") from exc
    for column in columns:
        if column not in header:
            raise InvalidInputError(
                f"{str(path)!r} has no column {column!r}; its columns are {header}; "
                "choose others with --text-column/--label-column"
            )
    for line, row in enumerate(rows, start=2):
        missing = [c for c in columns if row.get(c) is None]
        if missing:
            raise InvalidInputError(f"{str(path)!r} line {line} lacks a value for column(s) {missing}")
    if not rows:
        raise InvalidInputError(f"{str(path)!r} has a header but no rows")
    return rows


def _image_folder(root: Path) -> tuple[list[str], list[str]]:
    if not root.is_dir():
        raise InvalidInputError(
            f"image DATA must be a folder with one sub-folder of images per class, got the file {str(root)!r}"
        )
    X: list[str] = []
    y: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        X.extend(str(p.resolve()) for p in files)
        y.extend(folder.name for _ in files)
    if not X:
        raise InvalidInputError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in the sub-folders of {str(root)!r}; image DATA "
            "must hold one sub-folder per class, e.g. DATA/ants/1.jpg, DATA/bees/2.jpg"
        )
    return X, y


def _transcribed_audio(path: Path) -> tuple[list[str], list[str]]:
    table = path / TRANSCRIPTS_FILE if path.is_dir() else path
    if not table.is_file():
        raise InvalidInputError(
            f"speech DATA {str(path)!r} has no {TRANSCRIPTS_FILE}; write one with the header "
            "'filename<TAB>text' and a row per audio file (path relative to the folder)"
        )
    with table.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        rows = list(reader)
    if header is None or [h.strip() for h in header[:2]] != ["filename", "text"]:
        raise InvalidInputError(
            f"{str(table)!r} must start with the header line 'filename<TAB>text', got {header!r}"
        )
    X: list[str] = []
    y: list[str] = []
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise InvalidInputError(
                f"{str(table)!r} line {line}: expected 2 tab-separated fields (filename, text), "
                f"got {len(row)}"
            )
        audio = table.parent / row[0]
        if not audio.is_file():
            raise InvalidInputError(f"{str(table)!r} line {line}: audio file {str(audio)!r} does not exist")
        X.append(str(audio.resolve()))
        y.append(row[1])
    if not X:
        raise InvalidInputError(f"{str(table)!r} lists no audio files")
    return X, y
