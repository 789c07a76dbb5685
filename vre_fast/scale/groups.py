"""Representation groups (VRE's Strategy 2): `groups: {name: {device: ..., representations: [...]}}` in the
config; each group runs on its device, concurrently with the others, and reads what it needs of another
group's outputs back from disk, never computing it again.

`resolve_groups` checks the groups against the graph and says, for each, what it waits for: a group's unit for a
chunk of frames is ready once the units of the groups it reads from are done for the same frames (dependencies
are per frame; a node reading frame t+1 reads it from the video, not from another node).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._builder import RepresentationGraph
from .._cfg import BINARY_FORMATS, RunCfg
from ..errors import ConfigError, GraphError
from ..toposort import topological_order

__all__ = ["ALL", "Group", "resolve_groups"]

ALL = "all"  # the one group of a config without `groups:`


@dataclass(frozen=True)
class Group:
    name: str
    representations: tuple[str, ...]  # what it stores
    device: str | None  # None: the worker's (or each representation's own)
    after: tuple[str, ...] = ()  # the groups whose outputs it reads, for the same frames
    read_only: tuple[str, ...] = ()  # those outputs: read from disk, never computed by this group


def resolve_groups(cfg: RunCfg, graph: RepresentationGraph, chosen: tuple[str, ...] | None = None) -> tuple[Group, ...]:
    """The groups of a run in an order where each comes after those it reads from. `chosen`
    (`--representations`): only these are stored; a group left with none of them is not run, and what the
    others read of it must be on disk already. Errors name the group and the representation."""
    stored = [n.name for n in graph.nodes if n.stored]
    wanted = set(stored if chosen is None else chosen)
    if not cfg.groups:
        return (Group(ALL, tuple(n for n in stored if n in wanted), None),)
    owner: dict[str, str] = {}
    for group in cfg.groups:
        for name in group.representations:
            key = f"groups.{group.name}.representations"
            known = [n.name for n in graph.nodes]
            if name not in known:
                raise ConfigError(f"{key}: no '{name}' in the config; it defines {', '.join(known)}")
            if name not in stored:
                raise ConfigError(f"{key}: '{name}' stores nothing (output_formats: []); a group lists stored "
                                  f"representations (the unstored ones it needs are computed where needed)")
            if name in owner:
                raise ConfigError(f"{key}: '{name}' is already in group '{owner[name]}'; each representation is "
                                  f"in one group")
            owner[name] = group.name
    left_out = [n for n in stored if n not in owner]
    if left_out:
        raise ConfigError(f"groups: {', '.join(map(repr, left_out))} in no group; with groups, every stored "
                          f"representation is listed in one")
    reads = {g.name: _reads(graph, g.name, g.representations, owner) for g in cfg.groups}
    try:
        order = topological_order({g: sorted({owner[n] for n in reads[g]}) for g in reads})
    except GraphError as exc:
        cycle = exc.cycle
        why = "; ".join(f"'{a}' reads {', '.join(sorted(n for n in reads[a] if owner[n] == b))} of '{b}'"
                        for a, b in zip(cycle, cycle[1:]))
        raise ConfigError(f"groups: a dependency cycle between groups {' -> '.join(cycle)} ({why}); "
                          f"merge them or move a representation so the groups depend one way") from None
    by_name = {g.name: g for g in cfg.groups}
    groups = []
    for name in order:
        mine = tuple(n for n in by_name[name].representations if n in wanted)
        if mine:
            groups.append(Group(name, mine, by_name[name].device, read_only=tuple(sorted(reads[name]))))
    running = {g.name for g in groups}
    return tuple(Group(g.name, g.representations, g.device,
                       after=tuple(sorted({owner[n] for n in g.read_only} & running)), read_only=g.read_only)
                 for g in groups)


def _reads(graph: RepresentationGraph, group: str, names: tuple[str, ...], owner: dict[str, str]) -> set[str]:
    """The other groups' representations that `names` need: the walk up the dependencies stops at them (they
    are read back); unstored nodes on the way are computed by this group. An input stored only as pictures
    cannot be read back exactly, so it is refused."""
    reads, todo, seen = set(), list(names), set()
    while todo:
        node = graph[todo.pop()]
        for dep in node.inputs.values():
            if dep in seen:
                continue
            seen.add(dep)
            if owner.get(dep, group) != group:
                if not any(f in BINARY_FORMATS for f in graph[dep].cfg.output_formats):
                    raise ConfigError(f"groups.{group}: '{node.name}' reads '{dep}' of group '{owner[dep]}', which "
                                      f"is stored only as pictures; store it as npz (or npy) to read it back, or "
                                      f"put them in one group")
                reads.add(dep)
            else:
                todo.append(dep)
    return reads
