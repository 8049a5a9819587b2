"""The package's import graph runs one way: no two of its units (a top-level
module such as ``afterkernel.plan``, or a subpackage such as
``afterkernel.kernels``) import each other, directly or through others, lazy
imports inside functions included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "afterkernel"


def unit_graph() -> dict[str, set[str]]:
    """Unit -> the units its modules import (``afterkernel.X``)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        unit = ".".join(parts[:2]) if len(parts) > 1 and parts[1] != "__init__" else "afterkernel"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                target = ".".join(name.split(".")[:2])
                if name.startswith("afterkernel.") and target != unit:
                    graph[unit].add(target)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_no_back_arrows_between_units():
    graph = unit_graph()
    assert graph["afterkernel.kernels"] and graph["afterkernel.plan"]  # the walk sees imports
    back = sorted((a, b) for a in graph for b in graph[a] if a in reachable(graph, b))
    assert back == [], f"units importing each other: {back}"


def test_a_cycle_is_found():
    assert reachable({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "b") == {"a", "b", "c"}
