"""User plugins: a Python file whose `@register_representation` classes join the registry, without editing the
package (VRE's `-I` / `-J` habit, done the vre-fast way: the file registers its classes as it is imported).

    vre-fast run video.mp4 -c cfg.yaml -o out --plugin my_types.py     # or `plugins: [my_types.py]` in cfg.yaml

A plugin that cannot be loaded (no such file, a syntax error, a failing import, an exception while it runs, a
type name that is already registered) is one ConfigError naming the file and, where known, the line; whatever it
registered before failing is taken out again, so a broken file leaves the registry as it was.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from ._registry import DuplicateTypeError, registered_types
from .errors import ConfigError

__all__ = ["load_plugins"]

logger = logging.getLogger("vre_fast")

_loaded: dict[Path, tuple[str, ...]] = {}  # resolved plugin path -> the types it registered (loaded once a process)


def load_plugins(paths: Iterable[str | Path]) -> list[str]:
    """Imports each plugin file once per process (the same file named twice, by the CLI and a config, is loaded
    once); returns the type names they registered."""
    from . import representations  # noqa: F401  (built-ins first: a plugin reusing their names is refused)

    names: list[str] = []
    for path in paths:
        names += _load_one(Path(path))
    return names


def _load_one(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        file, _, function = str(path).rpartition(":")
        if function and Path(file).is_file():  # VRE's -I / -J FILE.py:FUNCTION
            raise ConfigError(f"plugin {path}: give the file alone ({file}); a vre-fast plugin registers its types "
                              f"with @register_representation as it is imported, there is no function to call")
        raise ConfigError(f"plugin {path}: no such file" + (" (a folder)" if path.is_dir() else ""))
    if path.suffix != ".py":
        raise ConfigError(f"plugin {path}: expected a Python file (.py)")
    resolved = path.resolve()
    if resolved in _loaded:
        return _loaded[resolved]
    module_name = f"vre_fast_plugin_{resolved.stem}_{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    registry = registered_types()
    before = dict(registry)
    sys.modules[module_name] = module  # dataclasses and typing.get_type_hints look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        registry.clear()
        registry.update(before)
        del sys.modules[module_name]
        if isinstance(exc, Exception):
            raise ConfigError(_describe_failure(path, resolved, exc)) from None
        raise
    added = tuple(sorted(set(registry) - set(before)))
    if not added:
        logger.warning("plugin %s registered no representation type (no @register_representation class)", path)
    _loaded[resolved] = added
    return added


def _describe_failure(path: Path, resolved: Path, exc: Exception) -> str:
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == resolved:
        return f"plugin {path}:{exc.lineno}: syntax error: {exc.msg}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == resolved]
    where = f"{path}:{lines[-1]}" if lines else str(path)
    if isinstance(exc, DuplicateTypeError):
        return (f"plugin {where}: type '{exc.type_name}' is already registered (by {exc.existing}); give the "
                f"plugin's type another name")
    if isinstance(exc, ImportError):
        return f"plugin {where}: an import failed: {exc}"
    return f"plugin {where}: failed while loading: {type(exc).__name__}: {exc}"
