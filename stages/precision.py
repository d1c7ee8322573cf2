"""Which precision ``auto`` means on this machine, decided without importing torch.

``auto`` is resolved before an artifact's id is computed (``tasks.common.run_stage`` calls the
configs' ``resolved()``), so a bf16 artifact and an fp32 one never share an id, and a fully cached
``llara run`` still loads no torch. bf16 is chosen where the hardware multiplies bf16 natively: any
CUDA GPU, or a CPU with AVX512-BF16 or AMX-BF16 (recent Intel Xeon, AMD Zen 4 and later). Elsewhere
bf16 would be emulated and slower than fp32, so ``auto`` is fp32.
"""

from __future__ import annotations

import sys
import warnings
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


def warn_if_emulated(precision: str, device: str) -> None:
    """Warn when a run was told ``bf16`` on a CPU that has no bf16 dot products (``auto`` avoids it)."""
    if precision == "bf16" and device == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            f"bf16 on {cpu_description()}: this CPU has no bf16 dot-product instructions, so its bf16 "
            "matmuls are emulated and several times slower than fp32; precision auto picks fp32 here",
            RuntimeWarning,
            stacklevel=2,
        )


def precision_to_run(precision: str, device: str) -> str:
    """``resolve_precision`` for a stage about to compute (not for an artifact id): warns, once a
    process, when that is emulated bf16 (``warn_if_emulated``)."""
    chosen = resolve_precision(precision, device)
    warn_if_emulated(chosen, device)
    return chosen


def native_precisions(device: str = "auto") -> tuple[str, ...]:
    """The precisions this machine multiplies natively: fp32, and bf16 where ``auto`` would pick it.

    What a benchmark measures unless told otherwise: emulated bf16 on a CPU without bf16 dot
    products is several times slower than fp32 (a 2-core AVX2 AMD EPYC, 2026-12-07: a 1024² matmul
    20 GFLOP/s against fp32's 173, candidate scoring x0.18), so its figures cost time and say
    nothing about the bf16 a user would run.
    """
    return ("fp32", "bf16") if resolve_precision("auto", device) == "bf16" else ("fp32",)


def precisions_to_measure(requested: str, device: str = "auto") -> list[str]:
    """``--precision`` of a benchmark: ``native`` (``native_precisions``) or a comma-separated list.

    Prints a line when ``native`` leaves bf16 out, so a figure's absence is never silent.
    """
    if requested != "native":
        chosen = requested.split(",")
        for name in chosen:
            if name not in ("fp32", "bf16"):
                raise ValueError(f"--precision: unknown precision {name!r}: use native, fp32, bf16 or both")
        return chosen
    chosen = list(native_precisions(device))
    if "bf16" not in chosen:
        print(
            f"bf16 left out: {cpu_description()} has no bf16 dot-product instructions, so bf16 would be "
            "emulated; --precision fp32,bf16 measures it anyway"
        )
    return chosen
