"""Suite-wide settings: commands the tests run keep their ONNX exports in a temporary cache,
never in the user's ~/.cache."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """XDG_CACHE_HOME for this process and every command it starts."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before
