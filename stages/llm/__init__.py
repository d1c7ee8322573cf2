"""Stage 2 of LLaRA: hybrid prompts and LoRA fine-tuning of a causal LLM with the curriculum.

Two stages live here: ``stages.llm.prompts`` (``NAME = "prompts"``) materializes the prompts for a
backbone's tokenizer; ``stages.llm.finetune`` (``NAME = "finetune"``) trains LoRA + projector under
DeepSpeed ZeRO. The evaluator reuses ``load_backbone``, ``load_trained``, ``build_inputs_embeds``,
``render_prompt`` / ``encode`` and ``PromptData.eval_batches``.
"""

from stages.llm.backbone import Backbone, SpecialTokenIds, load_backbone, load_tokenizer
from stages.llm.model import LlaraModel, build_inputs_embeds, build_llara_model, load_trained, save_trained
from stages.llm.templates import TEMPLATES, answer_labels, encode, render_prompt

__all__ = [
    "TEMPLATES",
    "Backbone",
    "LlaraModel",
    "SpecialTokenIds",
    "answer_labels",
    "build_inputs_embeds",
    "build_llara_model",
    "encode",
    "load_backbone",
    "load_tokenizer",
    "load_trained",
    "render_prompt",
    "save_trained",
]
