"""Stage ``evaluate``: generation (paper parity) and candidate scoring of an LLM recommender.

The stage (``NAME``, ``run``, ``evaluate_rows``, ``load_rows``, ``hybrid_embed_fn``) is
``stages.evaluate.evaluate``; its config, ``EvaluateConfig``, is in ``stages.evaluate.config`` and
re-exported here (this package imports no torch). The evaluators live in ``generation``,
``scoring``, ``endpoint``; the substring rule in ``matching``; result rows and multi-seed
aggregation in ``aggregate``.
"""

from stages.evaluate.config import EvaluateConfig

__all__ = ["EvaluateConfig"]
