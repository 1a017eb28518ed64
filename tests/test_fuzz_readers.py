"""Fuzzing the readers of user files: FER2013 CSVs, image folders, model cards and weights,
run checkpoints.

Whatever the bytes, a reader returns what it reads or raises a `UserError` whose message is
one line; it never lets another exception out, never takes longer than the deadline, never
grows the process's peak memory past a bound, and never prints beside its error (a decoder's
native messages on stderr). Examples are derandomized so every run tries the same inputs.
"""

import functools
import io
import json
import struct
import tempfile
import warnings
import zlib
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emofl.common.data.classes import CLASS_SYNONYMS, CLASSES
from emofl.common.data.datasets import USAGES, load_dataset
from emofl.common.data.face_dataset import FaceDataset
from emofl.common.errors import UserError
from emofl.common.model.frame_store import architecture_of, build_model, load_model
from emofl.common.model.model_cards import card_path, read_card
from emofl.common.protocol.choices import MODEL_KINDS, POOLS
from emofl.server.federated.checkpoint import (
    Checkpoint,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)

FUZZ = settings(max_examples=150, deadline=timedelta(seconds=5), derandomize=True,
                database=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.function_scoped_fixture,
                                                       HealthCheck.data_too_large])
# Peak memory may grow this much during one read: room for a model of the largest width a card
# may ask for, far below what a decompression bomb would take.
MEMORY_BOUND_MB = 300


def _memory_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak_memory() -> float:
    """Start measuring the peak resident memory afresh (Linux: clear_refs 5 resets VmHWM, so
    earlier tests' peaks do not count); the resident memory now."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return _memory_mb("VmRSS")


def read_or_user_error(read, *args):
    """What `read(*args)` returns, or None when it raises a one-line UserError."""
    start_mb = _reset_peak_memory()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped class folders; numpy on bad pixel text
            result = read(*args)
        event(f"{read.__name__}: loaded")
        return result
    except UserError as err:
        event(f"{read.__name__}: {type(err).__name__}")  # --hypothesis-show-statistics
        message = str(err)
        assert message and message == message.strip() and "\n" not in message, message
        assert "\r" not in message, message
        return None
    finally:
        growth_mb = _memory_mb("VmHWM") - start_mb
        assert growth_mb < MEMORY_BOUND_MB, f"peak memory grew by {growth_mb:.0f} MB"


def assert_quiet(capfd) -> None:
    """Nothing was written on stdout or stderr, by Python or by native code."""
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)


# --- FER2013 CSV -------------------------------------------------------------------------

GOOD_PIXELS = ["7"] * 48 * 48
BAD_TOKENS = ["-1", "256", "x", "1.5", "", "99999999999999999999", "0x10", "nan", "\t"]
HEADERS = ["emotion,pixels,Usage", "emotion, pixels, Usage", "\ufeffemotion,pixels,Usage",
           "emotion,pixels", "Usage,pixels,emotion", "pixels,emotion", "emotion,Usage",
           "EMOTION,PIXELS,USAGE,extra", "", "garbage"]
SPLITS = [None, "train", "val", "test", "PrivateTest", "bogus", "a\nb", "  "]


def pixels_with(index: int, token: str, length: int) -> str:
    values = GOOD_PIXELS[:length]
    if index < len(values):
        values = [*values[:index], token, *values[index + 1:]]
    return " ".join(values)


pixel_texts = st.one_of(
    st.just(" ".join(GOOD_PIXELS)),
    st.builds(pixels_with, st.integers(0, 2303), st.sampled_from(BAD_TOKENS),
              st.sampled_from([2304, 2303, 2305, 10])),
    st.text(max_size=30),
)
emotions = st.one_of(st.integers(-2, 9).map(str), st.text(max_size=6), st.just("3" * 5000))
usages = st.one_of(st.sampled_from([*USAGES, "training", "", " Training "]),
                   st.text(max_size=8))
good_rows = st.tuples(st.integers(0, 6).map(str), st.just(" ".join(GOOD_PIXELS)),
                      st.sampled_from(USAGES)).map(",".join)
bad_rows = st.one_of(
    st.tuples(emotions, pixel_texts, usages).map(",".join),
    st.tuples(emotions, pixel_texts).map(",".join),
    st.lists(st.text(max_size=8), max_size=5).map(",".join),
    st.text(max_size=40),
)
csv_texts = st.builds(lambda header, good, bad, end: "\n".join([header, *good, *bad]) + end,
                      st.sampled_from(HEADERS), st.lists(good_rows, max_size=3),
                      st.lists(bad_rows, max_size=3), st.sampled_from(["\n", "", "\r\n", '"']))


def load_csv(content: bytes, split: str | None):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer2013.csv"
        path.write_bytes(content)
        return read_or_user_error(load_dataset, str(path), split)


@FUZZ
@given(text=csv_texts, split=st.sampled_from(SPLITS))
def test_csv_text_loads_or_fails_in_one_line(text, split):
    faces = load_csv(text.encode(), split)
    assert faces is None or isinstance(faces, FaceDataset) and len(faces) > 0


@FUZZ
@given(content=st.one_of(st.binary(max_size=2000),
                         st.binary(max_size=200).map(lambda b: b"emotion,pixels,Usage\n" + b)),
       split=st.sampled_from(SPLITS))
def test_csv_bytes_load_or_fail_in_one_line(content, split):
    faces = load_csv(content, split)
    assert faces is None or isinstance(faces, FaceDataset)


# --- image folders -------------------------------------------------------------------------

def png_declaring(width: int, height: int, pixel_data: bytes) -> bytes:
    """A grayscale PNG whose header declares width x height, with `pixel_data` compressed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel_data)
            + chunk(b"IEND", b""))


@functools.cache
def decompression_bomb() -> bytes:
    """A 0.4 MB PNG of 20000x20000 black pixels: 400 MB and more once decoded."""
    side = 20_000
    packer, row = zlib.compressobj(9), b"\0" * (side + 1)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png_declaring(side, side, data)


def encoded(shape: tuple[int, int], extension: str, keep: float) -> bytes:
    """A random image of `shape` encoded as `extension`, cut to the first `keep` of it."""
    image = np.random.default_rng(shape[0] * 101 + shape[1]).integers(0, 256, shape, np.uint8)
    data = cv2.imencode(extension, image)[1].tobytes()
    return data[:max(1, int(len(data) * keep))]


image_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(encoded, st.tuples(st.integers(1, 80), st.integers(1, 80)),
              st.sampled_from([".png", ".jpg", ".webp"]),
              st.sampled_from([1.0, 1.0, 0.5, 0.9])),
    st.builds(png_declaring, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
              st.binary(max_size=40)),
    st.just(b"\x89PNG\r\n\x1a\n"),
    st.just(b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff"),
    st.builds(decompression_bomb),
)
class_names = st.sampled_from([*CLASSES, *CLASS_SYNONYMS, "contempt", "Happy", "bored",
                               ".hidden", "train", "a\nb"])
image_files = st.tuples(st.sampled_from([".png", ".jpg", ".jpeg", ".PNG", ".txt", ""]),
                        image_bytes)
good_images = st.tuples(st.sampled_from([".png", ".jpg"]),
                        st.builds(encoded, st.tuples(st.integers(1, 80), st.integers(1, 80)),
                                  st.sampled_from([".png", ".jpg", ".webp"]), st.just(1.0)))
folder_files = st.builds(lambda good, bad: good + bad, st.lists(good_images, max_size=2),
                         st.lists(image_files, max_size=2))


@FUZZ
@given(layout=st.dictionaries(st.one_of(st.sampled_from(CLASSES), class_names), folder_files,
                             max_size=3),
       nested=st.booleans(), split=st.sampled_from([None, "train", "TRAIN", "val"]))
def test_image_folder_loads_or_fails_in_one_line(capfd, layout, nested, split):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "faces"
        base = root / "train" if nested else root
        base.mkdir(parents=True)
        for name, files in layout.items():
            (base / name).mkdir()
            for number, (suffix, data) in enumerate(files):
                (base / name / f"{number}{suffix}").write_bytes(data)
        faces = read_or_user_error(load_dataset, str(root), split)
    assert faces is None or isinstance(faces, FaceDataset) and len(faces) > 0
    assert_quiet(capfd)


# --- model cards and weights ---------------------------------------------------------------

@functools.cache
def real_weights() -> bytes:
    buffer = io.BytesIO()
    torch.save(build_model({"width": 16}).state_dict(), buffer)
    return buffer.getvalue()


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10)
architecture_values = st.one_of(st.integers(-5, 300), st.sampled_from(MODEL_KINDS + POOLS),
                                st.none(), st.booleans(), st.floats(allow_nan=False),
                                st.text(max_size=5))
architectures = st.dictionaries(st.sampled_from(["kind", "width", "feature_dim", "pool"]),
                                architecture_values, max_size=4)
card_texts = st.one_of(
    st.builds(lambda arch: json.dumps({"name": "m", "architecture": arch}),
              st.one_of(architectures, json_values)),
    json_values.map(json.dumps),
    st.text(max_size=50),
    st.just("[" * 5000),
)
card_bytes = st.one_of(card_texts.map(str.encode), st.binary(max_size=100),
                       st.just(b"\xff\xfe{}"))
weight_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(real_weights),
    st.builds(lambda keep: real_weights()[:keep], st.integers(0, 3000)),
    st.builds(torch_bytes, st.one_of(
        st.dictionaries(st.text(max_size=6), st.builds(torch.zeros, st.integers(0, 4)),
                        max_size=3),
        st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5))),
)


@FUZZ
@given(card=card_bytes, weights=weight_bytes)
def test_model_files_load_or_fail_in_one_line(card, weights):
    with tempfile.TemporaryDirectory() as folder:
        model_file = Path(folder) / "model.pt"
        model_file.write_bytes(weights)
        card_path(model_file).write_bytes(card)
        read = read_or_user_error(read_card, model_file)
        assert read is None or isinstance(read, dict)
        loaded = read_or_user_error(load_model, model_file)
    if loaded is not None:
        model, loaded_card = loaded
        assert architecture_of(model) and isinstance(loaded_card, dict)


# --- run checkpoints -----------------------------------------------------------------------

@functools.cache
def real_checkpoint() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(folder, Checkpoint(round=2, model_state=build_model().state_dict(),
                                           ledgers={0: {"events": []}}, rounds=[{"round": 1}],
                                           settings={"rounds": 3}))
        return checkpoint_path(folder).read_bytes()


def checkpoint_with(field: str, value) -> bytes:
    """A real checkpoint with one field replaced by `value`, or removed when it is None."""
    state = torch.load(io.BytesIO(real_checkpoint()), weights_only=True)
    if value is None:
        state.pop(field, None)
    else:
        state[field] = value
    return torch_bytes(state)


field_values = st.one_of(st.integers(-3, 5), st.booleans(), st.text(max_size=4),
                         st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.sampled_from(["0", "1", "x", "w"]),
                                         st.one_of(st.just({}), st.builds(torch.zeros, st.just(2)),
                                                   st.integers()), max_size=2))
checkpoint_dicts = st.dictionaries(
    st.sampled_from(["round", "model_state", "ledgers", "rounds", "initial", "settings",
                     "notes"]), field_values, max_size=7)
checkpoint_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(checkpoint_with, st.sampled_from(["round", "model_state", "ledgers", "rounds",
                                                "initial", "settings", "notes"]),
              st.one_of(st.none(), field_values)),
    st.builds(real_checkpoint),
    st.builds(lambda keep: real_checkpoint()[:keep], st.integers(0, 5000)),
    st.builds(torch_bytes, st.one_of(checkpoint_dicts, st.lists(st.integers(), max_size=2),
                                     st.none())),
)


@FUZZ
@given(content=checkpoint_bytes)
def test_checkpoint_loads_or_fails_in_one_line(content):
    with tempfile.TemporaryDirectory() as folder:
        checkpoint_path(folder).write_bytes(content)
        loaded = read_or_user_error(load_checkpoint, folder)
    assert loaded is None or isinstance(loaded, Checkpoint)
