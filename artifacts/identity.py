"""How an artifact gets its id: a hash of everything that determines its content."""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

ID_LENGTH = 16  # hex characters; 64 bits keeps collisions out of reach for any real store


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal configs hash equally."""
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def artifact_id(stage: str, config: Any, inputs: dict[str, str], code: str) -> str:
    payload = canonical_json({"stage": stage, "config": config, "inputs": inputs, "code": code})
    return hashlib.sha256(payload.encode()).hexdigest()[:ID_LENGTH]


def code_version(*modules: ModuleType) -> str:
    """Hash of the source files of the given modules (all files of a package).

    Hashing the source rather than trusting a hand-bumped version number means an edited stage
    can never be served a stale cached result.
    """
    digest = hashlib.sha256()
    for module in modules:
        origin = Path(module.__file__ or "")
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:ID_LENGTH]


def _module_files(name: str, root: Path) -> list[Path]:
    """The files Python runs to import ``name`` (``a.b.c``): each package's ``__init__.py`` on the
    way, then the module itself. Empty for names that are not files under ``root`` (a class)."""
    parts, files = name.split("."), []
    for depth in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:depth])
        if (base / "__init__.py").is_file():
            files.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            files.append(base.with_suffix(".py"))
            break
        else:
            break
    return files


def _imported_names(path: Path, root: Path, package: str) -> set[str]:
    """Dotted names under ``package`` that ``path`` imports anywhere, lazily inside functions too.

    Parsed once per file version in a process (a pipeline asks for a dozen stages' closures)."""
    stat = path.stat()
    return _parsed_imports(path, stat.st_mtime_ns, stat.st_size, root, package)


@functools.lru_cache(maxsize=4096)
def _parsed_imports(path: Path, _mtime_ns: int, _size: int, root: Path, package: str) -> frozenset[str]:
    here = list(path.relative_to(root).with_suffix("").parts)
    if here[-1] == "__init__":
        here.pop()
    else:
        here.pop()  # a module's relative imports start from its package
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # maybe submodules
    return frozenset(n for n in names if n == package or n.startswith(package + "."))


def import_closure(start: Iterable[Path], root: Path, package: str = "stages") -> list[Path]:
    """``start`` plus every file under ``root/package`` that it imports, directly or not."""
    seen: set[Path] = set()
    todo = [Path(p).resolve() for p in start]
    root = root.resolve()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(path, root, package):
            todo += [f.resolve() for f in _module_files(name, root)]
    return sorted(seen)


def source_version(files: Iterable[Path], root: Path) -> str:
    """Hash of the files' paths (relative to ``root``) and contents."""
    digest = hashlib.sha256()
    for path in sorted(Path(f).resolve() for f in files):
        digest.update(str(path.relative_to(root.resolve())).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:ID_LENGTH]


def stage_code_version(module: ModuleType | Path, package: str = "stages") -> str:
    """Code version of a stage: every file of its top package under ``package`` (``stages.llm`` for
    ``stages.llm.finetune``) and every module under ``package`` those import, however indirectly.

    ``module`` is the stage module or its file: the version is read from the sources, so the module
    need not be imported (a fully cached run never loads what the stages compute with).
    A shared module such as ``stages/candidates.py`` belongs to no stage's package, yet an edit to
    it changes what the stages that import it produce; following the imports gives them new ids.
    """
    origin = Path(module if isinstance(module, Path) else module.__file__ or "").resolve()
    top = origin
    while top.parent.name != package and top.parent != top:
        top = top.parent
    root = top.parent.parent
    start = sorted(top.rglob("*.py")) if top.is_dir() else [top]
    return source_version(import_closure(start, root, package), root)
