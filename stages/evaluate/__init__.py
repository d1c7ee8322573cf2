"""Stage ``evaluate``: generation (paper parity) and candidate scoring of an LLM recommender.

The stage (``NAME``, ``run``, ``evaluate_rows``) is ``stages.evaluate.evaluate``; its config,
``EvaluateConfig``, is in ``stages.evaluate.config`` and re-exported here (this package imports no
torch). What asks an LLM about prompts is in ``stages.llm``, because fine-tuning's validation asks
the same questions: the rows (``prompts.load_rows``, ``rows``), ``scoring``, ``generation`` and its
substring rule (``matching``). Here: an OpenAI-compatible server instead of a local model
(``endpoint``), several processes (``shard``), the check that a model and its embeddings belong
together (``pairing``), result rows and multi-seed aggregation (``aggregate``).
"""

from stages.evaluate.config import EvaluateConfig

__all__ = ["EvaluateConfig"]
