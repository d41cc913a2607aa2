"""No module of the project reaches into another package's private (``_``-prefixed) modules or
attributes: those change without notice between releases (``typer._click`` disappeared in one)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("sf_pipeline", "sf_pipeline_tests", "bench")
OWN = {"sf_pipeline", "sf_pipeline_tests", "bench"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str) -> list[str]:
    """``import a._b``, ``from a._b import c``, ``from a import _c`` and ``a._b`` (``a`` an imported
    module of another package), as ``line: what``."""
    tree = ast.parse(source)
    foreign: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OWN:
                    continue
                foreign.add(alias.asname or alias.name.split(".")[0])
                if any(_private(part) for part in alias.name.split(".")):
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in OWN:
                continue
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module} import ...")
            for alias in node.names:
                foreign.add(alias.asname or alias.name)
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root: ast.expr = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in foreign:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scanner_finds_each_kind_of_private_use() -> None:
    source = (
        "import dagster._core.utils\n"
        "from typer._click import core\n"
        "from json.encoder import _private_thing\n"
        "import sqlalchemy as sa\n"
        "x = sa.types._cached\n"
        "from sf_pipeline.sync import _own\n"
        "y = object()._fine\n"
    )
    assert private_uses(source) == [
        "1: import dagster._core.utils",
        "2: from typer._click import ...",
        "3: from json.encoder import _private_thing",
        "5: sa.types._cached",
    ]


def test_no_module_uses_a_private_module_or_attribute_of_another_package() -> None:
    offenders = {
        str(path.relative_to(ROOT)): uses
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offenders == {}
