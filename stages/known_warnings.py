"""Two third-party messages that every run printed and that say nothing about it, silenced where
they are emitted (and nothing else from those libraries).

- DeepSpeed logs "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable
  to detect it." whenever it is imported without CUDA. On a CPU machine that is the plan, not a
  problem; the finetune stage logs the device each process trains on instead
  (``stages.llm.monitor``), which also tells a GPU machine whose CUDA went missing.
- transformers 5 deprecates ``PreTrainedModel.is_gradient_checkpointing``, and peft 0.21 still
  reads it when it wraps a model (``PeftModel.__init__``), so each LoRA model built raised a
  FutureWarning that no code of ours can act on. Remove the filter once peft reads
  ``is_activation_checkpointing``.
"""

from __future__ import annotations

import logging
import warnings

DEEPSPEED_CPU_NOTICE = "Setting accelerator to CPU."


def _not_the_cpu_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(DEEPSPEED_CPU_NOTICE)


def silence_known_warnings() -> None:
    """Install both filters (idempotent). The DeepSpeed one sits on its logger object, created here
    if DeepSpeed is not imported yet: DeepSpeed configures that same logger and keeps the filter."""
    logging.getLogger("DeepSpeed").addFilter(_not_the_cpu_notice)
    warnings.filterwarnings(
        "ignore",
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module=r"transformers\.modeling_utils",
    )
