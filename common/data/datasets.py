"""Loaders that turn user-supplied face data (FER2013 CSV, image folders, synthetic) into
FaceDataset.

Every loader validates its input and raises DataError with a one-line message naming the file
(and row) at fault, so a bad path or a corrupt file is reported before any training starts.
"""

import csv
import reprlib
import warnings
from pathlib import Path
from typing import TextIO

import numpy as np

from emofl.common.data.classes import CLASS_SYNONYMS, CLASSES, IGNORED_CLASSES, NUM_CLASSES
from emofl.common.data.face_dataset import IMAGE_SIZE, DataError, FaceDataset
from emofl.common.data.image_files import read_face

NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})

# Usage values of the FER2013 CSV, and the split names users may type for them.
USAGES = ("Training", "PublicTest", "PrivateTest")
USAGE_ALIASES: dict[str, str] = {
    "training": "Training",
    "train": "Training",
    "publictest": "PublicTest",
    "val": "PublicTest",
    "validation": "PublicTest",
    "privatetest": "PrivateTest",
    "test": "PrivateTest",
}


def load_dataset(
    spec: str, split: str | None = None, synthetic_size: int = 2000, seed: int = 0
) -> FaceDataset:
    """Load faces from `spec`: "synthetic", a FER2013 .csv file, or an image-folder root.

    `split` selects the CSV Usage (train/val/test or the FER2013 names) or the split sub-folder;
    `synthetic_size` and `seed` only apply to the synthetic generator.
    """
    if spec == "synthetic":
        from emofl.common.data.synthetic import (
            make_synthetic_faces,  # imported lazily: only demos need it
        )

        return make_synthetic_faces(synthetic_size, seed=seed)
    path = Path(spec)
    if not path.exists():
        raise DataError(f"data path not found: {path}")
    if path.is_dir():
        return load_image_folder(path, split)
    if path.suffix.lower() == ".csv":
        return load_fer_csv(path, usage=split)
    raise DataError(f"unsupported data file: {path} (expected a .csv file or an image folder)")


def normalize_usage(usage: str) -> str:
    """The FER2013 Usage value (Training/PublicTest/PrivateTest) for a user-typed split name."""
    canonical = USAGE_ALIASES.get(usage.strip().lower())
    if canonical is None:
        raise DataError(
            f"unknown split {reprlib.repr(usage)} "
            f"(expected one of {', '.join(USAGES)} or train, val, test)"
        )
    return canonical


def load_fer_csv(path: str | Path, usage: str | None = None) -> FaceDataset:
    """Read a FER2013 CSV (`emotion,pixels,Usage`; the `icml_face_data.csv` header variant
    with spaces after the commas is accepted), keeping only rows of `usage` when given."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data path not found: {path}")
    wanted = normalize_usage(usage) if usage is not None else None
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            images, labels = _read_csv_rows(handle, path, wanted)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV {path}: {str(exc).splitlines()[0]}") from None
    if not labels:
        where = f" with Usage {wanted}" if wanted else ""
        raise DataError(f"no rows{where} in {path}")
    return FaceDataset(
        np.stack(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        np.asarray(labels, dtype=np.int64),
        str(path) if wanted is None else f"{path}:{wanted}",
    )


def _read_csv_rows(
    handle: TextIO, path: Path, wanted: str | None
) -> tuple[list[np.ndarray], list[int]]:
    """Parse an open FER2013 CSV into flat uint8 pixel rows and labels."""
    reader = csv.reader(handle)
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in ("emotion", "pixels") if name not in header]
    if wanted is not None and "usage" not in header:
        missing.append("Usage")
    if missing:
        raise DataError(f"{path}: missing CSV column(s) {', '.join(missing)}")
    emotion_col, pixels_col = header.index("emotion"), header.index("pixels")
    usage_col = header.index("usage") if wanted is not None else None
    images: list[np.ndarray] = []
    labels: list[int] = []
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise DataError(f"{path} row {line}: expected {len(header)} fields, got {len(row)}")
        if usage_col is not None and row[usage_col].strip() != wanted:
            continue
        labels.append(_parse_emotion(row[emotion_col], path, line))
        images.append(_parse_pixels(row[pixels_col], path, line))
    return images, labels


def _parse_emotion(text: str, path: Path, line: int) -> int:
    """The class index in `text`, which must be an integer in 0..6."""
    try:
        emotion = int(text)
    except ValueError:
        emotion = -1
    if not 0 <= emotion < NUM_CLASSES:
        raise DataError(f"{path} row {line}: emotion {reprlib.repr(text.strip())} "
                        "is not an integer in 0..6")
    return emotion


def _parse_pixels(text: str, path: Path, line: int) -> np.ndarray:
    """The 2304 space-separated 0..255 integers in `text` as a flat uint8 array."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:
        raise DataError(f"{path} row {line}: pixels must be integers in 0..255") from None
    if values.size != NUM_PIXELS:
        raise DataError(f"{path} row {line}: expected {NUM_PIXELS} pixels, got {values.size}")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{path} row {line}: pixels must be integers in 0..255")
    return values.astype(np.uint8)


def load_image_folder(root: str | Path, split: str | None = None) -> FaceDataset:
    """Read `ROOT/<class>/*.png|jpg|jpeg`, or `ROOT/<split>/<class>/*` when `split` is given.

    Class folder names are matched case-insensitively, with CLASS_SYNONYMS applied; folders
    in IGNORED_CLASSES are skipped with a warning. Images are converted to grayscale and
    resized to 48x48 when needed.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data path not found: {root}")
    if split is not None:
        root = _split_folder(root, split)
    class_dirs = _class_folders(root)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, folder in class_dirs:
        files = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        images.extend(read_face(file) for file in files)
        labels.extend([label] * len(files))
    if not images:
        raise DataError(f"no .png/.jpg images found in {root}")
    return FaceDataset(np.stack(images), np.asarray(labels, dtype=np.int64), str(root))


def _visible_subfolders(root: Path) -> list[Path]:
    """The sub-folders of `root`, sorted, skipping hidden ones such as `.ipynb_checkpoints`."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _names(folders: list[Path]) -> str:
    """The folders' names for a one-line message: a name with a line break or other
    unprintable character is quoted with it escaped."""
    return ", ".join(f.name if f.name.isprintable() else repr(f.name) for f in folders)


def _split_folder(root: Path, split: str) -> Path:
    """The sub-folder of `root` holding `split`, matched case-insensitively."""
    folders = _visible_subfolders(root)
    for folder in folders:
        if folder.name.lower() == split.lower():
            return folder
    available = _names(folders) or "none"
    raise DataError(f"unknown split {reprlib.repr(split)} in {root} (available: {available})")


def _class_folders(root: Path) -> list[tuple[int, Path]]:
    """(class index, folder) for each class folder under `root`, in a stable order."""
    folders = _visible_subfolders(root)
    names = [CLASS_SYNONYMS.get(f.name.lower(), f.name.lower()) for f in folders]
    if folders and not any(name in CLASSES or name in IGNORED_CLASSES for name in names):
        if all(_visible_subfolders(f) for f in folders):
            found = _names(folders)
            raise DataError(f"{root} holds split folders ({found}); choose one with a split")
    result: list[tuple[int, Path]] = []
    skipped: list[str] = []
    for folder, name in zip(folders, names, strict=True):
        if name in IGNORED_CLASSES:
            skipped.append(folder.name)
        elif name in CLASSES:
            result.append((CLASSES.index(name), folder))
        else:
            raise DataError(
                f"unknown class folder {folder.name!r} in {root} "
                f"(expected one of {', '.join(CLASSES)} or a synonym)"
            )
    if skipped:
        warnings.warn(
            f"skipping class folder(s) {', '.join(skipped)} in {root}: not a FER2013 class",
            stacklevel=3,
        )
    return sorted(result, key=lambda item: (item[0], str(item[1])))
