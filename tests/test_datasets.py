"""Loaders: FER2013 CSV and image folders load correctly, and bad input fails with DataError."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from emofl.common.data.classes import CLASSES
from emofl.common.data.datasets import load_dataset, load_fer_csv, load_image_folder
from emofl.common.data.face_dataset import DataError

ROWS = [(0, "Training"), (3, "Training"), (6, "PublicTest"), (4, "PrivateTest")]


def face(seed: int, shape: tuple[int, ...] = (48, 48)) -> np.ndarray:
    """A random uint8 image, reproducible from `seed`."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def pixel_text(image: np.ndarray | list[int]) -> str:
    return " ".join(map(str, np.ravel(image)))


def pixels_with(first: str) -> str:
    """Valid pixel text for one face, with its first value replaced by `first`."""
    return " ".join([first, *map(str, face(0).ravel()[1:])])


def write_csv(path: Path, header: str = "emotion,pixels,Usage", rows: list[str] | None = None):
    """A FER2013-style CSV with one random face per entry of ROWS (or the given raw rows)."""
    if rows is None:
        rows = [f"{label},{pixel_text(face(i))},{usage}" for i, (label, usage) in enumerate(ROWS)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_csv_loads_faces_and_labels(tmp_path):
    data = load_fer_csv(write_csv(tmp_path / "fer2013.csv"))
    assert data.images.shape == (4, 48, 48) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [label for label, _ in ROWS]
    np.testing.assert_array_equal(data.images[2], face(2))


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ("Training", [0, 3]),
        ("train", [0, 3]),
        ("val", [6]),
        ("publictest", [6]),
        ("test", [4]),
        ("PrivateTest", [4]),
    ],
)
def test_csv_usage_filter_and_aliases(tmp_path, usage, expected):
    data = load_fer_csv(write_csv(tmp_path / "fer2013.csv"), usage=usage)
    assert data.labels.tolist() == expected


def test_csv_icml_header_variant(tmp_path):
    rows = [f"{label}, {usage}, {pixel_text(face(i))}" for i, (label, usage) in enumerate(ROWS)]
    path = write_csv(tmp_path / "icml_face_data.csv", "emotion, Usage, pixels", rows)
    data = load_fer_csv(path, usage="train")
    assert data.labels.tolist() == [0, 3]
    np.testing.assert_array_equal(data.images[1], face(1))


def test_csv_without_usage_column_loads_when_no_usage_asked(tmp_path):
    rows = [f"5,{pixel_text(face(0))}"]
    path = write_csv(tmp_path / "train.csv", "emotion,pixels", rows)
    assert load_fer_csv(path).labels.tolist() == [5]
    with pytest.raises(DataError) as excinfo:
        load_fer_csv(path, usage="val")
    assert_one_line_error(excinfo, str(path), "Usage")


@pytest.mark.parametrize(
    ("bad_row", "fragment"),
    [
        ("2," + pixel_text([7] * 2303) + ",Training", "expected 2304 pixels, got 2303"),
        ("2,,Training", "expected 2304 pixels, got 0"),
        ("2," + pixels_with("x") + ",Training", "integers in 0..255"),
        ("2," + pixels_with("1.5") + ",Training", "integers in 0..255"),
        ("2," + pixels_with("256") + ",Training", "integers in 0..255"),
        ("2," + pixels_with("-1") + ",Training", "integers in 0..255"),
        ("7," + pixel_text(face(0)) + ",Training", "emotion '7'"),
        ("happy," + pixel_text(face(0)) + ",Training", "emotion 'happy'"),
        ("2," + pixel_text(face(0)), "expected 3 fields, got 2"),
    ],
)
def test_csv_bad_row_names_file_and_line(tmp_path, bad_row, fragment):
    good = f"1,{pixel_text(face(1))},Training"
    path = write_csv(tmp_path / "bad.csv", rows=[good, bad_row])
    with pytest.raises(DataError) as excinfo:
        load_fer_csv(path)
    assert_one_line_error(excinfo, f"{path} row 3", fragment)


def test_csv_missing_columns(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "label,image", rows=["1,2"])
    with pytest.raises(DataError) as excinfo:
        load_fer_csv(path)
    assert_one_line_error(excinfo, str(path), "emotion", "pixels")


def test_csv_unknown_usage_and_empty_selection(tmp_path):
    path = write_csv(tmp_path / "fer.csv", rows=[f"1,{pixel_text(face(1))},Training"])
    with pytest.raises(DataError) as excinfo:
        load_fer_csv(path, usage="holdout")
    assert_one_line_error(excinfo, "unknown split 'holdout'")
    with pytest.raises(DataError) as excinfo:
        load_fer_csv(path, usage="val")
    assert_one_line_error(excinfo, "no rows", str(path))


def test_missing_paths(tmp_path):
    missing = tmp_path / "nowhere"
    for load in (load_fer_csv, load_image_folder, load_dataset):
        with pytest.raises(DataError) as excinfo:
            load(str(missing))
        assert_one_line_error(excinfo, f"data path not found: {missing}")


def make_folder(root: Path) -> None:
    """Class folders with mixed names, formats, colours and sizes."""
    write_image(root / "Happy" / "b.png", face(1))
    write_image(root / "Happy" / "a.png", face(2))
    write_image(root / "anger" / "x.jpg", face(3, (48, 48, 3)))
    write_image(root / "sadness" / "big.png", face(4, (96, 96)))
    write_image(root / "neutral" / "one.jpeg", face(5))
    (root / "neutral" / "notes.txt").write_text("not an image")


def test_folder_flat_layout_with_synonyms(tmp_path):
    make_folder(tmp_path)
    data = load_image_folder(tmp_path)
    names = [CLASSES[label] for label in data.labels]
    assert names == ["angry", "happy", "happy", "sad", "neutral"]
    assert data.images.shape == (5, 48, 48) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images[1], face(2))  # files sorted: a.png first
    assert data.images[0].std() > 0  # the colour .jpg was converted, not dropped


def test_folder_load_is_deterministic(tmp_path):
    make_folder(tmp_path)
    first, second = load_image_folder(tmp_path), load_image_folder(tmp_path)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_folder_split_layout(tmp_path):
    write_image(tmp_path / "train" / "fear" / "1.png", face(1))
    write_image(tmp_path / "train" / "surprise" / "2.png", face(2))
    write_image(tmp_path / "val" / "disgust" / "3.png", face(3))
    assert load_image_folder(tmp_path, "train").labels.tolist() == [2, 5]
    assert load_image_folder(tmp_path, "val").labels.tolist() == [1]
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path, "test")
    assert_one_line_error(excinfo, "unknown split 'test'", "train, val")
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert_one_line_error(excinfo, "split folders", str(tmp_path))


def test_folder_skips_contempt_with_warning(tmp_path):
    write_image(tmp_path / "happy" / "1.png", face(1))
    write_image(tmp_path / "contempt" / "2.png", face(2))
    with pytest.warns(UserWarning, match="contempt"):
        data = load_image_folder(tmp_path)
    assert data.labels.tolist() == [CLASSES.index("happy")]


def test_folder_unknown_class(tmp_path):
    write_image(tmp_path / "happy" / "1.png", face(1))
    write_image(tmp_path / "xyz" / "2.png", face(2))
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert_one_line_error(excinfo, f"unknown class folder 'xyz' in {tmp_path}", "angry")


def test_folder_corrupt_image(tmp_path):
    write_image(tmp_path / "happy" / "1.png", face(1))
    corrupt = tmp_path / "happy" / "2.png"
    corrupt.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert_one_line_error(excinfo, f"cannot read image: {corrupt}")


def test_folder_without_images(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert_one_line_error(excinfo, "no .png/.jpg images", str(tmp_path))


def test_load_dataset_dispatches_on_spec(tmp_path):
    csv_path = write_csv(tmp_path / "fer.csv")
    assert load_dataset(str(csv_path), split="val").labels.tolist() == [6]
    write_image(tmp_path / "faces" / "train" / "happy" / "1.png", face(1))
    assert load_dataset(str(tmp_path / "faces"), split="train").labels.tolist() == [3]
    (tmp_path / "faces.txt").write_text("")
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path / "faces.txt"))
    assert_one_line_error(excinfo, "unsupported data file")


def test_load_dataset_synthetic():
    pytest.importorskip("emofl.common.data.synthetic")
    data = load_dataset("synthetic", synthetic_size=20, seed=1)
    assert len(data) == 20 and data.images.shape == (20, 48, 48)
