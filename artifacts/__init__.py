"""Artifact identity, manifests and storage (SPEC §7).

An artifact is a directory under a store root holding the files a stage wrote plus
``manifest.json``. Its id hashes (stage, canonical config, input ids, stage code version),
so an unchanged stage is a cache hit and never runs twice.
"""

from artifacts.errors import ArtifactError
from artifacts.identity import artifact_id, canonical_json, code_version, stage_code_version
from artifacts.store import (
    Artifact,
    ArtifactStore,
    NotCached,
    cached_only,
    default_store_root,
    in_cached_only,
)

__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactStore",
    "NotCached",
    "artifact_id",
    "cached_only",
    "canonical_json",
    "code_version",
    "default_store_root",
    "in_cached_only",
    "stage_code_version",
]
