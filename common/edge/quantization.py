"""int8 frame models by ONNX Runtime's static quantization, calibrated on given faces.

Weights are quantized per channel to int8 and activations to uint8 with ranges from the
calibration faces (min/max over them), in the QDQ format ONNX Runtime fuses into integer
kernels. Which faces calibrate is the caller's decision (`calibration.py`: public faces only):
the activation ranges are a function of those faces and ship with the model.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from emofl.common.edge.files import FRAME_INPUTS

CALIBRATION_BATCH = 32


class FacesReader(CalibrationDataReader):
    """Preprocessed faces (N, 1, 48, 48) float32, fed to the calibrator in batches."""

    def __init__(self, faces: np.ndarray, batch: int = CALIBRATION_BATCH) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [faces[i:i + batch] for i in range(0, len(faces), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {FRAME_INPUTS[0]: np.ascontiguousarray(batch)}


def quantize_frame_model(fp32_path: str | Path, int8_path: str | Path,
                         faces: np.ndarray) -> None:
    """Write the int8 version of the fp32 frame graph at `fp32_path`, its activation ranges
    calibrated on preprocessed `faces` (N, 1, 48, 48)."""
    if len(faces) == 0:
        raise ValueError("calibration needs at least one face")
    quantize_static(str(fp32_path), str(int8_path), FacesReader(faces.astype(np.float32)),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
