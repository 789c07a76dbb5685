"""RunCfg -> instantiated, validated graph. Every failure here happens before a frame is decoded."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._cfg import RepresentationCfg, RunCfg
from ._registry import get_representation_class
from .errors import ConfigError
from .representation import Representation
from .toposort import topological_order

__all__ = ["GraphNode", "RepresentationGraph", "build_graph", "build_params"]


@dataclass(frozen=True)
class GraphNode:
    cfg: RepresentationCfg
    representation: Representation
    inputs: dict[str, str]  # role -> dependency name

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def stored(self) -> bool:
        return bool(self.cfg.output_formats)


@dataclass(frozen=True)
class RepresentationGraph:
    nodes: tuple[GraphNode, ...]  # topological order

    def __getitem__(self, name: str) -> GraphNode:
        """The node called `name`; KeyError naming the known nodes otherwise (not the StopIteration of `next`,
        which a generator or a for loop around the lookup would silently take for its own end)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no representation '{name}' in the graph; its nodes: {[n.name for n in self.nodes]}")

    def dependants(self, name: str) -> list[GraphNode]:
        return [n for n in self.nodes if name in n.inputs.values()]



def build_graph(cfg: RunCfg) -> RepresentationGraph:
    if cfg.plugins:
        from .plugins import load_plugins

        load_plugins(cfg.plugins)
    cfgs = cfg.by_name()
    classes = {name: _class_for(c) for name, c in cfgs.items()}
    inputs = {name: _bind_inputs(cfgs[name], classes[name]) for name in cfgs}
    order = topological_order({name: list(roles.values()) for name, roles in inputs.items()})
    built: dict[str, GraphNode] = {}
    for name in order:
        c, cls = cfgs[name], classes[name]
        params = build_params(cls, c.parameters, f"representations.{name}.parameters", c.type)
        deps = {role: built[dep].representation for role, dep in inputs[name].items()}
        try:
            rep = cls(name, params, deps, output_dtype=c.output_dtype, type_name=c.type)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"representations.{name}: {exc}") from None
        built[name] = GraphNode(cfg=c, representation=rep, inputs=inputs[name])
    return RepresentationGraph(nodes=tuple(built[n] for n in order))


def _class_for(c: RepresentationCfg) -> type[Representation]:
    try:
        return get_representation_class(c.type)
    except ConfigError as exc:
        raise ConfigError(f"representations.{c.name}.type: {exc}") from None


def _bind_inputs(c: RepresentationCfg, cls: type[Representation]) -> dict[str, str]:
    key = f"representations.{c.name}.dependencies"
    roles = [i.role for i in cls.inputs]
    required = [i.role for i in cls.inputs if not i.optional]
    if isinstance(c.dependencies, dict):
        unknown = set(c.dependencies) - set(roles)
        if unknown:
            raise ConfigError(f"{key}: '{c.type}' has no input(s) {sorted(unknown)}; its inputs: {roles}")
        bound = dict(c.dependencies)
    else:
        if len(c.dependencies) > len(roles):
            raise ConfigError(f"{key}: '{c.type}' takes at most {len(roles)} dependencies {roles}, "
                              f"got {len(c.dependencies)}: {list(c.dependencies)}")
        bound = dict(zip(roles, c.dependencies))
    missing = [r for r in required if r not in bound]
    if missing:
        raise ConfigError(f"{key}: '{c.type}' needs input(s) {missing} (inputs in order: {roles})")
    if c.name in bound.values():
        raise ConfigError(f"{key}: '{c.name}' cannot depend on itself")
    return bound


def build_params(cls: type[Representation], raw: Mapping[str, Any], key: str, type_name: str) -> Any:
    """Validate a parameters mapping against the type's frozen `Params` dataclass; `type_name` (the name the
    config or metadata used for `cls`) only names the type in errors."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{key}: unknown parameter(s) {sorted(unknown)} for '{type_name}'; "
                          f"known: {sorted(fields) or 'none'}")
    missing = [n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{key}: missing required parameter(s) {missing} for '{type_name}'")
    hints = typing.get_type_hints(cls.Params)
    values = {name: _coerce(value, hints[name], f"{key}.{name}") for name, value in raw.items()}
    try:
        return cls.Params(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a YAML value against a type hint; ints pass as floats and lists become tuples."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint in (int, str, bool):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    elif origin is dict and isinstance(value, Mapping):
        return {_coerce(k, args[0], key): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
