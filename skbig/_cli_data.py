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
    (``.jpg``, ``.png``, ...; in nested folders too), as in
    ``torchvision.datasets.ImageFolder``; hidden files and folders are skipped.
speech
    A folder of audio files (WAV, FLAC, OGG) and a tab-separated
    ``transcripts.tsv`` whose header starts ``filename<TAB>text`` (further
    columns are ignored) and whose rows give each file's path relative to
    the folder and its transcript (the
    layout of ``skbig/datasets/data/ljspeech``).  A path to such a ``.tsv``
    file works too; its paths are then relative to the folder holding it.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
        rows = _read_csv(path, {text_column: "--text-column", label_column: "--label-column"}, label_column)
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
    audio, skipping hidden files and folders); ids are the paths as given, or
    relative to a given folder, prefixed with that folder as given when two
    inputs would otherwise share an id.
    """
    if not inputs:
        raise InvalidInputError("no INPUTS given; pass a CSV (text) or image/audio files or folders")
    if task == "text":
        if len(inputs) != 1:
            raise InvalidInputError(f"text INPUTS must be one CSV file, got {len(inputs)} paths")
        path = _existing(inputs[0], "INPUTS")
        columns = {text_column: "--text-column", **({id_column: "--id-column"} if id_column else {})}
        rows = _read_csv(path, columns)
        row_ids = [r[id_column] for r in rows] if id_column else [str(i) for i in range(len(rows))]
        return row_ids, [r[text_column] for r in rows]
    suffixes = IMAGE_SUFFIXES if task == "image" else AUDIO_SUFFIXES
    found: list[tuple[str, str | None, Path]] = []  # (input as given, path inside it, file)
    for given in inputs:
        path = _existing(given, "INPUTS")
        if path.is_dir():
            found.extend((str(given), p.relative_to(path).as_posix(), p) for p in _files_in(path, suffixes))
        else:
            found.append((str(given), None, path))
    ids = [inside if inside is not None else given for given, inside, _ in found]
    if len(set(ids)) < len(ids):  # e.g. two class folders both holding 0.png
        ids = [given if inside is None else f"{given.rstrip('/')}/{inside}" for given, inside, _ in found]
    X = [str(file.resolve()) for _, _, file in found]
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


@contextmanager
def _no_field_size_limit() -> Iterator[None]:
    """Lift the csv module's 128 KiB cell limit: a long article is a valid text."""
    previous = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(
    path: Path, columns: Mapping[str, str], label_column: str | None = None
) -> list[dict[str, str]]:
    """Rows of the CSV ``path`` holding every column of ``columns`` (name -> the flag that chose it).

    A blank ``label_column`` cell is missing, not a class named ``""``.
    Errors name the file's line (the last line of a multi-line record).
    """
    if not path.is_file():
        raise InvalidInputError(
            f"{str(path)!r} is not a file; text data must be a CSV file with a header row"
        )
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh, _no_field_size_limit():
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{str(path)!r} is not UTF-8 text ({exc}); save the CSV as UTF-8") from exc
    except csv.Error as exc:
        raise InvalidInputError(f"{str(path)!r} is not a readable CSV: {exc}") from exc
    for column, flag in columns.items():
        if column not in header:
            raise InvalidInputError(
                f"{str(path)!r} has no column {column!r}; its columns are {header}; "
                f"choose another with {flag}"
            )
    for line, row in zip(lines, rows, strict=True):
        missing = [c for c in columns if row.get(c) is None]
        if label_column is not None and row.get(label_column) is not None and not row[label_column].strip():
            missing.append(label_column)
        if missing:
            raise InvalidInputError(
                f"{str(path)!r} line {line} lacks a value for column(s) {missing}; fill it in or drop the row"
            )
    if not rows:
        raise InvalidInputError(f"{str(path)!r} has a header but no rows")
    return rows


def _visible(path: Path, root: Path) -> bool:
    """False for hidden files and anything under a hidden folder (``.DS_Store``, ``.ipynb_checkpoints/``)."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _files_in(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """The files with one of ``suffixes`` anywhere under ``folder``, hidden ones skipped, sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes and _visible(p, folder)
    )


def _image_folder(root: Path) -> tuple[list[str], list[str]]:
    if not root.is_dir():
        raise InvalidInputError(
            f"image DATA must be a folder with one sub-folder of images per class, got the file {str(root)!r}"
        )
    X: list[str] = []
    y: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _files_in(folder, IMAGE_SUFFIXES)  # nested folders too, as ImageFolder reads them
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
    try:
        with table.open(encoding="utf-8-sig", newline="") as fh, _no_field_size_limit():
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{str(table)!r} is not UTF-8 text ({exc}); save it as UTF-8") from exc
    except csv.Error as exc:
        raise InvalidInputError(f"{str(table)!r} is not a readable tab-separated table: {exc}") from exc
    if header is None or [h.strip() for h in header[:2]] != ["filename", "text"]:
        raise InvalidInputError(
            f"{str(table)!r} must start with the header line 'filename<TAB>text', got {header!r}"
        )
    X: list[str] = []
    y: list[str] = []
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):  # extra columns (e.g. speaker) are allowed, and ignored
            raise InvalidInputError(
                f"{str(table)!r} line {line}: expected {len(header)} tab-separated fields like the "
                f"header {header!r}, got {len(row)}"
            )
        audio = table.parent / row[0]
        if not audio.is_file():
            raise InvalidInputError(f"{str(table)!r} line {line}: audio file {str(audio)!r} does not exist")
        X.append(str(audio.resolve()))
        y.append(row[1])
    if not X:
        raise InvalidInputError(f"{str(table)!r} lists no audio files")
    return X, y
