"""``FIELD=VALUE`` overrides typed from the config's annotations (``stages.settings``)."""

from __future__ import annotations

import pytest

from stages.evaluate import EvaluateConfig
from stages.llm.finetune import FinetuneConfig
from stages.settings import SettingError, apply_settings


def test_values_take_the_fields_types() -> None:
    config = apply_settings(
        FinetuneConfig(),
        ["max_steps=8", "lr=3e-4", "offload=true", "val_rows=none", "selection_metric=val_loss", "lora.r=4"],
    )
    assert (config.max_steps, config.lr, config.offload, config.val_rows) == (8, 3e-4, True, None)
    assert config.selection_metric == "val_loss" and config.lora.r == 4 and config.lora.alpha == 32
    assert apply_settings(FinetuneConfig(), ['lora={"dropout": 0.0}']).lora.dropout == 0.0
    assert apply_settings(FinetuneConfig(), ["lora.targets=q_proj,v_proj"]).lora.targets == (
        "q_proj",
        "v_proj",
    )
    assert apply_settings(EvaluateConfig(), ["template=all"]).template == "all"
    assert apply_settings(EvaluateConfig(), ["template=2"]).template == 2


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_step=8", "'max_step' is not a field of FinetuneConfig"),
        ("max_steps=eight", "max_steps of FinetuneConfig must be int | none"),
        ("offload=maybe", "offload of FinetuneConfig must be bool"),
        ("selection_metric=test_hr1", "'scoring_hr1' | 'generation_hr1' | 'val_loss'"),
        ("lora.rank=4", "'rank' is not a field of LoraSettings"),
        ("max_steps", "expected FIELD=VALUE"),
    ],
)
def test_a_bad_setting_names_the_field_in_one_line(setting: str, message: str) -> None:
    with pytest.raises(SettingError) as error:
        apply_settings(FinetuneConfig(), [setting])
    assert message in str(error.value) and "\n" not in str(error.value)
