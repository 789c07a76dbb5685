"""Which frames each node computes, loads back from disk, or writes, given what is already done."""

from __future__ import annotations

from dataclasses import dataclass

from .._builder import RepresentationGraph
from .._cfg import BINARY_FORMATS

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    frames: list[int]  # frames at least one node computes, ascending: the frames to decode
    compute: dict[str, frozenset[int]]
    load: dict[str, frozenset[int]]  # done on disk and needed by a dependant that computes
    write: dict[str, frozenset[int]]  # stored nodes' missing frames
    already_done: dict[str, int]


def make_plan(graph: RepresentationGraph, requested: list[int], done: dict[str, set[int]],
              outputs: set[str] | None = None) -> Plan:
    """Walks the graph from the leaves up: a node computes its own missing frames plus the frames its
    computing dependants need and the disk does not have; a learned node with nothing to compute is
    therefore never set up. `outputs`: the nodes whose frames are wanted (a stream's chosen ones); by
    default the stored ones."""
    wanted = set(requested)
    compute: dict[str, frozenset[int]] = {}
    load: dict[str, frozenset[int]] = {}
    write: dict[str, frozenset[int]] = {}
    for node in reversed(graph.nodes):
        on_disk = done.get(node.name, set()) if node.stored else set()
        # images are not read back
        loadable = on_disk if any(f in BINARY_FORMATS for f in node.cfg.output_formats) else set()
        wanted_here = node.name in outputs if outputs is not None else node.stored
        missing = wanted - on_disk if wanted_here else set()
        needed = set().union(*(compute[d.name] for d in graph.dependants(node.name)))
        compute[node.name] = frozenset(missing | (needed - loadable))
        load[node.name] = frozenset(needed & loadable)
        write[node.name] = frozenset(missing)
    frames = sorted(set().union(*compute.values()))
    already = {n.name: len(wanted & done.get(n.name, set())) for n in graph.nodes
               if (n.name in outputs if outputs is not None else n.stored)}
    return Plan(frames=frames, compute=compute, load=load, write=write, already_done=already)
