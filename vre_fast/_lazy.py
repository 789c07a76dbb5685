"""PEP 562 lazy exports: a package's public names imported on first use, so a command that needs one
corner of the package (`--help`, `vre-fast info`) does not pay for numba, OpenCV or torch up front."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose `exports` map each public name to the submodule
    (relative, e.g. ".runner") defining it; a name is imported once, then kept in `namespace`."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted([*namespace, *exports])

    return __getattr__, __dir__
