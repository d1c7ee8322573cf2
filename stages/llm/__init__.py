"""Stage 2 of LLaRA: hybrid prompts and LoRA fine-tuning of a causal LLM with the curriculum.

Two stages live here: ``stages.llm.prompts`` (``NAME = "prompts"``) materializes the prompts for a
backbone's tokenizer; ``stages.llm.finetune`` (``NAME = "finetune"``) trains LoRA + projector under
DeepSpeed ZeRO. Their configs are in ``stages.llm.config``, which imports no torch, and this package
imports nothing, so building a config never loads transformers.

What asks an LLM about the frozen prompts lives here too, below both fine-tuning's validation and
the evaluate stage (``stages.evaluate``), which use it alike: the rows (``prompts.load_rows``,
``rows``: ``EvalRow``, batching, the hybrid embedding hook), candidate ``scoring``, ``generation``
and its substring rule (``matching``).
"""
