"""Shared helpers for the prepare-stage tests."""

from __future__ import annotations

from pathlib import Path

from stages.preprocess import PrepareConfig, run
from tests.needs import shared


def need_release(name: str) -> Path:
    """The authors' released splits of one dataset, under ../shared (tests/needs.py)."""
    return shared("data", "llara-release", name)


def prepare(tmp: Path, **kw) -> tuple[dict, Path]:
    out = tmp / f"out{len(list(tmp.glob('out*')))}"
    out.mkdir(parents=True)
    return run(PrepareConfig(**kw), {}, out), out
