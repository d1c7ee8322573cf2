"""The report stage's config and the names of its rows, which the flows use to label runs.

Nothing here imports torch, polars or matplotlib, so the flows can build a report's config (and a
fully cached ``llara run`` can find its artifacts) without loading them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Report row names of the sequential recommenders (as in the paper's Table 2).
SR_ROW_NAMES = {
    "sasrec": "SASRec",
    "gru4rec": "GRU4Rec",
    "caser": "Caser",
    "morec": "MoRec",
    "sasrec-conv": "SASRec (conv)",
    "sasrec-released": "SASRec (released)",
}
# How an LLaRA row names its recommender where that differs from the baseline row's name.
LLARA_SR_NAMES = {"sasrec-released": "SASRec, released", "sasrec-conv": "SASRec, conv"}


def method_variants(item_order: str = "title-first", user_token: str = "none") -> tuple[str, ...]:
    """The method variants a fine-tune used (SPEC §4: a changed method is a row of its own name)."""
    return (("token-first",) if item_order == "token-first" else ()) + (
        ("user",) if user_token != "none" else ()
    )


def llara_row(sr_model: str, schedule: str, variants: tuple[str, ...] = ()) -> str:
    """Report row of an LLM run: TALLRec for text-only, LLaRA(SR) for the curriculum, else an ablation;
    a method variant joins the name (``LLaRA+token-first(SASRec)``, ``TALLRec+token-first``)."""
    suffix = "".join(f"+{v}" for v in variants)
    if schedule == "text":
        return "TALLRec" + suffix
    name = LLARA_SR_NAMES.get(sr_model) or SR_ROW_NAMES.get(sr_model, sr_model)
    base = f"LLaRA{suffix}({name})"
    return base if schedule == "curriculum" else f"{base} [{schedule}]"


@dataclass(frozen=True)
class ReportConfig:
    """Configuration of the report."""

    title: str = "LLaRA reproduction"
    """Heading of report.md."""
    metric: str = "hr@1"
    """Metric plotted against the published HitRatio@1."""
    smooth: int = 1
    """Moving-average window (steps) for the training curves."""
    dataset: str = ""
    """Dataset named in training-curve captions when the runs' summaries do not say."""
    backbone: str = ""
    """Backbone named in training-curve captions when the runs' summaries do not say."""
