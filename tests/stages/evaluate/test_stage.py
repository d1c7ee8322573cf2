"""The evaluate stage end to end on a tiny prompts artifact built by stages.llm (tiny-random backbone)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

from stages.evaluate.evaluate import EvaluateConfig, run
from stages.item_embeddings import save_item_embeddings
from stages.llm import prompts
from stages.llm.prompts import load_rows
from stages.llm.scoring import candidate_answer_ids
from stages.llm.templates import draw_template
from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

N_ITEMS = 30


def make_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    words = ["toy", "story", "heat", "casino", "love", "war", "star", "night", "city", "dark"]
    titles = [f"{words[i % 10].title()} {words[(i * 3 + 1) % 10]} {i}" for i in range(N_ITEMS)]
    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    for user, split in enumerate(["train"] * 2 + ["val"] * 2 + ["test"] * 4):
        seq = rng.choice(N_ITEMS, size=8, replace=False).tolist()
        history, target = seq[:-1], seq[-1]
        pool = [i for i in range(N_ITEMS) if i not in seq]
        cands = None
        if split != "train":
            cands = rng.choice(pool, size=19, replace=False).tolist() + [target]
            rng.shuffle(cands)
        for key, value in zip(EXAMPLE_COLUMNS, (split, user, history, target, cands), strict=True):
            rows[key].append(value)
    return write_prepared(root, titles, rows, name="tiny")


def trained_adapters(llara) -> None:
    """Give the fresh LoRA adapters non-zero B (a fresh B = 0 changes nothing, so an evaluation that
    dropped the adapter would pass unnoticed)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in llara.llm.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from stages.llm.backbone import load_backbone
    from stages.llm.model import build_llara_model, save_trained

    root = tmp_path_factory.mktemp("eval_stage")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(root / "cache"))
        (root / "prompts").mkdir()
        prompts.run(
            prompts.PromptsConfig(backbone="tiny-random"),
            {"dataset": make_dataset(root / "dataset")},
            root / "prompts",
        )
        (root / "emb").mkdir()
        items = torch.randn(N_ITEMS, 64, generator=torch.Generator().manual_seed(0))
        save_item_embeddings(items, root / "emb", model="random")
        llara = build_llara_model(load_backbone("tiny-random"), items)
        trained_adapters(llara)
        save_trained(llara, root / "model")
        (root / "model" / "summary.json").write_text(json.dumps({"schedule": "curriculum"}))
    return {
        "prompts": root / "prompts",
        "embeddings": root / "emb",
        "model": root / "model",
        "cache": root / "cache",
    }


@pytest.fixture(autouse=True)
def _cache(artifacts: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLARA_BACKBONE_CACHE", str(artifacts["cache"]))


def test_zero_shot_generation_writes_predictions_and_metrics(artifacts, tmp_path: Path) -> None:
    config = EvaluateConfig(mode="generation", backbone="tiny-random", max_new_tokens=4)
    summary = run(config, {"prompts": artifacts["prompts"]}, tmp_path)
    assert summary["row"] == "zero-shot" and summary["prompt_mode"] == "text" and summary["rows"] == 4
    preds = pq.read_table(tmp_path / "predictions.parquet").to_pylist()
    assert [p["user_id"] for p in preds] == [4, 5, 6, 7]
    assert all(p["split"] == "test" and p["rank"] is None and isinstance(p["output"], str) for p in preds)
    metrics = pl.read_parquet(tmp_path / "metrics.parquet")
    assert set(metrics["metric"]) == {"valid_ratio", "hr@1", "hr@1|valid"}
    assert (
        metrics["dataset"].unique().to_list() == ["tiny"]
        and (metrics.filter(pl.col("metric") == "hr@1")["n"] == 4).all()
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["mode"] == "generation"


def test_llara_scoring_uses_hybrid_prompts_and_the_trainers_answer_tokens(artifacts, tmp_path: Path) -> None:
    from stages.llm.backbone import load_backbone
    from stages.llm.model import load_trained

    config = EvaluateConfig(  # fp32: the scores are checked against an fp32 forward below
        mode="scoring", split="val", backbone="tiny-random", row="LLaRA(SASRec)", batch_size=2
    )
    config = replace(config, precision="fp32")
    inputs = {k: artifacts[k] for k in ("prompts", "model", "embeddings")}
    summary = run(config, inputs, tmp_path)
    assert summary["prompt_mode"] == "hybrid" and summary["row"] == "LLaRA(SASRec)"
    preds = pq.read_table(tmp_path / "predictions.parquet").to_pylist()
    assert len(preds) == 2 and all(len(p["scores"]) == 20 and 0 <= p["rank"] < 20 for p in preds)
    metrics = pl.read_parquet(tmp_path / "metrics.parquet")
    assert set(metrics["metric"]) == {"valid_ratio", "hr@1", "hr@5", "ndcg@5"}

    # The target's score equals the trained model's own loss-style log-likelihood on prompts.parquet's tokens.
    backbone = load_backbone("tiny-random")
    llara = load_trained(
        backbone,
        load_file(str(artifacts["embeddings"] / "item_embeddings.safetensors"))["item_embeddings"],
        artifacts["model"],
    )
    table = pq.read_table(artifacts["prompts"] / "prompts.parquet").to_pylist()
    stored = [
        r
        for r in table
        if r["split"] == "val" and r["mode"] == "hybrid" and r["template"] == draw_template(0, r["row"], 3)
    ]
    rows = load_rows(artifacts["prompts"], "val", "hybrid")
    assert [r.template for r in rows] == [rec["template"] for rec in stored]
    for rec, row, pred in zip(stored, rows, preds, strict=True):
        ids, n = rec["input_ids"], rec["prompt_length"]
        assert ids[n:] == candidate_answer_ids(backbone.tokenizer, row)[row.target_index]
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = llara.logits(
                x, torch.ones_like(x), torch.tensor(rec["history"]), torch.tensor(rec["candidates"]), True
            )
            with llara.llm.disable_adapter():  # the backbone alone, for contrast
                base = llara.logits(
                    x, torch.ones_like(x), torch.tensor(rec["history"]), torch.tensor(rec["candidates"]), True
                )
        logp = torch.log_softmax(logits[0].double(), -1)
        expected = sum(float(logp[p - 1, ids[p]]) for p in range(n, len(ids)))
        assert pred["scores"][row.target_index] == pytest.approx(expected, abs=1e-3)
        base_logp = torch.log_softmax(base[0].double(), -1)
        without_adapter = sum(float(base_logp[p - 1, ids[p]]) for p in range(n, len(ids)))
        assert abs(pred["scores"][row.target_index] - without_adapter) > 0.1  # the adapter counts


def test_template_all_reports_each_template_and_their_mean(artifacts, tmp_path: Path) -> None:
    config = EvaluateConfig(
        mode="scoring", split="test", backbone="tiny-random", template="all", batch_size=4
    )
    summary = run(config, {"prompts": artifacts["prompts"]}, tmp_path)
    preds = pq.read_table(tmp_path / "predictions.parquet").to_pylist()
    assert summary["templates"] == "all" and len(preds) == 3 * 4
    assert sorted({p["template"] for p in preds}) == [0, 1, 2]
    metrics = pl.read_parquet(tmp_path / "metrics.parquet").filter(pl.col("metric") == "hr@1")
    by_row = dict(zip(metrics["row"], metrics["mean"], strict=True))
    per_template = [by_row[f"zero-shot [template {t}]"] for t in range(3)]
    assert by_row["zero-shot"] == pytest.approx(np.mean(per_template))
    hits = np.array([p["rank"] == 0 for p in preds], dtype=float)
    assert by_row["zero-shot"] == pytest.approx(hits.mean())  # one row per user and template


def test_drawn_templates_are_reproducible_and_follow_the_seed(artifacts) -> None:
    first = [r.template for r in load_rows(artifacts["prompts"], "test", "text", "draw", seed=0)]
    again = [r.template for r in load_rows(artifacts["prompts"], "test", "text", "draw", seed=0)]
    assert first == again == [draw_template(0, row, 3) for row in range(4)]
    draws = {s: [draw_template(s, row, 3) for row in range(30)] for s in range(3)}
    assert all(set(d) == {0, 1, 2} for d in draws.values()) and draws[0] != draws[1]
    fixed = load_rows(artifacts["prompts"], "test", "text", 2)
    assert {r.template for r in fixed} == {2} and [r.row_id for r in fixed] == [0, 1, 2, 3]


def test_a_finetune_is_refused_on_prompts_or_embeddings_that_do_not_fit(artifacts, tmp_path: Path) -> None:
    import shutil

    from stages.errors import DataError

    model = tmp_path / "model"
    shutil.copytree(artifacts["model"], model)
    sha = __import__("hashlib").sha256((artifacts["embeddings"] / "item_embeddings.safetensors").read_bytes())
    trained = {"n_items": N_ITEMS, "embedding_dim": 64, "embeddings_sha256": sha.hexdigest()}
    summary = {"schedule": "curriculum", "dataset": "tiny", "backbone": "tiny-random", "trained_on": trained}
    (model / "summary.json").write_text(json.dumps(summary))
    config = EvaluateConfig(mode="scoring", split="val", backbone="tiny-random", batch_size=2)
    inputs = {"prompts": artifacts["prompts"], "model": model, "embeddings": artifacts["embeddings"]}
    run(config, inputs, tmp_path / "ok")  # the pair it was trained on

    (model / "summary.json").write_text(json.dumps({**summary, "dataset": "lastfm"}))
    with pytest.raises(DataError, match="dataset.*trained on 'lastfm'") as error:
        run(config, inputs, tmp_path / "a")
    assert str(model / "summary.json") in str(error.value) and "prompts.json" in str(error.value)
    (model / "summary.json").write_text(json.dumps(summary))

    other = tmp_path / "emb"
    other.mkdir()
    save_file({"item_embeddings": torch.randn(N_ITEMS + 1, 64)}, str(other / "item_embeddings.safetensors"))
    with pytest.raises(DataError, match="31 rows for the 30 items"):
        run(config, {**inputs, "embeddings": other}, tmp_path / "b")
    save_file({"item_embeddings": torch.randn(N_ITEMS, 64)}, str(other / "item_embeddings.safetensors"))
    with pytest.raises(DataError, match="not the embeddings the model was trained with"):
        run(config, {**inputs, "embeddings": other}, tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# bf16 keeps 8 significant bits: one rounding moves a value by at most 2**-8 of it.
BF16_UNIT = 2.0**-8


def test_bf16_scoring_of_a_hybrid_llara_model_is_close_to_fp32(artifacts, tmp_path: Path) -> None:
    """bf16 weights through the whole hybrid path (projector output, LoRA, masked scorer) on the CPU.

    The tolerance is bf16's own. A logit z_j = sum_i W_ji h_i made of bf16 values is off by at most
    one unit of bf16 rounding (2**-8) of sum_i |W_ji h_i| per rounding on its way: one per residual
    write (attention and MLP of each of the 2 layers) and the head's, 5 in all. A token's
    log-probability z_t - logsumexp(z) then moves by at most twice that; a candidate's score, a sum
    over its answer tokens, by that times its token count. Two candidates whose fp32 scores differ
    by more than both their bounds must keep their order, and the target's rank stays within the
    candidates that could cross it. (The previous rtol of 5 % on the sums was wider than the gaps
    between candidates.)
    """
    from stages.llm.backbone import load_backbone
    from stages.llm.model import load_trained

    inputs = {k: artifacts[k] for k in ("prompts", "model", "embeddings")}
    scores, ranks = {}, {}
    for precision in ("fp32", "bf16"):
        config = EvaluateConfig(mode="scoring", split="val", backbone="tiny-random", precision=precision)
        run(config, inputs, tmp_path / precision)
        preds = pq.read_table(tmp_path / precision / "predictions.parquet").to_pylist()
        scores[precision] = np.array([p["scores"] for p in preds])
        ranks[precision] = [p["rank"] for p in preds]
    assert np.isfinite(scores["bf16"]).all() and not np.array_equal(scores["bf16"], scores["fp32"])

    backbone = load_backbone("tiny-random")
    rows = load_rows(artifacts["prompts"], "val", "hybrid")
    llara = load_trained(
        backbone,
        load_file(str(artifacts["embeddings"] / "item_embeddings.safetensors"))["item_embeddings"],
        artifacts["model"],
    )
    head = llara.llm.get_output_embeddings().weight.abs()  # (vocab, d)
    scale = 0.0  # the largest sum |W_j,i h_i| of a logit: its magnitude before any cancellation
    stored = pq.read_table(artifacts["prompts"] / "prompts.parquet").to_pylist()
    for rec in (r for r in stored if r["split"] == "val" and r["mode"] == "hybrid"):
        x, history, candidates = (torch.tensor(rec[k]) for k in ("input_ids", "history", "candidates"))
        with torch.no_grad():
            embeds = llara.inputs_embeds(x[None], history, candidates, True)
            hidden = llara.llm(inputs_embeds=embeds, output_hidden_states=True).hidden_states[-1]
        scale = max(scale, float((hidden[0].abs() @ head.T).max()))
    roundings = 2 * backbone.model.config.num_hidden_layers + 1
    per_token = 2 * roundings * BF16_UNIT * scale
    tokens = np.array([[len(a) for a in candidate_answer_ids(backbone.tokenizer, r)] for r in rows])
    bound = tokens * per_token  # (rows, candidates): the most a candidate's summed score may move
    gap = np.abs(scores["bf16"] - scores["fp32"])
    assert (gap <= bound).all(), f"bf16 moved a score {(gap / bound).max():.2f} times its bound"
    separated = 0
    for r, (row, fp32) in enumerate(zip(rows, scores["fp32"], strict=True)):
        reach = bound[r][:, None] + bound[r][None, :]  # (candidates, candidates)
        apart = np.abs(fp32[:, None] - fp32[None, :]) > reach
        order = scores["bf16"][r][:, None] > scores["bf16"][r][None, :]
        assert (order == (fp32[:, None] > fp32[None, :]))[apart].all(), r  # separated pairs keep their order
        separated += int(apart.sum())
        # the target's rank: at least the candidates surely above it, at most those plus the close ones
        t = row.target_index
        above = int((fp32 - fp32[t] > reach[t]).sum())
        close = int((~apart[t]).sum()) - 1
        assert above <= ranks["bf16"][r] <= above + close and above <= ranks["fp32"][r] <= above + close
    assert separated > 0, "no pair of candidates is separated by the bound: the test would compare nothing"
