"""``benchmarks/gpu/pack.py``'s row plan: the chosen profile's rows, named for their prompts' item order."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from flows.profiles import pipeline_profile

PACK = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "pack.py"


def load_pack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_pack", PACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prompts_dir(tmp_path: Path, order: str) -> Path:
    (tmp_path / "prompts.json").write_text(json.dumps({"item_order": order}))
    return tmp_path


def test_cpu_plan_is_its_direct_llara_row_then_tallrec_on_token_first_prompts(tmp_path: Path) -> None:
    pack = load_pack()
    order = pack.item_order(prompts_dir(tmp_path, "token-first"), pipeline_profile("cpu", "artist"))
    datasets = {"lastfm": ("artist", "P", "E")}
    plan = pack.plan_rows(datasets, ["direct", "text"], {"max_steps": 9}, "cpu", {"lastfm": order})

    assert [r["row"] for r in plan] == ["LLaRA+token-first(SASRec) [direct]", "TALLRec+token-first"]
    assert [r["name"] for r in plan] == ["lastfm-cpu-direct-sasrec-s0", "lastfm-cpu-text-sasrec-s0"]
    for row, schedule in zip(plan, ["direct", "text"], strict=True):
        assert row["finetune"] == {
            "profile": "cpu",
            "domain": "artist",
            "set": {"max_steps": 9, "schedule": schedule},
        }
        assert row["prompts"] == f"{pack.DATA}/lastfm/prompts"


def test_cpu_plan_refuses_title_first_prompts_naming_the_file(tmp_path: Path) -> None:
    pack = load_pack()
    with pytest.raises(SystemExit, match=r"prompts\.json: item_order is 'title-first'"):
        pack.item_order(prompts_dir(tmp_path, "title-first"), pipeline_profile("cpu", "artist"))
    assert pack.item_order(tmp_path, pipeline_profile("long", "artist")) == "title-first"
