"""Stage ``report``: our result rows side by side with the published numbers, plus figures.

Inputs: any number of roles (names are free; they label training curves), each a directory or file:

- a directory holding ``metrics.parquet`` (evaluate, SR stages), or a ``.parquet`` file, with the
  long-form result columns of ``stages.evaluate.aggregate`` (``dataset``, ``row``, ``mode``,
  ``metric``, ``mean``, ``ci_low``, ``ci_high``, ``n``, ``seed``, ``backbone``, ``split``);
- a ``metrics.json`` file (evaluate's summary: labels + ``metrics`` dict);
- a directory holding ``train_log.parquet`` (finetune: ``step``, ``loss``, ``hybrid`` ...), with its
  ``summary.json`` when present.

Outputs: ``results.parquet`` (seed-aggregated rows joined with the published values), ``report.md``,
``hr1.png`` (HR@1 with 95 % CIs vs published), ``loss.png`` and ``hybrid.png`` (when train logs are
given), ``validation.png`` (the fine-tunes' validation curves against steps and tokens, with the
zero-shot and recommender rows as lines; ``stages.report.learning``).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from stages.errors import DataError
from stages.inputs import read_json
from stages.report.config import SR_ROW_NAMES, ReportConfig
from stages.report.learning import learning_curves, reference_lines
from stages.report.plots import caption, plot_hr1, plot_learning_curves, plot_probes, plot_training
from stages.report.published import (
    SOURCE_LABELS,
    SOURCES,
    canonical_dataset,
    load_published,
    published_model,
    published_wide,
)
from stages.report.seeds import RESULT_SCHEMA, aggregate_seeds
from stages.report.selection import RowKey, notes_cells, read_row_notes
from stages.report.training import FOOTNOTE, opening, precision_cell, short, trained_cell

NAME = "report"
METRIC_COLUMNS = (
    ("valid_ratio", "ValidRatio"),
    ("hr@1", "HR@1"),
    ("hr@1|valid", "correct/valid"),
    ("hr@5", "HR@5"),
    ("ndcg@5", "NDCG@5"),
)
# Where a reader goes next; `llara --help` names the same places (tests/test_docs_links.py).
SEE_ALSO = (
    "How much of LLaRA the project reproduces today: README.md, \"What it reproduces today\". "
    "Every result with its command: docs/results.md; why the small LLM's rows are not learning yet: "
    "docs/learning.md; every document: docs/README.md (paths in the llara-pipeline repository)."
)
SHORT = {
    "paper_table2": "paper",
    "repo_readme_2024_07": "README 2024-07",
    "reproduction_report": "reproduction",
}


def _read_results(role: str, path: Path) -> pl.DataFrame | None:
    if path.is_dir():
        path = path / "metrics.parquet" if (path / "metrics.parquet").is_file() else path / "metrics.json"
        if not path.is_file():
            return None
    if path.suffix == ".parquet":
        df = pl.read_parquet(path)
    elif path.suffix == ".json":
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(path, None, f"not valid JSON ({e})") from e
        if "metrics" not in doc and isinstance(doc.get("test"), dict):
            return _recommender_results(doc)
        labels = {k: doc.get(k) for k in ("dataset", "row", "mode", "split", "backbone")}
        df = pl.DataFrame(
            [
                {**labels, "metric": m, "seed": doc.get("seed", 0), **v}
                for m, v in doc.get("metrics", {}).items()
            ]
        )
    else:
        return None
    missing = [c for c in RESULT_SCHEMA if c not in df.columns and c != "seed"]
    if missing:
        raise DataError(path, missing[0], f"result column missing (input {role!r})")
    if "seed" not in df.columns:
        df = df.with_columns(pl.lit(0).alias("seed"))
    return df.select([pl.col(c).cast(t) for c, t in RESULT_SCHEMA.items()])


def _recommender_results(doc: dict) -> pl.DataFrame:
    """Test metrics of a ``pretrain`` artifact (a sequential recommender) as result rows.

    A recommender scores every candidate, so its ValidRatio is 1 by construction.
    """
    row = SR_ROW_NAMES.get(doc["model"], doc["model"])
    labels = {
        "dataset": doc.get("dataset"),
        "row": row,
        "mode": "scoring",
        "split": "test",
        "backbone": f"{row} ({doc.get('loss', '')})",
        "seed": doc.get("seed", 0),
    }
    n = next(iter(doc["test"].values()))["n"]
    metrics = {"valid_ratio": {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": n}, **doc["test"]}
    df = pl.DataFrame([{**labels, "metric": m, **v} for m, v in metrics.items()])
    return df.select([pl.col(c).cast(t) for c, t in RESULT_SCHEMA.items()])


def _read_log(path: Path) -> tuple[pl.DataFrame, dict] | None:
    """An LLM fine-tuning log (step, loss, hybrid); recommender epoch logs are not plotted here."""
    log_path = path / "train_log.parquet" if path.is_dir() else None
    if log_path is None or not log_path.is_file():
        return None
    log = pl.read_parquet(log_path)
    if not {"step", "loss", "hybrid"} <= set(log.columns):
        return None
    summary_path = path / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    return log, summary


def build_table(results: pl.DataFrame) -> pl.DataFrame:
    """Seed-aggregated rows with the published HR@1 / ValidRatio of the matching (dataset, model)."""
    table = aggregate_seeds(results)
    table = table.with_columns(
        pl.col("dataset").map_elements(canonical_dataset, return_dtype=pl.Utf8).alias("published_dataset"),
        pl.col("row").map_elements(published_model, return_dtype=pl.Utf8).alias("published_model"),
    )
    wide = published_wide().rename({"dataset": "published_dataset", "model": "published_model"})
    return table.join(wide, on=["published_dataset", "published_model"], how="left")


def _fmt(value, ci_low=None, ci_high=None) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    text = f"{value:.4f}"
    if ci_low is not None and ci_low == ci_low:
        text += f" [{ci_low:.3f}, {ci_high:.3f}]"
    return text


def render_markdown(
    table: pl.DataFrame,
    config: ReportConfig,
    figures: list[str],
    notes: dict[RowKey, list[dict]] | None = None,
) -> str:
    """report.md: one table per dataset (ours with CIs, published by source), then the sources.

    ``notes``: per table line, each seed's selected fine-tuning step and evaluation templates."""
    notes = notes or {}
    lines = [f"# {config.title}", "", *opening(notes)]
    lines.append(
        "HitRatio@1 = correct / total under the paper's rule (one candidate title in the first line of"
    )
    lines.append(
        "the answer); scoring rows rank the candidates by likelihood (ValidRatio 1 by construction)."
    )
    lines.append("Intervals: 95 % bootstrap over users. Multi-seed rows: mean over seeds, ± std (min–max).")
    lines.append(
        "Selected step: the fine-tuning step kept on validation / the steps run (per seed); templates:"
    )
    lines.append(
        "the prompt templates the evaluation used (drawn per row from the seed, or all with their mean)."
    )
    lines.append("Trained: the fine-tune's optimizer steps, rows and tokens, and the epochs they make.")
    lines.append("Precision: the LLM's at evaluation (bf16 mixed or fp32), and at fine-tuning if other.")
    lines.append("")
    keys = ["dataset", "row", "mode", "split", "backbone"]
    for dataset in table["dataset"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("dataset") == dataset)
        head = ["row", "mode", "split", "backbone", "precision", "seeds", "n", "selected step", "templates"]
        head += ["trained"]
        head += [label for _, label in METRIC_COLUMNS]
        head += [f"published HR@1 ({SHORT[s]})" for s in SOURCES]
        head += [f"published ValidRatio ({SHORT[s]})" for s in SOURCES]
        lines += [f"## {dataset}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for group in part.partition_by(keys, maintain_order=True):
            by_metric = {r["metric"]: r for r in group.iter_rows(named=True)}
            first = group.row(0, named=True)
            cells = [
                first["row"],
                first["mode"],
                first["split"],
                first["backbone"],
                precision_cell(notes.get(key := tuple(str(first[k]) for k in keys), [])),
                first["seed_list"],
                str(max(r["n"] for r in by_metric.values())),
                *notes_cells(notes.get(key, [])),
                trained_cell(notes.get(key, [])),
            ]
            for metric, _ in METRIC_COLUMNS:
                r = by_metric.get(metric)
                cell = _fmt(r["mean"], r["ci_low"], r["ci_high"]) if r else "–"
                if r and r["seeds"] > 1:
                    cell += f" ±{r['seed_std']:.3f} ({r['seed_min']:.3f}–{r['seed_max']:.3f})"
                cells.append(cell)
            cells += [_fmt(first[f"hr1_{s}"]) for s in SOURCES]
            cells += [_fmt(first[f"valid_{s}"]) for s in SOURCES]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if any(short(n.get("training")) for k, seeds in notes.items() if k[0] == dataset for n in seeds):
            lines += [FOOTNOTE, ""]
        missing = _published_only(part, canonical_dataset(dataset))
        if missing:
            lines += [
                f"Published rows for {canonical_dataset(dataset)} without a result of ours: " + missing,
                "",
            ]
    lines += ["## Sources of the published numbers", ""]
    lines += [f"- `{s}`: {SOURCE_LABELS[s]}" for s in SOURCES]
    lines += [
        "",
        "Our `zero-shot` row corresponds to the paper's `Llama2` row (on our backbone).",
        "Rows on the authors' released SASRec checkpoint or their SASRec architecture (`released`,",
        "`conv`) are set beside the published SASRec and LLaRA(SASRec) numbers.",
        "",
        "## Where this stands",
        "",
        SEE_ALSO,
        "",
    ]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def _published_only(part: pl.DataFrame, dataset: str) -> str:
    pub = load_published().filter(pl.col("dataset") == dataset)
    ours = set(part["published_model"].to_list())
    rows = []
    for model in pub["model"].unique(maintain_order=True).to_list():
        if model in ours:
            continue
        sub = pub.filter(pl.col("model") == model)
        vals = ", ".join(
            f"{SHORT[s]} {h:.4f}" for s, h in zip(sub["source"], sub["hit_ratio_at_1"], strict=True)
        )
        rows.append(f"{model} ({vals})")
    return "; ".join(rows)


def run(config: ReportConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """Collect results and train logs from ``inputs``; write the table, report.md and figures."""
    frames, logs, infos, summaries = [], {}, [], {}
    notes: dict[RowKey, list[dict]] = {}
    for role, value in sorted(inputs.items()):
        path = Path(value)
        if not path.exists():
            raise DataError(path, None, f"input {role!r} does not exist")
        found = _read_results(role, path)
        if found is not None:
            frames.append(found)
            note = read_row_notes(path)
            if note is not None:
                notes.setdefault(note[0], []).append(note[1])
        log = _read_log(path)
        if log is not None:
            logs[role], summary = log
            infos.append(summary)
            summaries[role] = summary
    if not frames and not logs:
        raise DataError(
            out_dir, None, "no metrics.parquet / metrics.json / train_log.parquet among the inputs"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    table = None
    if frames:
        results = pl.concat(frames, how="vertical_relaxed")
        table = build_table(results)
        table.write_parquet(out_dir / "results.parquet")
        plot_hr1(table, out_dir / "hr1.png", config.metric)
        figures.append("hr1.png")
    if logs:
        info = {
            "dataset": config.dataset or _join_field(infos, "dataset"),
            "backbone": config.backbone or _join_field(infos, "backbone"),
            "seeds": _join_field(infos, "seed"),
            "split": "train",
        }
        plot_training(logs, out_dir / "loss.png", "loss", "training loss", info, config.smooth)
        plot_training(logs, out_dir / "hybrid.png", "hybrid", "hybrid-prompt fraction", info, config.smooth)
        figures += ["loss.png", "hybrid.png"]
        curves, metric = learning_curves(summaries, logs)
        if curves:
            lines = reference_lines(inputs, metric)
            plot_learning_curves(curves, lines, metric, out_dir / "validation.png", info)
            figures.append("validation.png")
            if any(c.probes for c in curves):
                n = max((int(s.get("n_candidates") or 20) for s in summaries.values()), default=20)
                plot_probes([c for c in curves if c.probes], lines, info, n, out_dir / "probes.png")
                figures.append("probes.png")
    if table is None:
        table = build_table(pl.DataFrame(schema=RESULT_SCHEMA))
    markdown = render_markdown(table, config, figures, notes)
    if logs:
        markdown += (
            "\nTraining curves: "
            + caption([info["dataset"]], ["train"], logs.keys(), [info["seeds"]], [info["backbone"]]).replace(
                "\n", " | "
            )
            + "\n"
        )
    (out_dir / "report.md").write_text(markdown)
    return {"rows": 0 if table is None else int(table.height), "figures": figures, "train_logs": sorted(logs)}


def _join_field(infos: list[dict], key: str) -> str:
    values = sorted({str(i[key]) for i in infos if i.get(key) is not None})
    if key == "seed" and not values:
        values = sorted({str(i.get("config", {}).get("seed")) for i in infos if i.get("config")})
    return ", ".join(values) if values else ""
