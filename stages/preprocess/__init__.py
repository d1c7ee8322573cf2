"""The ``prepare`` stage's package: a raw data source -> the prepared-dataset artifact (SPEC §2).

The stage itself (``NAME``, ``PrepareConfig``, ``run``) is ``stages.preprocess.prepare``; raw readers
are in ``sources``/``steam``/``readers``, the authors' released splits in ``release``.
"""

from stages.errors import DataError
from stages.preprocess.prepare import NAME, PrepareConfig, draw_candidates, run, source_fingerprint

__all__ = ["NAME", "DataError", "PrepareConfig", "draw_candidates", "run", "source_fingerprint"]
