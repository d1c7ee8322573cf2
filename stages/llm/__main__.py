"""``python -m stages.llm`` (or ``torchrun ... -m stages.llm``): run the finetune stage from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from stages.llm.finetune import run
from stages.llm.profiles import profile
from stages.settings import SettingError, apply_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=Path, required=True, help="prompts artifact directory")
    parser.add_argument("--embeddings", type=Path, required=True, help="item-embedding artifact directory")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--profile", default="smoke", help="smoke, quick, paper, long or cpu")
    parser.add_argument("--domain", default="movie")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a FinetuneConfig field (e.g. --set zero_stage=3 --set lora.r=4)",
    )
    args = parser.parse_args(argv)
    # the stage's progress lines, timed and named as `llara` writes them (here on stdout, with the summary)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout)
    logging.getLogger("llara").setLevel(logging.INFO)
    try:
        config = apply_settings(profile(args.profile, args.domain), args.set)
    except SettingError as e:
        parser.error(str(e))
    summary = run(
        config,
        {"prompts": args.prompts, "embeddings": args.embeddings},
        args.out,
        args.checkpoint_dir,
        args.resume,
    )
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
