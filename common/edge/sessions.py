"""ONNX Runtime sessions for the device: the frame model and the temporal model's streaming
step, with numpy in and out. Imports neither torch nor Opacus, so a device that only runs
inference starts without them.

Sessions use one intra-op thread by default: a face batch of a meeting is small, and the
rest of the pipeline (decoding, detection) wants the other cores.
"""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from emofl.common.edge.files import (
    FRAME_INPUTS,
    FRAME_OUTPUTS,
    TEMPORAL_INPUTS,
    TEMPORAL_OUTPUTS,
    EdgeModelError,
)

DEFAULT_THREADS = 1


def open_session(path: str | Path, inputs: tuple[str, ...], outputs: tuple[str, ...],
                 threads: int = DEFAULT_THREADS) -> ort.InferenceSession:
    """A CPU session of the graph at `path`; EdgeModelError naming the file when ONNX Runtime
    cannot load it or its inputs and outputs are not `inputs` and `outputs`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ONNX Runtime's own warnings would break one-line output
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime raises its own types for unreadable graphs
        reason = " ".join(str(err).split())[:200]
        raise EdgeModelError(f"ONNX Runtime cannot load {path}: {reason}") from None
    names = (tuple(i.name for i in session.get_inputs()),
             tuple(o.name for o in session.get_outputs()))
    if names != (inputs, outputs):
        raise EdgeModelError(f"ONNX file {path} maps {names[0]} to {names[1]}, not "
                             f"{inputs} to {outputs}: it is not this kind of model")
    return session


class OnnxFrameModel:
    """The frame model on ONNX Runtime: preprocessed faces (N, 1, 48, 48) float32 to
    backbone features (N, d) or logits (N, 7), both float32."""

    def __init__(self, path: str | Path, backbone_sha256: str | None = None,
                 threads: int = DEFAULT_THREADS) -> None:
        self.path = Path(path)
        self.backbone_sha256 = backbone_sha256
        self._session = open_session(path, FRAME_INPUTS, FRAME_OUTPUTS, threads)

    def _run(self, output: str, faces: np.ndarray) -> np.ndarray:
        feed = {FRAME_INPUTS[0]: np.ascontiguousarray(faces, dtype=np.float32)}
        return self._session.run([output], feed)[0]

    def features(self, faces: np.ndarray) -> np.ndarray:
        return self._run(FRAME_OUTPUTS[0], faces)

    def logits(self, faces: np.ndarray) -> np.ndarray:
        return self._run(FRAME_OUTPUTS[1], faces)


class OnnxTemporalStep:
    """The temporal model's graph: probabilities (S, T, 7) of S streams and their LSTM states
    (h, c), each (1, S, hidden), to logits (S, T, 7) and the states after the last step."""

    def __init__(self, path: str | Path, threads: int = DEFAULT_THREADS) -> None:
        self._session = open_session(path, TEMPORAL_INPUTS, TEMPORAL_OUTPUTS, threads)
        self.hidden_size = int(self._session.get_inputs()[1].shape[2])

    def run(self, probs: np.ndarray, h: np.ndarray, c: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feed = dict(zip(TEMPORAL_INPUTS, (probs, h, c), strict=True))
        logits, h, c = self._session.run(list(TEMPORAL_OUTPUTS),
                                         {k: v.astype(np.float32) for k, v in feed.items()})
        return logits, h, c


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, in float64 for the probabilities a user reads."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
