"""Stage ``evaluate``: generation (paper parity) and candidate scoring of an LLM recommender.

Public API: ``run``/``EvaluateConfig``/``NAME`` (the stage), ``evaluate_rows`` (compute boundary),
``load_rows``, ``hybrid_embed_fn``; the evaluators live in ``generation``, ``scoring``, ``endpoint``;
the substring rule in ``matching``; result rows and multi-seed aggregation in ``aggregate``.
"""

from stages.evaluate.evaluate import (
    NAME,
    EvalOutput,
    EvaluateConfig,
    evaluate_rows,
    hybrid_embed_fn,
    load_rows,
    run,
)

__all__ = ["NAME", "EvalOutput", "EvaluateConfig", "evaluate_rows", "hybrid_embed_fn", "load_rows", "run"]
