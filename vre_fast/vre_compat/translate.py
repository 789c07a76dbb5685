"""A VRE 1.18.6 config (its YAML as VRE's `build_representations_from_cfg` reads it) -> a vre-fast config dict.

VRE's layout: `default_compute_parameters` (batch_size), `default_io_parameters` (binary_format, image_format,
compress, output_size, output_dtype), `default_learned_parameters` (device), and per representation `type`,
`dependencies`, `parameters` and the same three sections, which override the defaults key by key. Types and
parameters go through the table in `table.py`. Everything that cannot be mapped is collected and raised as
one ConfigError listing every item, so a user fixes a config in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .table import VRE_TYPES, Ignored, Lacking, Only, Unsupported, Values, VreType

__all__ = ["VRE_KEYS", "looks_like_vre", "resolve_interpolations", "translate_vre_config", "vre_storage"]

_DEFAULTS = ("default_compute_parameters", "default_io_parameters", "default_learned_parameters")
VRE_KEYS = {*_DEFAULTS, "representations"}
_SECTIONS = {"compute_parameters": {"batch_size"},
             "io_parameters": {"binary_format", "image_format", "compress", "output_size", "output_dtype"},
             "learned_parameters": {"device"}}
_REPR_KEYS = {"type", "dependencies", "parameters", *_SECTIONS}
_BINARY = ("npz", "npy", "not-set")
_IMAGE = ("png", "jpg", "not-set")
_DTYPES = ("float16", "float32", "uint8", "uint16")


def looks_like_vre(raw: Any) -> bool:
    """A VRE config by its keys: a `default_*_parameters` section, a per-representation `*_parameters` section,
    or a VRE type name (`group/name`; vre-fast's have no slash)."""
    if not isinstance(raw, Mapping):
        return False
    if any(k in raw for k in _DEFAULTS):
        return True
    reprs = raw.get("representations")
    return isinstance(reprs, Mapping) and any(
        isinstance(body, Mapping) and (any(k in body for k in _SECTIONS) or "/" in str(body.get("type", "")))
        for body in reprs.values())


def resolve_interpolations(raw: Any, source: str) -> Any:
    """VRE's `${oc.env:VAR,default}` / `${oc.decode:...}` resolved with OmegaConf (what VRE's syntax is taken
    from) on the already safely loaded YAML: OmegaConf only sees plain dicts, lists and scalars."""
    if "${" not in repr(raw):
        return raw
    try:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        raise ConfigError(f"{source}: uses ${{...}} interpolations (VRE's OmegaConf syntax); install omegaconf "
                          f"(pip install omegaconf)") from None
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        message = " ".join(str(exc).split("\n")[0].split())
        raise ConfigError(f"{source}: {key + ': ' if key else ''}{message}") from None
    return _as_vre_reads(raw, resolved)


def _as_vre_reads(raw: Any, resolved: Any) -> Any:
    """VRE substitutes `${...}` in the text before the YAML is parsed, so `batch_size: ${oc.env:BS,4}` is the
    integer 4 there, and `[24, 32]` from a variable a list; OmegaConf's `oc.env` gives strings. A value that held
    an interpolation and resolved to a string is therefore read as YAML, as VRE reads it."""
    if isinstance(raw, Mapping) and isinstance(resolved, Mapping):
        return {k: _as_vre_reads(raw.get(k), v) for k, v in resolved.items()}
    if isinstance(raw, list) and isinstance(resolved, list) and len(raw) == len(resolved):
        return [_as_vre_reads(r, v) for r, v in zip(raw, resolved)]
    if isinstance(raw, str) and "${" in raw and isinstance(resolved, str):
        import yaml

        try:
            return yaml.safe_load(resolved)
        except yaml.YAMLError:
            return resolved
    return resolved


def translate_vre_config(raw: Any, source: str = "<dict>") -> dict[str, Any]:
    """The vre-fast config (a plain dict, YAML-able) equivalent to VRE config `raw`, or one ConfigError listing
    every item that has no vre-fast equivalent."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a VRE config must be a mapping with a 'representations' key")
    for key in sorted(set(raw) - VRE_KEYS, key=str):
        problems.append(f"{key}: not a VRE config key (VRE's: {sorted(VRE_KEYS)})")
    defaults = {}
    for section in _DEFAULTS:
        value = raw.get(section) or {}
        if not isinstance(value, Mapping):
            problems.append(f"{section}: expected a mapping")
            value = {}
        defaults[section.removeprefix("default_")] = dict(value)
    reprs = raw.get("representations")
    if not isinstance(reprs, Mapping) or not reprs:
        raise ConfigError(f"{source}: 'representations' must be a non-empty mapping of name -> definition")
    for section, values in defaults.items():
        problems += [f"default_{section}.{k}: not a VRE {section.split('_')[0]} parameter (VRE's: "
                     f"{sorted(_SECTIONS[section])})" for k in sorted(set(values) - _SECTIONS[section])]
    mapped: dict[str, Any] = {}
    for name, body in reprs.items():
        one = _translate_one(str(name), body, defaults, reprs, problems)
        if one is not None:
            mapped[str(name)] = one
    problems += _io_problems("default_io_parameters", defaults["io_parameters"])
    if problems:
        raise ConfigError(f"{source}: {len(problems)} item(s) of this VRE config cannot be mapped onto vre-fast: "
                          + "; ".join(problems))
    out: dict[str, Any] = {k: v for k, v in vre_storage(defaults["io_parameters"]).items() if v is not None}
    if "batch_size" in defaults["compute_parameters"]:
        out["batch_size"] = defaults["compute_parameters"]["batch_size"]
    return {**out, "representations": mapped}


def vre_storage(io: Mapping[str, Any]) -> dict[str, Any]:
    """VRE's storage settings as vre-fast's output_formats / compress / output_size, unset ones as VRE's
    IORepresentation takes them (no format: nothing stored; compress: True)."""
    formats = [f for f in (io.get("binary_format"), io.get("image_format")) if f not in (None, "not-set")]
    size = io.get("output_size")
    return {"output_formats": formats, "compress": bool(io.get("compress", True)),
            "output_size": None if size is None else list(size)}


def _translate_one(name: str, body: Any, defaults: dict[str, dict[str, Any]], reprs: Mapping[str, Any],
                   problems: list[str]) -> dict[str, Any] | None:
    key = f"representations.{name}"
    if not isinstance(body, Mapping):
        problems.append(f"{key}: expected a mapping with 'type', 'dependencies' and 'parameters'")
        return None
    problems += [f"{key}.{k}: not a VRE representation key (VRE's: {sorted(_REPR_KEYS)})"
                 for k in sorted(set(body) - _REPR_KEYS, key=str)]
    vre_type = body.get("type")
    entry = VRE_TYPES.get(vre_type) if isinstance(vre_type, str) else None
    if entry is None or entry.ours is None:
        why = entry.why if entry is not None else f"not a VRE 1.18.6 type (VRE's: {', '.join(sorted(VRE_TYPES))})"
        problems.append(f"{key}.type: '{vre_type}' ({why})")
        return None
    own, merged = {}, {}
    for section, allowed in _SECTIONS.items():
        own[section] = body.get(section) or {}
        if not isinstance(own[section], Mapping):
            problems.append(f"{key}.{section}: expected a mapping")
            own[section] = {}
        problems += [f"{key}.{section}.{k}: not a VRE {section.split('_')[0]} parameter (VRE's: {sorted(allowed)})"
                     for k in sorted(set(own[section]) - allowed, key=str)]
        merged[section] = {**defaults[section], **own[section]}
    out: dict[str, Any] = {"type": entry.ours}
    deps = _dependencies(key, entry, body.get("dependencies"), reprs, problems)
    if deps:
        out["dependencies"] = deps
    params = _parameters(key, entry, body.get("parameters") or {}, problems)
    if params:
        out["parameters"] = params
    # storage: the representation's own VRE settings over the defaults (the global section), key by key as in VRE
    io = own["io_parameters"]
    problems += _io_problems(f"{key}.io_parameters", io)
    storage = vre_storage(merged["io_parameters"])
    if "binary_format" in io or "image_format" in io:
        out["output_formats"] = storage["output_formats"]
    if "compress" in io:
        out["compress"] = storage["compress"]
    if "output_size" in io:
        out["output_size"] = storage["output_size"]
    dtype = _output_dtype(key, entry, merged["io_parameters"].get("output_dtype"), problems)
    if dtype is not None:
        out["output_dtype"] = dtype
    if "batch_size" in own["compute_parameters"]:
        out["batch_size"] = own["compute_parameters"]["batch_size"]
    if "device" in merged["learned_parameters"] and _is_learned(entry.ours):
        out["device"] = merged["learned_parameters"]["device"]  # VRE gives a device to learned ones only
    return out


def _dependencies(key: str, entry: VreType, deps: Any, reprs: Mapping[str, Any], problems: list[str]) -> list[str]:
    if deps is None:
        deps = []
    if not isinstance(deps, (list, tuple)) or not all(isinstance(d, str) for d in deps):
        problems.append(f"{key}.dependencies: expected a list of representation names, got {deps!r}")
        return []
    if entry.deps == "rgb":  # VRE passes its RGB representation; vre-fast reads the frames themselves
        wrong = [d for d in deps if not (isinstance(reprs.get(d), Mapping) and reprs[d].get("type") == "color/rgb")]
        if len(deps) != 1 or wrong:
            problems.append(f"{key}.dependencies: VRE's '{_vre_name(entry)}' takes exactly one color/rgb "
                            f"representation, got {list(deps)}")
        return []
    return list(deps)


def _parameters(key: str, entry: VreType, params: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        problems.append(f"{key}.parameters: expected a mapping")
        return {}
    out = dict(entry.set)
    for vre_name, value in params.items():
        where = f"{key}.parameters.{vre_name}"
        rule = entry.params.get(vre_name)
        if rule is None:
            known = sorted(entry.params) or "none"
            problems.append(f"{where}: not a parameter vre-fast can map for '{_vre_name(entry)}' (mapped: {known})")
        elif isinstance(rule, str):
            out[rule] = value
        elif isinstance(rule, Ignored):
            continue
        elif isinstance(rule, Only):
            if value != rule.value or type(value) is not type(rule.value):
                problems.append(f"{where}: {value!r} is not supported, only {rule.value!r}"
                                + (f" ({rule.why})" if rule.why else ""))
        elif isinstance(rule, Unsupported):
            problems.append(f"{where}: {value!r} has no vre-fast equivalent ({rule.why})")
        elif isinstance(rule, Values):
            mapped = _lookup(rule.values, value)
            if mapped is None and rule.other is not None:
                out[rule.other] = value
            elif mapped is None:
                problems.append(f"{where}: {value!r} has no vre-fast equivalent (mapped: "
                                f"{[v for v, ours in rule.values.items() if not isinstance(ours, Lacking)]})")
            elif isinstance(mapped, Lacking):
                problems.append(f"{where}: {value!r} ({mapped.why})")
            else:
                out[rule.ours] = mapped
    return out


def _lookup(values: dict[Any, Any], value: Any) -> Any:
    """`values[value]`, with True/False/1/0 kept apart (YAML booleans are not integers here)."""
    for vre_value, ours in values.items():
        if vre_value == value and type(vre_value) is type(value):
            return ours
    return None


def _io_problems(where: str, io: Mapping[str, Any]) -> list[str]:
    problems = []
    if io.get("binary_format") not in (None, *_BINARY):
        problems.append(f"{where}.binary_format: {io['binary_format']!r} (VRE's: {list(_BINARY)})")
    if io.get("image_format") not in (None, *_IMAGE):
        problems.append(f"{where}.image_format: {io['image_format']!r} (VRE's: {list(_IMAGE)})")
    if not isinstance(io.get("compress", True), bool):
        problems.append(f"{where}.compress: expected true or false, got {io['compress']!r}")
    return problems


def _output_dtype(key: str, entry: VreType, dtype: Any, problems: list[str]) -> str | None:
    """The stored dtype: VRE's (float32 unless told) where vre-fast stores floats too, else vre-fast's own."""
    where = f"{key}.io_parameters.output_dtype"
    if dtype is not None and str(dtype) not in _DTYPES:
        problems.append(f"{where}: {dtype!r} (vre-fast stores {list(_DTYPES)})")
        return None
    if entry.dtype == "vre":
        return str(dtype or "float32")
    if dtype is not None and not str(dtype).startswith("uint"):
        problems.append(f"{where}: {dtype!r} (vre-fast stores '{entry.ours}' as integers)")
        return None
    return None if dtype is None else str(dtype)


def _is_learned(our_type: str) -> bool:
    from .._registry import get_representation_class
    from ..representations._learned import LearnedParams

    return issubclass(get_representation_class(our_type).Params, LearnedParams)


def _vre_name(entry: VreType) -> str:
    return next(k for k, v in VRE_TYPES.items() if v is entry)
