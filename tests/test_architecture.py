"""The code's shape, as docs/architecture.md ("Dependency rules") states it: which package may
import which, every package documented, no module too long to read, and no code citing a
file outside the repository."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package it is installed as (pyproject.toml's package-dir mapping).
CODE_FOLDERS = {
    "common": "emofl.common",
    "client": "emofl.client",
    "server": "emofl.server",
    "simulations": "emofl.simulations",
    "emofl": "emofl",
}
# Layer -> the layers it must never import. "cli" is everything in emofl/ (the command).
FORBIDDEN_LAYERS = {
    "common": ("client", "server", "simulations", "cli"),
    "client": ("server", "simulations", "cli"),
    "server": ("client", "simulations", "cli"),
    "simulations": (),
    "cli": (),
}
MAX_MODULE_LINES = 300
GENERATED_MODULES = ("common/protocol/head_service_pb2.py",
                     "common/protocol/head_service_pb2_grpc.py")
OUTSIDE_DOCUMENT = b"DESIGN.md"
DYNAMIC_IMPORTERS = ("import_module", "__import__")


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name, or None for a module outside the project (and for
    the bare `emofl` package, which holds nothing but its docstring)."""
    parts = module.split(".")
    if parts[0] != "emofl" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in ("common", "client", "server", "simulations") else "cli"


def module_name(path: Path) -> str:
    """The dotted name a source file `ROOT/<folder>/...` is installed as."""
    relative = path.relative_to(ROOT)
    parts = [CODE_FOLDERS[relative.parts[0]], *relative.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(module: str, source: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import in `source`, at module level or inside functions:
    `import a.b`, `from a.b import c` (as `a.b`; `from emofl import cli` as `emofl.cli`),
    relative imports resolved against `module`, and `importlib.import_module("a.b")`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, base if layer_of(base) else f"{base}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in DYNAMIC_IMPORTERS):
            yield node.lineno, node.args[0].value


def import_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """One message per import in `source` that breaks a dependency rule for `module`."""
    forbidden = FORBIDDEN_LAYERS.get(layer_of(module) or "", ())
    messages = []
    for line, name in imported_names(module, source, is_package):
        target = layer_of(name)
        if target in forbidden:
            messages.append(f"{module} (line {line}) imports {name}: emofl.{layer_of(module)} "
                            f"must not import {' / '.join(_layer_names(forbidden))}")
    return sorted(set(messages))


def _layer_names(layers: tuple[str, ...]) -> list[str]:
    return ["the CLI (emofl.cli, emofl.commands)" if layer == "cli" else f"emofl.{layer}"
            for layer in layers]


def source_files() -> list[Path]:
    return sorted(p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def package_dirs() -> list[Path]:
    """Every folder that holds Python code, itself or below it."""
    return sorted({parent for path in source_files() for parent in path.parents
                   if ROOT in parent.parents})


# The rules, on the project's own code.


def test_no_module_imports_across_a_forbidden_boundary() -> None:
    violations = [message for path in source_files()
                  for message in import_violations(module_name(path), path.read_text(),
                                                   path.name == "__init__.py")]
    assert not violations, "dependency rules broken:\n" + "\n".join(violations)


def test_every_package_has_an_init_with_a_docstring() -> None:
    problems = []
    for folder in package_dirs():
        init = folder / "__init__.py"
        if not init.exists():
            problems.append(f"{folder.relative_to(ROOT)}/ has no __init__.py")
        elif not ast.get_docstring(ast.parse(init.read_text())):
            problems.append(f"{init.relative_to(ROOT)} has no docstring saying what it holds")
    assert not problems, "\n".join(problems)


def test_no_module_is_over_300_lines() -> None:
    long = [f"{path.relative_to(ROOT)}: {lines} lines" for path in source_files()
            if str(path.relative_to(ROOT)) not in GENERATED_MODULES
            and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def test_no_code_cites_a_document_outside_the_repository() -> None:
    citing = [str(path.relative_to(ROOT)) for folder in CODE_FOLDERS
              for path in sorted((ROOT / folder).rglob("*"))
              if path.is_file() and "__pycache__" not in path.parts
              and OUTSIDE_DOCUMENT in path.read_bytes()]
    assert not citing, ("these files cite DESIGN.md, which is outside the repository; cite "
                        "docs/architecture.md instead:\n" + "\n".join(citing))


# The checker itself: it must see what it is meant to forbid.


@pytest.mark.parametrize(("module", "source", "is_package", "expected"), [
    ("emofl.common.data.x", "def f():\n    from emofl.server.head import service\n", False,
     ["emofl.common.data.x (line 2) imports emofl.server.head"]),
    ("emofl.common.model", "import emofl.simulations.training.ship_model\n", True,
     ["emofl.common.model (line 1) imports emofl.simulations.training.ship_model"]),
    ("emofl.common.errors", "from emofl import cli\n", False,
     ["emofl.common.errors (line 1) imports emofl.cli"]),
    ("emofl.client.inference.y", "from ...server.head.sessions import SessionStore\n", False,
     ["emofl.client.inference.y (line 1) imports emofl.server.head.sessions"]),
    ("emofl.server.head", "from ...client import federated\n", True,
     ["emofl.server.head (line 1) imports emofl.client"]),
    ("emofl.server.federated.z", "import importlib\nimportlib.import_module('emofl.client.x')\n",
     False, ["emofl.server.federated.z (line 2) imports emofl.client.x"]),
    ("emofl.client.meeting.w", "from emofl.simulations.gallery.video import write\n", False,
     ["emofl.client.meeting.w (line 1) imports emofl.simulations.gallery.video"]),
])
def test_checker_reports_each_forbidden_import(module, source, is_package, expected) -> None:
    violations = import_violations(module, source, is_package)
    assert [v.partition(":")[0] for v in violations] == expected


@pytest.mark.parametrize(("module", "source"), [
    ("emofl.common.data.x", "from emofl.common.data.classes import CLASSES\nimport torch\n"),
    ("emofl.client.federated.y", "from emofl.common.protocol import messages\n"),
    ("emofl.server.head.z", "from .sessions import SessionStore\n"),
    ("emofl.simulations.federation.runner",
     "from emofl.server.federated import server_app\nfrom emofl.client.federated import keys\n"),
    ("emofl.cli", "def run():\n    from emofl.simulations.federation import runner\n"),
])
def test_checker_allows_what_the_rules_allow(module, source) -> None:
    assert import_violations(module, source) == []


def test_checker_message_names_module_import_and_rule() -> None:
    [message] = import_violations("emofl.common.crypto.k", "import emofl.client.federated.keys\n")
    assert message == ("emofl.common.crypto.k (line 1) imports emofl.client.federated.keys: "
                       "emofl.common must not import emofl.client / emofl.server / "
                       "emofl.simulations / the CLI (emofl.cli, emofl.commands)")


def test_module_names_follow_the_package_dir_mapping() -> None:
    assert module_name(ROOT / "common" / "data" / "classes.py") == "emofl.common.data.classes"
    assert module_name(ROOT / "server" / "head" / "__init__.py") == "emofl.server.head"
    assert module_name(ROOT / "emofl" / "cli.py") == "emofl.cli"
