"""Inputs of the LLM stages that the CLI cases (tests/flows/test_cli_llm_inputs.py) cannot reach:
a cut-off GGUF, a fine-tune directory without a manifest, safetensors files cut at every length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from stages.errors import DataError
from stages.evaluate.evaluate import finetune_config
from stages.inputs import safetensors_header
from stages.llm.backbone import check_gguf, convert_smollm2


def write_gguf(path: Path) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32).reshape(64, 64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_whole_gguf_passes_and_a_cut_one_is_one_data_error(tmp_path: Path) -> None:
    whole = write_gguf(tmp_path / "whole.gguf")
    check_gguf(whole)
    data = whole.read_bytes()
    for keep in (len(data) - 100, len(data) // 2, 200):
        cut = tmp_path / f"cut-{keep}.gguf"
        cut.write_bytes(data[:keep])
        with pytest.raises(DataError, match="GGUF") as error:
            check_gguf(cut)
        assert error.value.file == str(cut) and "\n" not in str(error.value)


def test_conversion_refuses_a_truncated_gguf_before_transformers_reads_it(tmp_path: Path) -> None:
    cut = tmp_path / "SmolLM2.gguf"
    cut.write_bytes(write_gguf(tmp_path / "whole.gguf").read_bytes()[:-64])
    with pytest.raises(DataError, match="truncated"):
        convert_smollm2(tmp_path / "cache", gguf=cut)
    assert not any((tmp_path / "cache").glob("smollm2-135m-*"))  # no cached conversion


def test_safetensors_cut_anywhere_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file({"a": torch.zeros(3, 5), "b": torch.ones(7)}, str(path))
    data = path.read_bytes()
    assert set(safetensors_header(path)) == {"a", "b"}
    for keep in range(0, len(data), 7):
        path.write_bytes(data[:keep])
        with pytest.raises(DataError):
            safetensors_header(path)
    path.write_bytes(data + b"\0")  # trailing bytes: not what the header describes either
    with pytest.raises(DataError):
        safetensors_header(path)


def test_a_fine_tune_without_manifest_needs_its_schedule_in_summary_json(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"schedule": "text", "seed": 0}))
    assert finetune_config(tmp_path)["schedule"] == "text"
    (tmp_path / "summary.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(DataError) as error:
        finetune_config(tmp_path)
    assert error.value.field == "schedule" and error.value.file == str(tmp_path / "summary.json")
