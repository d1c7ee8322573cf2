"""The DeepSpeed configuration of a fine-tuning run, and the process-group setup on CPU or GPU."""

from __future__ import annotations

import importlib
import os
import socket
from typing import Any

import torch


def on_gpu() -> bool:
    return torch.cuda.is_available()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from RANK/WORLD_SIZE/LOCAL_RANK (torchrun, deepspeed) or 1 process.

    On CPU: DeepSpeed's CPU accelerator, gloo, and no build of the shared-memory comm op.
    """
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    if os.environ["WORLD_SIZE"] == "1":
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    gpu = on_gpu()
    if not gpu:
        os.environ["DS_ACCELERATOR"] = "cpu"
    import deepspeed

    if not gpu:
        importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
    else:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if not deepspeed.comm.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if gpu else "gloo")
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])


def deepspeed_config(
    micro_batch: int,
    grad_accum: int,
    world_size: int,
    zero_stage: int,
    offload: bool,
    clip: float = 1.0,
) -> dict[str, Any]:
    """A DeepSpeed config for a client (torch) optimizer and scheduler.

    micro_batch: rows per process per forward; the effective batch is micro * accum * world.
    DeepSpeed's fp16/bf16 modes stay off: bf16 is torch autocast (``stages.llm.mixed_precision``).
    ``zero_force_ds_cpu_optimizer`` is off so CPU offload works with torch Adam (no op build).
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0-3, got {zero_stage}")
    zero: dict[str, Any] = {"stage": zero_stage}
    if offload and zero_stage > 0:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu()}
        if zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": on_gpu()}
    if zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    if world_size == 1:  # nothing to overlap with; it only adds host syncs per step
        zero["overlap_comm"] = False
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch * grad_accum * world_size,
        "gradient_clipping": clip,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
