"""The package's layers: no two parts of ``sf_pipeline`` import each other, directly or round
about (a subpackage counts as one part, a top-level module as one). Imports inside functions count:
they are the usual way such circles hide."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sf_pipeline"


def part(module: str) -> str:
    """``sf_pipeline.sync.diff`` → ``sync``; ``sf_pipeline.mapping`` → ``mapping``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("sf_pipeline", *path.relative_to(PACKAGE).with_suffix("").parts))
        here = part(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] if node.module != "sf_pipeline" else [f"sf_pipeline.{a.name}" for a in
                                                                             node.names]
            for name in names:
                if name.startswith("sf_pipeline.") and part(name) != here:
                    graph[here].add(part(name))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one part (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle_round_about() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_part_of_the_package_imports_itself_round_about() -> None:
    assert cycles(imports()) == []


def test_the_core_never_imports_the_dagster_or_cli_layers() -> None:
    graph = imports()
    for core in ("sync", "storage", "salesforce", "mapping", "mapping_spec", "health", "scheduling", "lifecycle"):
        assert not graph.get(core, set()) & {"defs", "cli", "definitions"}, core
