"""Running the `emofl` command in tests, and checking its one-line user errors."""

import subprocess
import sys
from pathlib import Path

from emofl.client.inference.runtime_models import export_for
from emofl.common.model.model_cards import SHIPPED_TEMPORAL_MODEL


def run_emofl(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emofl", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def main_in_process(capsys, *args: str) -> tuple[int, list[str]]:
    """Run `emofl ARGS` in this process (so tests can monkeypatch it): its exit status and the
    lines it wrote on stderr."""
    from emofl.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err.strip().splitlines()


def exported(model_path: str) -> str:
    """`model_path`, with its ONNX export made now (as `emofl classify` would on first use), so
    that a command's stderr holds only what the test is about."""
    export_for(Path(model_path), SHIPPED_TEMPORAL_MODEL, lambda note: None)
    return model_path
