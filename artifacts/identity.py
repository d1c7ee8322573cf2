"""How an artifact gets its id: a hash of everything that determines its content."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
