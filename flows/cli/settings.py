"""Options several commands share: ``--refresh``, ``--profile``, ``--backbone`` and ``--set FIELD=VALUE``
(a stage config override, checked before anything runs)."""

from __future__ import annotations

from typing import Annotated

import typer

RefreshOption = Annotated[bool, typer.Option("--refresh", help="Recompute even if a valid artifact exists.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Override a field of the stage's config, e.g. --set max_steps=8 --set lora.r=4 (repeatable).",
    ),
]

ProfileOption = Annotated[
    str,
    typer.Option(
        help="smoke (tiny LLM, ~1 min), quick (SmolLM2-135M on CPU, ~10 min), paper (GPU), "
        "long (the paper's recipe on CPU for --max-steps T steps; docs/long-runs.md), "
        "cpu (as long, with the recipe chosen for a small LLM on CPU: item token first, direct, lr 2e-3; "
        "docs/learning.md)."
    ),
]
MaxStepsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Fine-tuning budget T in optimizer steps: the curriculum and the learning-rate schedule end "
        "there, and the long and cpu profiles space their validations over it [default: the profile's].",
    ),
]
BackboneOption = Annotated[
    str | None, typer.Option(help="LLM: smollm2-135m, tiny-random or hf:DIR [default: the profile's].")
]


def checked_settings(config: object, settings: list[str] | None) -> list[str]:
    """``settings`` after checking them against ``config``; a bad one exits 2 with one line naming it."""
    from stages.settings import SettingError, apply_settings

    try:
        apply_settings(config, settings or [])
    except SettingError as e:
        raise typer.BadParameter(str(e), param_hint="--set") from e
    return list(settings or [])

