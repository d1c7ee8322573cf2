"""The store's error type, in a module of its own so that the store and its filesystem probe both
raise it without importing each other."""

from __future__ import annotations


class ArtifactError(Exception):
    """An artifact is missing, incomplete or does not match its manifest."""
