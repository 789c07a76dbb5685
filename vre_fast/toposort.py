"""Topological order of the representation graph; cycles are reported with the nodes in them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import GraphError

__all__ = ["topological_order"]


def topological_order(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so that each comes after its dependencies; ties keep the config's order."""
    for node, deps in dependencies.items():
        for dep in deps:
            if dep not in dependencies:
                raise GraphError(f"representations.{node}.dependencies: unknown representation '{dep}'; "
                                 f"defined: {', '.join(dependencies)}")
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" | "done"

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == "done":
            return
        if state.get(node) == "visiting":
            cycle = path[path.index(node):] + [node]
            error = GraphError(f"dependency cycle (x -> y: x depends on y): {' -> '.join(cycle)}")
            error.cycle = cycle  # the nodes, for callers that name the cycle in their own terms (scale.groups)
            raise error
        state[node] = "visiting"
        for dep in dependencies[node]:
            visit(dep, path + [node])
        state[node] = "done"
        order.append(node)

    for node in dependencies:
        visit(node, [])
    return order
