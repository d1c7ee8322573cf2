"""Report figures (matplotlib, Agg backend): HR@1 with CIs vs published values, loss, hybrid fraction,
and the fine-tunes' learning curves on validation.

Every figure's title names the dataset(s), split(s), rows, seeds and backbone(s) it shows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from stages.report.learning import Curve, Reference  # noqa: E402
from stages.report.published import SOURCE_LABELS, SOURCES  # noqa: E402

SOURCE_MARKERS = {"paper_table2": "D", "repo_readme_2024_07": "s", "reproduction_report": "^"}


def _join(values) -> str:
    vals = sorted({p.strip() for v in values if v is not None for p in str(v).split(",") if p.strip()})
    return ", ".join(vals) if vals else "n/a"


def caption(datasets, splits, rows, seeds, backbones, width: int | None = None) -> str:
    """What a figure shows; ``width`` wraps each line (figure titles are cut at the figure's edge)."""
    lines = [
        f"dataset: {_join(datasets)} | split: {_join(splits)} | rows: {_join(rows)}",
        f"seeds: {_join(seeds)} | backbone: {_join(backbones)}",
    ]
    return "\n".join(textwrap.fill(line, width) if width else line for line in lines)


def plot_hr1(table: pl.DataFrame, path: Path, metric: str = "hr@1") -> Path:
    """One panel per dataset: our ``metric`` per row (bar, 95 % CI error bar) and published HR@1 markers.

    ``table``: the report table (``dataset``, ``row``, ``mode``, ``metric``, ``mean``, ``ci_low``,
    ``ci_high``, ``seeds``, ``seed_list``, ``split``, ``backbone``, ``hr1_<source>`` columns).
    """
    part = table.filter(pl.col("metric") == metric)
    datasets = part["dataset"].unique(maintain_order=True).to_list() or ["n/a"]
    fig, axes = plt.subplots(len(datasets), 1, figsize=(13, 3.8 * len(datasets)), squeeze=False)
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        rows = part.filter(pl.col("dataset") == dataset)
        labels = [f"{r}\n[{m}]" for r, m in zip(rows["row"], rows["mode"], strict=True)]
        x = np.arange(len(labels))
        mean = rows["mean"].to_numpy()
        err = np.vstack([mean - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - mean])
        ax.bar(x, mean, color="#4C72B0", alpha=0.8, label=f"ours: {metric} (95 % bootstrap CI)")
        ax.errorbar(x, mean, yerr=np.clip(err, 0, None), fmt="none", ecolor="black", capsize=4)
        for source in SOURCES:
            col = f"hr1_{source}"
            if col in rows.columns and rows[col].drop_nulls().len() > 0:
                ax.scatter(
                    x,
                    rows[col].to_numpy(),
                    marker=SOURCE_MARKERS[source],
                    s=45,
                    zorder=3,
                    label=f"published HR@1: {SOURCE_LABELS[source]}",
                )
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(metric)
        ax.set_ylim(0, max(0.6, float(np.nanmax(np.append(rows["ci_high"].to_numpy(), 0))) + 0.05))
        ax.set_title(
            f"{metric} vs published — "
            + caption([dataset], rows["split"], rows["row"], rows["seed_list"], rows["backbone"], width=150),
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training(
    logs: dict[str, pl.DataFrame], path: Path, column: str, ylabel: str, info: dict[str, str], smooth: int = 1
) -> Path:
    """``column`` over optimizer steps, one line per run (train_log.parquet: step, loss, hybrid ...).

    ``info`` gives the caption's dataset, split, seeds and backbone; ``smooth`` is a moving-average
    window in steps (1: raw).
    """
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, log in logs.items():
        if column not in log.columns or log.height == 0:
            continue
        y = log[column].cast(pl.Float64).to_numpy()
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            steps = log["step"].to_numpy()[smooth - 1 :]
        else:
            steps = log["step"].to_numpy()
        ax.plot(steps, y, label=label, lw=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(
        f"{ylabel} — "
        + caption(
            [info.get("dataset")],
            [info.get("split", "train")],
            logs.keys(),
            [info.get("seeds")],
            [info.get("backbone")],
            width=100,
        ),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    if logs:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _titled(
    fig: plt.Figure, heading: str, splits: list[str], curves: list[Curve], info: dict[str, str]
) -> plt.Figure:
    """``fig`` with the caption of a curves figure (dataset, splits, runs, seeds, backbone), laid out."""
    names = [c.label for c in curves]
    text = caption(
        [info.get("dataset")], splits, names, [info.get("seeds")], [info.get("backbone")], width=130
    )
    fig.suptitle(f"{heading} — {text}", fontsize=9)
    fig.tight_layout()
    return fig


def learning_figure(
    curves: list[Curve], references: list[Reference], metric: str, info: dict[str, str]
) -> plt.Figure:
    """Validation ``metric`` against optimizer steps (left) and training tokens (right).

    ``curves``: one ``Curve`` per fine-tune (a marker on every validated step,
    a star on the kept one); ``references``: ``Reference`` rows (zero-shot, recommenders) drawn as
    horizontal lines on both panels. The y range starts at 0 for a hit ratio and always holds every
    point and reference line with a margin, so two equal points read as a flat line, not an empty plot.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, xkey, xlabel in ((axes[0], "steps", "optimizer step"), (axes[1], "tokens", "training tokens")):
        for i, curve in enumerate(curves):
            x = getattr(curve, xkey)
            if x is None:
                continue
            color = colors[i % len(colors)]
            ax.plot(x, curve.values, marker="o", ms=4, lw=1.2, color=color, label=curve.label)
            if curve.best_step in curve.steps:
                k = curve.steps.index(curve.best_step)
                ax.plot([x[k]], [curve.values[k]], marker="*", ms=13, color=color, ls="none")
        for j, ref in enumerate(references):
            style = ("--", ":", "-.")[j % 3]
            ax.axhline(ref.value, color="0.35", ls=style, lw=1.1, label=f"{ref.label} {ref.value:.3f}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    values = [v for c in curves for v in c.values] + [r.value for r in references]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if metric.endswith("hr1"):
        low, high = 0.0, min(1.0, max(0.1, high * 1.15 + 0.02))
    else:
        pad = max(0.05 * abs(high), (high - low) * 0.1, 1e-3)
        low, high = low - pad, high + pad
    axes[0].set_ylim(low, high)
    axes[0].set_ylabel(f"validation {metric}")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _titled(fig, f"validation {metric} (star: kept step)", ["val"], curves, info)


def plot_learning_curves(
    curves: list[Curve], references: list[Reference], metric: str, path: Path, info: dict[str, str]
) -> Path:
    """``learning_figure`` saved to ``path``."""
    fig = learning_figure(curves, references, metric, info)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def probes_figure(
    curves: list[Curve],
    references: list[Reference],
    info: dict[str, str],
    n_candidates: int,
    nll_references: list[Reference] | None = None,
) -> plt.Figure:
    """The learning probes: HR@1 (top) and candidate NLL (bottom) against steps and tokens.

    Validation solid, the fit sample of training rows dashed, one colour per fine-tune; chance
    (1 / candidates, ln candidates) and the ``references`` (zero-shot, recommenders on validation)
    as grey lines on the HR@1 panels, ``nll_references`` on the NLL panels. Fit at chance: the model
    does not learn the task; fit high and validation low: it does not generalise.
    """
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), sharey="row")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, (xkey, xlabel) in enumerate((("steps", "optimizer step"), ("tokens", "training tokens"))):
        for row, (probe, chance) in enumerate(
            (("hr1", 1 / n_candidates), ("nll", float(np.log(n_candidates))))
        ):
            ax = axes[row, col]
            for i, curve in enumerate(curves):
                x = getattr(curve, xkey)
                if x is None:
                    continue
                for part, style in (("val", "-"), ("fit", "--")):
                    values = curve.probes.get(f"{part}_{probe}")
                    if values:
                        label = f"{curve.label} {part}"
                        ax.plot(
                            x, values, ls=style, marker="o", ms=3, color=colors[i % len(colors)], label=label
                        )
            ax.axhline(chance, color="0.6", lw=1.0, label=f"chance {chance:.3f}")
            lines = references if probe == "hr1" else nll_references or []
            for j, ref in enumerate(lines):
                style = ("--", ":", "-.")[j % 3]
                ax.axhline(ref.value, color="0.35", ls=style, lw=1.0, label=f"{ref.label} {ref.value:.3f}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel({"hr1": "HR@1", "nll": "candidate NLL (nats)"}[probe] if col == 0 else "")
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylim(0.0, 1.0)
    axes[0, 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[1, 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    heading = "learning probes: validation (solid) and fit on training rows (dashed)"
    return _titled(fig, heading, ["val", "train"], curves, info)


def plot_probes(
    curves: list[Curve],
    references: list[Reference],
    info: dict[str, str],
    n_candidates: int,
    path: Path,
    nll_references: list[Reference] | None = None,
) -> Path:
    """``probes_figure`` saved to ``path``."""
    fig = probes_figure(curves, references, info, n_candidates, nll_references)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
