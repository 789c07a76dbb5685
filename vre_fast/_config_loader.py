"""YAML -> RunCfg. Every rejection names the offending key path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ._cfg import OUTPUT_DTYPES, OUTPUT_FORMATS, GroupCfg, RepresentationCfg, RunCfg, stable_hash
from .errors import ConfigError
from .store.npz import COMPRESS_LEVELS, DEFAULT_COMPRESS_LEVEL

__all__ = ["CONFIG_FORMATS", "load_config", "parse_config", "parse_output_formats", "read_config_file"]

CONFIG_FORMATS = ("auto", "vre-fast", "vre")  # auto: a VRE 1.18.6 config is told by its keys (vre_compat)

_NAME_CHARS = re.compile(r"[-_()]")
_GLOBAL_KEYS = {"batch_size", "output_formats", "compress", "device", "output_size", "jpeg_quality",
                "representations", "plugins", "groups"}
_REPR_KEYS = {"type", "dependencies", "parameters", "batch_size", "output_formats", "compress", "device",
              "output_size", "output_dtype", "jpeg_quality"}


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None, config_format: str = "auto") -> RunCfg:
    """Read a YAML config safely; `overrides` (from the CLI) replace the global section's values. A VRE 1.18.6
    config (`config_format="vre"`, or told by its keys with "auto") is mapped onto vre-fast's first."""
    raw = read_config_file(path, config_format)
    return parse_config(raw, overrides=overrides, source=str(path), base=Path(path).parent)


def read_config_file(path: str | Path, config_format: str = "auto") -> Any:
    """The config file as a vre-fast config dict (a VRE one translated), not yet validated."""
    if config_format not in CONFIG_FORMATS:
        raise ConfigError(f"--config-format {config_format!r}: expected one of {list(CONFIG_FORMATS)}")
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        raw = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path} is a directory; give a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); is it a YAML file?") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {_yaml_error_line(path, exc)}") from None
    if config_format == "vre" or (config_format == "auto" and _looks_like_vre(raw)):
        from .vre_compat import resolve_interpolations, translate_vre_config

        raw = translate_vre_config(resolve_interpolations(raw, str(path)), str(path))
    return raw


def _looks_like_vre(raw: Any) -> bool:
    from .vre_compat import looks_like_vre

    return looks_like_vre(raw)


def _yaml_error_line(path: Path, exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: file:line:column: what."""
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    if mark is None:
        return f"{path} is not valid YAML: {' '.join(str(exc).split())}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {what or exc}"


class _StrictSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: keys given after it override it
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} is given twice (first at line {seen[key].start_mark.line + 1})", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse_config(raw: Any, overrides: Mapping[str, Any] | None = None, source: str = "<dict>",
                 base: Path | None = None) -> RunCfg:
    """`base`: the folder that `plugins:` paths are relative to (the config file's; None: the current one)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping with a 'representations' key")
    raw = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    unknown = set(raw) - _GLOBAL_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; known: {sorted(_GLOBAL_KEYS)}")
    reprs = raw.get("representations")
    if not isinstance(reprs, Mapping) or not reprs:
        raise ConfigError(f"{source}: 'representations' must be a non-empty mapping of name -> definition")

    defaults = RepresentationCfg(name="", type="")
    defaults = _apply_common(defaults, raw, "")
    cfgs = []
    for name, body in reprs.items():
        key = f"representations.{name}"
        if not isinstance(name, str) or not _NAME_CHARS.sub("", name).isalnum() or name.startswith((".", "(")):
            raise ConfigError(f"{key}: a name must be letters, digits, '_', '-' or parentheses (VRE's "
                              f"'normals_svd(depth_dpt)')")
        if not isinstance(body, Mapping):
            raise ConfigError(f"{key}: expected a mapping with at least 'type'")
        unknown = set(body) - _REPR_KEYS
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {sorted(unknown)}; known: {sorted(_REPR_KEYS)}")
        if not isinstance(body.get("type"), str):
            raise ConfigError(f"{key}.type: missing; every representation needs a 'type'")
        params = body.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{key}.parameters: expected a mapping")
        cfg = replace(defaults, name=name, type=body["type"], parameters=dict(params),
                      dependencies=_parse_dependencies(body.get("dependencies"), key))
        if "output_dtype" in body:
            if body["output_dtype"] not in OUTPUT_DTYPES:
                raise ConfigError(f"{key}.output_dtype: expected one of {list(OUTPUT_DTYPES)}, "
                                  f"got {body['output_dtype']!r}")
            cfg = replace(cfg, output_dtype=body["output_dtype"])
        cfgs.append(_apply_common(cfg, body, f"{key}."))
    return RunCfg(representations=tuple(cfgs), config_hash=stable_hash(raw), source=source,
                  plugins=_parse_plugins(raw.get("plugins"), base), groups=_parse_groups(raw.get("groups")))


def _parse_groups(value: Any) -> tuple[GroupCfg, ...]:
    """`groups: {name: {device: cuda:1, representations: [a, b]}}`; only the shape is checked here, the names
    against the graph by `scale.groups.resolve_groups`."""
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise ConfigError("groups: expected a mapping of group name -> {device: ..., representations: [...]}")
    groups = []
    for name, body in value.items():
        key = f"groups.{name}"
        if not isinstance(body, Mapping) or set(body) - {"device", "representations"}:
            raise ConfigError(f"{key}: expected a mapping with 'representations' (a list of names) and optionally "
                              f"'device'")
        names = body.get("representations")
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{key}.representations: expected a non-empty list of representation names")
        device = body.get("device")
        if device is not None and not isinstance(device, str):
            raise ConfigError(f"{key}.device: expected a device name such as cpu or cuda:1, got {device!r}")
        groups.append(GroupCfg(name=str(name), representations=tuple(names), device=device))
    return tuple(groups)


def _parse_plugins(value: Any, base: Path | None) -> tuple[str, ...]:
    """`plugins: [file.py, ...]`, each relative to the config file's folder unless absolute."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"plugins: expected a list of Python files, got {value!r}")
    return tuple(str(base / v) if base is not None else v for v in value)


def parse_output_formats(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: expected a list of formats from {OUTPUT_FORMATS}")
    bad = [v for v in value if v not in OUTPUT_FORMATS]
    if bad:
        raise ConfigError(f"{key}: unknown format(s) {bad}; known: {list(OUTPUT_FORMATS)}")
    return tuple(dict.fromkeys(value))


def _parse_dependencies(value: Any, key: str) -> tuple[str, ...] | dict[str, str]:
    if value is None:
        return ()
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key}.dependencies: expected a list of representation names or an "
                      f"{{input: name}} mapping, got {value!r}")


def _apply_common(cfg: RepresentationCfg, body: Mapping[str, Any], prefix: str) -> RepresentationCfg:
    """Settings shared by the global section and each representation (the latter win)."""
    changes: dict[str, Any] = {}
    if "batch_size" in body:
        bs = body["batch_size"]
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ConfigError(f"{prefix}batch_size: expected a positive integer, got {bs!r}")
        changes["batch_size"] = bs
    if "output_formats" in body:
        changes["output_formats"] = parse_output_formats(body["output_formats"], f"{prefix}output_formats")
    if "jpeg_quality" in body:
        quality = body["jpeg_quality"]
        if not (isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100):
            raise ConfigError(f"{prefix}jpeg_quality: expected an integer 1..100, got {quality!r}")
        changes["jpeg_quality"] = quality
    if "compress" in body:
        level = body["compress"]
        if isinstance(level, bool):
            level = DEFAULT_COMPRESS_LEVEL if level else 0
        if not (isinstance(level, int) and (level == 0 or level in COMPRESS_LEVELS)):
            raise ConfigError(f"{prefix}compress: expected true (level {DEFAULT_COMPRESS_LEVEL}), false or a level "
                              f"1 (fastest) .. 9 (smallest), got {body['compress']!r}")
        changes["compress"] = level
    if "device" in body:
        device = body["device"]
        if not (isinstance(device, str) and (device in ("cpu", "cuda") or
                                             (device.startswith("cuda:") and device[5:].isdigit()))):
            raise ConfigError(f"{prefix}device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        changes["device"] = device
    if "output_size" in body:
        size = body["output_size"]
        if size is not None and not (isinstance(size, (list, tuple)) and len(size) == 2
                                     and all(isinstance(v, int) and v > 0 for v in size)):
            raise ConfigError(f"{prefix}output_size: expected [height, width] in pixels or null, got {size!r}")
        changes["output_size"] = None if size is None else (int(size[0]), int(size[1]))
    return replace(cfg, **changes)
