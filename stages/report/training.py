"""What the report says about how much each LLM row trained: optimizer steps, rows and tokens
seen, and the epochs those rows make over the train split as a share of the paper's 5 (each
evaluate artifact's ``metrics.json`` ``training``: ``stages.llm.amount``).

A row trained on less than one epoch is marked ``SHORT``, and the report then opens with
``OPENING``: its numbers test that the method runs, they do not reproduce the paper's.
"""

from __future__ import annotations

SHORT = "†"
OPENING = (
    "**The LLM rows of this report are a smoke test of the method, not a reproduction of LLaRA:** "
    f"the rows marked {SHORT} were fine-tuned on less than one epoch of their training data (the "
    "paper trains {paper} epochs); the `trained` column says how much each row saw."
)
FOOTNOTE = (
    f"{SHORT} Fine-tuned on less than one epoch of the train split: a smoke test of the method, not "
    "comparable with the published rows."
)


def _count(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def short(training: dict | None) -> bool:
    """Whether a run trained on less than one epoch (unknown counts as not)."""
    return bool(training) and training.get("epochs") is not None and training["epochs"] < 1


def describe(training: dict | None) -> str:
    """One run's amount, e.g. ``32 steps, 128 rows, 31.2k tokens = 0.0015 epochs (0.03 % of 5) †``."""
    if not training or training.get("steps") is None:
        return "–"
    text = f"{training['steps']} steps"
    if training.get("rows_seen") is not None:
        text += f", {_count(training['rows_seen'])} rows"
    if training.get("tokens_seen") is not None:
        text += f", {_count(training['tokens_seen'])} tokens"
    if training.get("epochs") is not None:
        epochs, paper = training["epochs"], training.get("paper_epochs", 5)
        text += f" = {epochs:.2g} epochs ({100 * epochs / paper:.2g} % of {paper})"
    return text + (f" {SHORT}" if short(training) else "")


def trained_cell(notes: list[dict]) -> str:
    """The ``trained`` cell of one table line: its seeds' amounts (once when they agree)."""
    texts = [describe(n.get("training")) for n in sorted(notes, key=lambda n: n["seed"])]
    return "; ".join(dict.fromkeys(texts)) if texts else "–"


def precision_cell(notes: list[dict]) -> str:
    """The ``precision`` cell: the evaluation's (bf16 / fp32), and the fine-tune's when it differs."""
    texts = []
    for note in notes:
        evaluated, trained = note.get("precision"), (note.get("training") or {}).get("precision")
        if evaluated and trained and trained != evaluated:
            texts.append(f"{evaluated} (trained in {trained})")
        elif evaluated or trained:
            texts.append(str(evaluated or trained))
    return ", ".join(dict.fromkeys(texts)) if texts else "–"


def opening(notes: dict) -> list[str]:
    """The report's first lines when some LLM row trained less than one epoch, else none."""
    amounts = [n.get("training") for seeds in notes.values() for n in seeds]
    if not any(short(t) for t in amounts):
        return []
    paper = next(t.get("paper_epochs", 5) for t in amounts if short(t))
    return [OPENING.format(paper=paper), ""]
