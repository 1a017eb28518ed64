"""Reading one face image file of a data set: bounded in memory, quiet on failure.

An image decoder allocates what the file's header declares: a 0.4 MB PNG that declares
20000x20000 pixels of zeros decodes into 400 MB. So the header is read first, and an image
larger than any face photo needs (`MAX_IMAGE_PIXELS`), a file larger than `MAX_IMAGE_BYTES`,
or content that is not PNG, JPEG or WebP (whatever the file is named) is refused before
decoding. A file that fails to decode makes OpenCV log and libpng print to the process's
stderr, beside the one-line error that reports it; that output is kept off stderr.
"""

import contextlib
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emofl.common.data.face_dataset import IMAGE_SIZE, DataError

# A 64-megapixel photo; decoding one to grayscale takes about twice that in bytes.
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_IMAGE_BYTES = 32 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers, which carry the image's size (C4, C8 and CC are not frames).
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def read_face(file: Path) -> np.ndarray:
    """One image file as a 48x48 uint8 grayscale face; DataError naming the file when it
    cannot be read, is not a PNG, JPEG or WebP image, or is larger than a face image may be."""
    size = file.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise DataError(f"image file is larger than {MAX_IMAGE_BYTES >> 20} MiB: {file}")
    dimensions = image_dimensions(file.read_bytes())
    if dimensions is None:
        raise DataError(f"cannot read image: {file} (not a PNG, JPEG or WebP image)")
    width, height = dimensions
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"image is {width}x{height} pixels, more than a face image may have "
                        f"({MAX_IMAGE_PIXELS} pixels): {file}")
    with _decoder_output_hidden():
        image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise DataError(f"cannot read image: {file}")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) that a PNG, JPEG or WebP file's header declares; None when `data` is
    none of these or its header is cut short."""
    try:
        if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_dimensions(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_dimensions(data)
    except struct.error:  # the header ends before the size
        return None
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the segments from the start."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:  # the end of the image, before any frame
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            at += 2
            continue
        if marker in JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    """The size in a WebP file's first chunk: extended (VP8X), lossless (VP8L) or lossy (VP8)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        width, height = (int.from_bytes(data[at:at + 3], "little") + 1 for at in (24, 27))
        return (width, height) if len(data) >= 30 else None
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


@contextlib.contextmanager
def _decoder_output_hidden() -> Iterator[None]:
    """OpenCV's log and libpng's messages off the process's stderr (file descriptor 2, below
    Python's sys.stderr), for the duration of one decode."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        cv2.utils.logging.setLogLevel(level)
