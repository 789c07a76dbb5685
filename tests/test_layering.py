"""The dependency direction is runtime -> {kernels, export}, never back: `kernels/` and `export/` import
nothing of vre_fast outside their own package, so neither can grow a hidden import cycle with the runtime.

Imports are read from the source (ast), not by importing it: an import inside a function or under
`if TYPE_CHECKING:` counts as much as one at the top, since each is a dependency on the runtime's API.
The rule is an allow-list (a package may import only itself), which covers the runtime modules named in
issue 17 (`_cfg`, `_builder`, `representation`, `sources`, `execution`, `runner`, `streaming`) and any
module the runtime adds later.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it is installed as (pyproject's package-dir)
LEAF_PACKAGES = {"kernels": "vre_fast.kernels", "export": "vre_fast.export"}


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, the code of module `module`; relative
    imports are resolved against it, and `from .. import name` yields the module `name` it imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            if node.module is None:
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, f"{base}.{node.module}" if base else node.module))
    return found


def outside_imports(folder: str) -> list[str]:
    """'file:line imports module' for each vre_fast module a file of `folder` imports outside its own package."""
    own = LEAF_PACKAGES[folder]
    offences = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT / folder).with_suffix("")
        is_package = relative.name == "__init__"
        module = ".".join([own, *relative.parts[:-1]] + ([] if is_package else [relative.name]))
        for line, name in imported_modules(path.read_text(), module, is_package):
            inside = name == own or name.startswith(own + ".")
            if (name == "vre_fast" or name.startswith("vre_fast.")) and not inside:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return offences


@pytest.mark.parametrize("folder", sorted(LEAF_PACKAGES))
def test_leaf_packages_import_nothing_of_the_runtime(folder: str):
    assert list((ROOT / folder).glob("*.py")), f"{folder}/ has no modules: the check would pass vacuously"
    offences = outside_imports(folder)
    assert not offences, f"{folder}/ must not import the runtime (runtime -> {folder}, never back):\n" + \
        "\n".join(offences)


@pytest.mark.parametrize("statement, module", [
    ("from .._cfg import stable_hash", "vre_fast._cfg"),
    ("from ..representation import ComputeBatch", "vre_fast.representation"),
    ("from .. import errors", "vre_fast.errors"),
    ("import vre_fast.sources.synthetic", "vre_fast.sources.synthetic"),
    ("from vre_fast.execution import batch", "vre_fast.execution"),
    ("def f():\n    from ..streaming import graph", "vre_fast.streaming"),
    ("if TYPE_CHECKING:\n    from ..runner import run", "vre_fast.runner"),
])
def test_every_import_form_is_resolved(statement: str, module: str):
    """The check itself: relative (`..x`, `.. import x`), absolute, lazy and type-only imports are all seen."""
    assert module in {name for _, name in imported_modules(statement, "vre_fast.export.cache")}


def test_a_package_init_resolves_relative_imports_against_itself():
    assert imported_modules("from .cache import onnx_file", "vre_fast.export", is_package=True)[0] == \
        (1, "vre_fast.export.cache")
