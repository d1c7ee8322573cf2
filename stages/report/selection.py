"""What the report says about model selection: each LLM row's selected step and its templates (the
validation curves are ``stages.report.learning``'s)."""

from __future__ import annotations

import json
from pathlib import Path

from stages.errors import DataError

RowKey = tuple[str, str, str, str, str]
"""(dataset, row, mode, split, backbone): one line of the report's table."""


def read_row_notes(path: Path) -> tuple[RowKey, dict] | None:
    """Selected step, template choice and training amount of an evaluate artifact (its metrics.json)."""
    doc_path = path / "metrics.json" if path.is_dir() else path
    if doc_path.name != "metrics.json" or not doc_path.is_file():
        return None
    try:
        doc = json.loads(doc_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(doc_path, None, f"not valid JSON ({e})") from e
    if "metrics" not in doc:
        return None
    key = tuple(str(doc.get(k)) for k in ("dataset", "row", "mode", "split", "backbone"))
    return key, {
        "seed": doc.get("seed", 0),
        "selection": doc.get("selection"),
        "templates": doc.get("templates"),
        "training": doc.get("training"),
        "precision": doc.get("precision"),
    }


def _templates_text(value: object) -> str:
    if value == "draw":
        return "drawn per row"
    if value == "all":
        return "all (mean)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "–" if value is None else str(value)


def notes_cells(notes: list[dict]) -> tuple[str, str]:
    """(selected step, templates) cells of one table line from its seeds' notes."""
    steps = []
    for note in sorted(notes, key=lambda n: n["seed"]):
        sel = note.get("selection")
        if sel and sel.get("best_step") is not None:
            steps.append(f"{sel['best_step']}/{sel['last_step']}")
    metric = next((n["selection"]["metric"] for n in notes if n.get("selection")), None)
    selected = (", ".join(steps) + f" ({metric})") if steps else "–"
    templates = sorted({_templates_text(n.get("templates")) for n in notes})
    return selected, ", ".join(templates) if templates else "–"
