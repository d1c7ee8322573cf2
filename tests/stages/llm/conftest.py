"""The LLM stage tests build backbones into a per-session cache (fixtures in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _cache_env(backbone_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
