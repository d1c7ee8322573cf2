"""Shared helpers for the prepare-stage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.preprocess import PrepareConfig, run

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
RELEASE = SHARED / "data" / "llara-release"


def need_release(name: str) -> Path:
    d = RELEASE / name
    if not d.is_dir():
        pytest.skip(f"{d} not available")
    return d


def prepare(tmp: Path, **kw) -> tuple[dict, Path]:
    out = tmp / f"out{len(list(tmp.glob('out*')))}"
    out.mkdir(parents=True)
    return run(PrepareConfig(**kw), {}, out), out
