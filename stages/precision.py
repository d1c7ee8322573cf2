"""Which precision ``auto`` means on this machine, decided without importing torch.

``auto`` is resolved before an artifact's id is computed (``tasks.common.run_stage`` calls the
configs' ``resolved()``), so a bf16 artifact and an fp32 one never share an id, and a fully cached
``llara run`` still loads no torch. bf16 is chosen where the hardware multiplies bf16 natively: any
CUDA GPU, or a CPU with AVX512-BF16 or AMX-BF16 (recent Intel Xeon, AMD Zen 4 and later). Elsewhere
bf16 would be emulated and slower than fp32, so ``auto`` is fp32.
"""

from __future__ import annotations

import sys
from pathlib import Path

PRECISIONS = ("auto", "bf16", "fp32")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
MATRIX_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
"""The flags that set a CPU's matmul speed per precision: what a benchmark prints beside its figures."""
CPUINFO = Path("/proc/cpuinfo")
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return any(flag in line.split() for flag in BF16_CPU_FLAGS)
        return False
    import torch  # not Linux: ask torch's cpuinfo (a private but long-standing call)

    capability = getattr(torch._C._cpu, "_get_cpu_capability", dict)()
    return any(capability.get(flag, False) for flag in BF16_CPU_FLAGS)


def cpu_description() -> str:
    """``<model name>, <N> cores, <matrix flags it has> (no <those it lacks>)``, from /proc/cpuinfo."""
    import os
    import platform

    fields: dict[str, str] = {}
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first core's lines
    model = fields.get("model name") or platform.processor() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    has = [f for f in MATRIX_CPU_FLAGS if f in flags]
    lacks = [f for f in MATRIX_CPU_FLAGS if f not in flags]
    return f"{model}, {cores} cores, {' '.join(has) or 'no listed flags'}" + (
        f" (no {' '.join(lacks)})" if lacks and flags else ""
    )


def gpu_present() -> bool:
    """Whether a CUDA GPU is visible: torch's answer once torch is loaded, else the NVIDIA driver's."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir())


def resolve_precision(precision: str, device: str = "auto") -> str:
    """``bf16`` or ``fp32`` for a configured ``precision`` on ``device`` (``auto``, ``cpu``, ``cuda``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use auto, bf16 or fp32")
    if precision != "auto":
        return precision
    on_gpu = device == "cuda" or (device == "auto" and gpu_present())
    return "bf16" if on_gpu or cpu_has_native_bf16() else "fp32"
