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
