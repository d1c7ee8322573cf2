"""``stages/preprocess`` imports itself in no circle (lazy imports inside functions count too).

(``stages/seqrec`` still has one, models <-> released, through a lazy import in the model factory.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STAGES = Path(__file__).resolve().parents[2] / "stages"


def _imports(path: Path, package: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith(package + ".")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            if found := visit(dep, [*path, node]):
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return None


@pytest.mark.parametrize("package", ["preprocess", "llm", "evaluate", "report"])
def test_no_import_circle_inside_the_package(package: str) -> None:
    name = f"stages.{package}"
    files = [f for f in (STAGES / package).glob("*.py") if f.name != "__init__.py"]
    graph = {f"{name}.{f.stem}": _imports(f, name) for f in files}
    assert _cycle(graph) is None, f"{name}: import circle {' -> '.join(_cycle(graph) or [])}"
