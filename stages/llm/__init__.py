"""Stage 2 of LLaRA: hybrid prompts and LoRA fine-tuning of a causal LLM with the curriculum.

Two stages live here: ``stages.llm.prompts`` (``NAME = "prompts"``) materializes the prompts for a
backbone's tokenizer; ``stages.llm.finetune`` (``NAME = "finetune"``) trains LoRA + projector under
DeepSpeed ZeRO. Their configs are in ``stages.llm.config``, which imports no torch, and this package
imports nothing, so building a config never loads transformers.
"""
