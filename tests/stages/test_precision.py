"""``precision: auto``: bf16 exactly where the hardware multiplies bf16 natively, and part of the id."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from artifacts import artifact_id
from stages import precision
from stages.evaluate.config import EvaluateConfig
from stages.llm.config import FinetuneConfig
from tasks.common import identity_of

FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep avx2 avx512f avx512bw"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Set this test's CPU flags and GPU presence (the real detection reads the files patched here)."""

    def set_machine(cpu_flags: str, gpu: bool = False) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {cpu_flags}\n\n")
        monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
        monkeypatch.setattr(precision, "gpu_present", lambda: gpu)

    return set_machine


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_is_bf16_on_a_cpu_with_bf16_matrix_units(machine, flag: str) -> None:
    machine(f"{FLAGS} {flag}")
    assert precision.cpu_has_native_bf16()
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("auto", "cpu") == "bf16"


def test_auto_is_fp32_on_a_cpu_without_them(machine) -> None:
    machine(f"{FLAGS} avx512_fp16 amx_tile")  # near misses: neither is a bf16 dot product
    assert not precision.cpu_has_native_bf16()
    assert precision.resolve_precision("auto") == "fp32"
    assert precision.resolve_precision("auto", "cpu") == "fp32"


def test_auto_is_bf16_on_a_gpu_and_explicit_choices_stand(machine) -> None:
    machine(FLAGS, gpu=True)
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("auto", "cpu") == "fp32"  # an evaluation pinned to the CPU
    assert precision.resolve_precision("auto", "cuda") == "bf16"
    assert (
        precision.resolve_precision("fp32") == "fp32" and precision.resolve_precision("bf16", "cpu") == "bf16"
    )
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16")


def test_this_machines_answer_matches_its_cpu_flags() -> None:
    """No patching: the real /proc/cpuinfo (on Linux) against torch's own cpuinfo reading."""
    import torch

    capability = torch._C._cpu._get_cpu_capability()
    expected = capability.get("avx512_bf16", False) or capability.get("amx_bf16", False)
    assert precision.cpu_has_native_bf16() == expected


@pytest.mark.parametrize(
    "config", [FinetuneConfig(), EvaluateConfig(device="cpu")], ids=["finetune", "evaluate"]
)
def test_auto_is_resolved_into_the_artifact_id(machine, config) -> None:
    ids = {}
    for flags in (f"{FLAGS} avx512_bf16", FLAGS):
        machine(flags)
        key = {"config": identity_of(config)}
        ids[key["config"]["precision"]] = artifact_id("finetune", key, {}, "code")
    assert set(ids) == {"bf16", "fp32"} and ids["bf16"] != ids["fp32"]
    machine(FLAGS)  # an explicit bf16 is the same artifact as an auto that resolved to bf16
    explicit = artifact_id("finetune", {"config": identity_of(replace(config, precision="bf16"))}, {}, "code")
    assert explicit == ids["bf16"]


def test_the_cpu_description_names_the_model_and_the_matrix_flags(machine) -> None:
    machine(f"{FLAGS} avx512_bf16")
    described = precision.cpu_description()
    assert described.startswith("test, ") and "avx2 avx512f avx512_bf16 (no amx_bf16)" in described


def test_benchmarks_measure_bf16_only_where_it_is_native(machine, capsys) -> None:
    machine(f"{FLAGS} avx512_bf16")
    assert precision.precisions_to_measure("native") == ["fp32", "bf16"]
    assert capsys.readouterr().out == ""
    machine(FLAGS)
    assert precision.precisions_to_measure("native") == ["fp32"]
    assert "bf16 left out: test, " in capsys.readouterr().out
    assert precision.precisions_to_measure("fp32,bf16") == ["fp32", "bf16"]  # asked for: measured anyway
    machine(FLAGS, gpu=True)
    assert precision.precisions_to_measure("native") == ["fp32", "bf16"]
    assert precision.precisions_to_measure("native", "cpu") == ["fp32"]
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        precision.precisions_to_measure("fp32,fp16")


def test_an_explicit_bf16_on_a_cpu_without_bf16_units_is_warned_about(machine) -> None:
    import warnings

    machine(FLAGS)
    with pytest.warns(RuntimeWarning, match="bf16 on test, .* emulated"):
        precision.warn_if_emulated("bf16", "cpu")
    machine(f"{FLAGS} avx512_bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.warn_if_emulated("bf16", "cpu")
        machine(FLAGS)
        precision.warn_if_emulated("fp32", "cpu")
        precision.warn_if_emulated("bf16", "cuda")
