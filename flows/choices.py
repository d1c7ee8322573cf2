"""The closed choices of the deployments' parameters, as ``Literal`` types so that the Prefect UI's
run form offers a drop-down (and the API refuses anything else) instead of a free-text box.

Each mirrors a tuple the stages own; tests/flows/test_choices.py keeps the two in step.
"""

from __future__ import annotations

from typing import Literal

Profile = Literal["smoke", "quick", "paper", "long", "cpu"]
Schedule = Literal["curriculum", "direct", "text", "two-stage", "llara-official"]
Recommender = Literal["sasrec", "gru4rec", "caser", "morec", "sasrec-conv"]
StageName = Literal[  # stages.registry.NAMES
    "prepare", "text-embeddings", "pretrain", "import-sr", "embeddings", "prompts", "finetune", "evaluate",
    "report",
]
EvalMode = Literal["scoring", "generation"]
SRLoss = Literal["ce", "bce1"]
TitleMode = Literal["clean", "llara"]
