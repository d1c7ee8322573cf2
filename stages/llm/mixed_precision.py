"""bf16 mixed precision, the same on a GPU and on a CPU with bf16 matrix units.

Mixed means: matmuls in bf16 (``torch.autocast``), everything that accumulates in fp32 (the residual
stream, norms, the loss and the log-softmax over candidates, which the callers upcast), and every
trainable tensor (LoRA, projector) and its optimizer state in fp32. Frozen linear weights are stored
in bf16 once (``store_frozen_linears_in_bf16``): autocast would round them to bf16 at every forward
anyway, so the numerics are those of plain autocast without a cast of the whole model per micro-batch.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from stages.precision import precision_to_run


def resolved(precision: str, device: torch.device) -> str:
    """``bf16`` or ``fp32`` for a configured precision on ``device`` (``auto`` resolved for it)."""
    return precision_to_run(precision, "cuda" if device.type == "cuda" else "cpu")


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast on ``device`` when ``precision`` is ``bf16``; a no-op context for ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def store_frozen_linears_in_bf16(model: nn.Module) -> int:
    """Cast the weights (and biases) of frozen ``nn.Linear`` modules to bf16; returns how many.

    A linear layer whose weight is the input embedding's (a tied LM head) stays fp32: the embedding
    lookup outside autocast must keep the fp32 residual stream.

    The model then runs under autocast only, so peft's LoRA layers are told to pass their input on
    as it comes (``cast_input_dtype_enabled``): by default they copy a bf16 input (the attention
    output into ``o_proj``, the MLP product into ``down_proj``) to fp32 for their fp32 adapter,
    and autocast copies it straight back to bf16 for the adapter's matmul. The values are the same
    either way (the dropout's scaling computes in fp32 and rounds once to bf16 in both).
    """
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.cast_input_dtype_enabled = False
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = embedding.weight if embedding is not None else None
    cast = 0
    for module in model.modules():
        if not isinstance(module, nn.Linear) or module.weight.requires_grad or module.weight is tied:
            continue
        module.weight.data = module.weight.data.to(torch.bfloat16)
        if module.bias is not None and not module.bias.requires_grad:
            module.bias.data = module.bias.data.to(torch.bfloat16)
        cast += 1
    return cast
