"""The import graph of ``artifacts``, ``stages``, ``tasks`` and ``flows`` has no circle and points one way.

Read statically from every ``import`` in every file, so lazy imports inside functions and imports
under ``if TYPE_CHECKING:`` count too: a circle that only a lazy import closes still means neither
module can be read or changed without the other.

- No import circle anywhere in the four packages.
- A stage package imports only the stage packages before it in the pipeline (``STAGE_ORDER``):
  ``stages/llm`` may use ``stages/seqrec``, never ``stages/evaluate``. What two of them share lives
  in the earlier one, or in a module of ``stages/`` itself.
- The layers point down: ``flows`` -> ``tasks`` -> ``stages`` / ``artifacts``; ``stages`` and
  ``artifacts`` import neither ``tasks`` nor ``flows``, and ``tasks`` does not import ``flows``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("artifacts", "stages", "tasks", "flows")
STAGE_ORDER = ("preprocess", "seqrec", "llm", "evaluate", "report")
"""The stage packages in pipeline order: each may import only those before it."""
LAYER = {"artifacts": 0, "stages": 0, "tasks": 1, "flows": 2}
"""A package imports only packages of its own layer or lower ones."""


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``name`` imports anywhere in its file (a package's
    ``__init__`` for ``from package import name`` when ``name`` is not a submodule)."""
    here = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: ``from . import x``, ``from ..pkg import y``
                parent = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    found.add(target)
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, is_pkg, set(modules)) for name, (path, is_pkg) in modules.items()}


def _circle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest import path from ``start`` back to itself, if any."""
    paths = {dep: [start, dep] for dep in sorted(graph[start])}
    queue = list(paths)
    while queue:
        node = queue.pop(0)
        if node == start:
            return paths[node]
        for dep in sorted(graph.get(node, ())):
            if dep not in paths:
                paths[dep] = [*paths[node], dep]
                queue.append(dep)
    return None


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    circles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in sorted(graph):
        circle = _circle_through(graph, start)
        if circle and frozenset(circle) not in seen:
            seen.add(frozenset(circle))
            circles.append(circle)
    return circles


def _stage_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "stages" and len(parts) > 1 else None


def test_every_kind_of_import_is_read(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import pkg.a\n"
        "from pkg import b, CONSTANT\n"
        "from . import c\n"
        "from ..d import thing\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.e import Type\n"
        "def f():\n"
        "    from pkg.sub.f import lazy\n"
    )
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.d", "pkg.e", "pkg.sub.f", "pkg.sub.mod"}
    found = _imports("pkg.sub.mod", source, False, modules)
    assert found == {"pkg", "pkg.a", "pkg.b", "pkg.sub.c", "pkg.d", "pkg.e", "pkg.sub.f"}
    # and in the tree: ``from package import module``, and an import inside a function
    graph = _graph()
    assert "stages.evaluate.evaluate" in graph["stages.evaluate.shard"]
    assert "stages.llm.model" in graph["stages.evaluate.evaluate"]


def test_no_import_circle() -> None:
    circles = _circles(_graph())
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_every_stage_package_has_a_place_in_the_order() -> None:
    packages = {p.name for p in (ROOT / "stages").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(STAGE_ORDER), f"add the new stage package to STAGE_ORDER: {packages}"


def test_stage_packages_import_only_earlier_ones() -> None:
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    later = sorted(
        f"{module} -> {dep}"
        for module, deps in _graph().items()
        if (mine := _stage_package(module)) in rank
        for dep in deps
        if (theirs := _stage_package(dep)) in rank and rank[theirs] > rank[mine]
    )
    assert not later, f"imports from a stage package into a later one ({' < '.join(STAGE_ORDER)}):\n" + (
        "\n".join(later)
    )


def test_layers_import_downwards() -> None:
    upward = sorted(
        f"{module} -> {dep}"
        for module, deps in _graph().items()
        for dep in deps
        if LAYER[dep.split(".")[0]] > LAYER[module.split(".")[0]]
    )
    assert not upward, "imports into a higher layer (flows > tasks > stages, artifacts):\n" + (
        "\n".join(upward)
    )
