"""How much a fine-tune trained, from its ``summary.json`` (and manifest config): what the report
states beside each LLM row, so that a row trained on a sliver of the data is not read as the method.

The paper fine-tunes for ``PAPER_EPOCHS`` epochs over the whole train split; ``epochs`` here is the
rows the run's optimizer steps took over that same whole split (``max_train_rows`` caps the rows a
run draws from, not the split it is measured against).
"""

from __future__ import annotations

PAPER_EPOCHS = 5
"""LLaRA's fine-tuning length (Liao et al. 2024, section 4; the ``paper`` profile's ``epochs``)."""


def training_amount(run: dict) -> dict:
    """``{"steps", "rows_seen", "tokens_seen", "train_rows", "epochs", "paper_epochs", "backbone"}``
    of a fine-tune (``run``: its summary keys overlaid by its config); ``None`` where unknown."""
    steps = run.get("steps")
    rows = run.get("rows_seen")
    if rows is None and steps is not None and run.get("micro_batch") and run.get("grad_accum"):
        rows = steps * run["micro_batch"] * run["grad_accum"]  # one-process config: grad_accum * world
    train_rows = run.get("dataset_train_rows")
    epochs = rows / train_rows if rows is not None and train_rows else None
    return {
        "steps": steps,
        "rows_seen": rows,
        "tokens_seen": run.get("train_tokens"),
        "train_rows": train_rows,
        "epochs": epochs,
        "paper_epochs": PAPER_EPOCHS,
        "backbone": run.get("backbone"),
        "precision": run.get("precision"),
    }
