"""Write a randomly initialised model from a config file, with the in-code tiny-random tokenizer.

Throughput and MFU depend on the shapes alone, so a random SmolLM2-135M (same config) measures what the
real one would, on a machine where the real weights have not arrived yet. Token ids stay below the tiny
tokenizer's 512, which the full vocabulary's embedding table covers.

    python benchmarks/gpu/random_backbone.py CONFIG_JSON OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from stages.llm.backbone import build_tiny_random


def main(config_file: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tiny = build_tiny_random(Path(tempfile.mkdtemp()))
    for path in tiny.iterdir():
        if path.name.startswith("tokenizer") or path.name == "special_tokens_map.json":
            shutil.copy(path, out / path.name)
    shutil.copy(config_file, out / "config.json")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(out))
    model.save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters (random)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
