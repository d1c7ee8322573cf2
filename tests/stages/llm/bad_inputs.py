"""Broken or mismatched inputs of the LLM stages (finetune, evaluate), reusable by CLI-level tests.

``CASES``: ``(case_id, build, expected_field, expected_file)``. ``build(world)`` publishes the broken
input as a real artifact of ``world.store`` (its manifest matches its bytes, so only the stage's own
checks can catch it) and returns the ``llara`` arguments that feed it to a stage. ``expected_field``
is the ``field`` of the :class:`stages.errors.DataError` (``""``: the whole file) and
``expected_file`` a name the error line must contain.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from artifacts import Artifact, ArtifactStore


@dataclass
class World:
    """A store with one good chain: dataset -> prompts (tiny-random) + embeddings -> fine-tune."""

    root: Path
    store: ArtifactStore
    dataset: Artifact
    prompts: Artifact
    embeddings: Artifact
    model: Artifact
    tiny_dir: Path  # the tiny-random backbone's Hugging Face directory


def copy_artifact(
    world: World, source: Artifact, case: str, edit: Callable[[Path], None], **config
) -> Artifact:
    """A new artifact of ``source``'s stage: its files, edited, with ``config`` as the stage config."""

    def produce(out: Path) -> None:
        for file in source.manifest["files"]:
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.path / file, out / file)
        edit(out)

    inputs = {role: world.store.get(i) for role, i in source.manifest["inputs"].items()}
    stage_config = {"config": {**source.manifest["config"].get("config", {}), **config}, "case": case}
    artifact, _ = world.store.build(source.stage, stage_config, inputs, "bad-inputs", produce)
    return artifact


def hf_copy(world: World, case: str, edit: Callable[[Path], None] = lambda d: None) -> str:
    """``hf:DIR`` for a copy of the tiny-random backbone, edited."""
    target = world.root / "hf" / case
    if not target.exists():
        shutil.copytree(world.tiny_dir, target)
        edit(target)
    return f"hf:{target}"


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        doc = json.loads((directory / name).read_text())
        change(doc)
        (directory / name).write_text(json.dumps(doc))

    return edit


def write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return edit


def truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[: int(len(data) * keep)])

    return edit


def embeddings(rows: int, dim: int) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        save_file({"item_embeddings": torch.randn(rows, dim)}, str(directory / "item_embeddings.safetensors"))

    return edit


# ----- finetune ------------------------------------------------------------------------------


def _finetune(world: World, prompts: Artifact | None = None, emb: Artifact | None = None) -> list[str]:
    p, e = prompts or world.prompts, emb or world.embeddings
    return ["finetune", "--prompts", str(p.path), "--embeddings", str(e.path), "--profile", "smoke"]


def _prompts_for(
    world: World, case: str, spec: str, edit: Callable[[Path], None] = lambda d: None
) -> Artifact:
    """The good prompts, relabelled as built for ``spec`` (manifest and prompts.json agree)."""

    def relabel(directory: Path) -> None:
        edit_json("prompts.json", lambda d: d.update(backbone=spec))(directory)
        edit(directory)

    return copy_artifact(world, world.prompts, case, relabel, backbone=spec)


def _vocabulary_changed(world: World) -> list[str]:
    from transformers import AutoTokenizer

    def add_token(directory: Path) -> None:  # the backbone's tokenizer changed after the prompts
        tokenizer = AutoTokenizer.from_pretrained(directory)
        tokenizer.add_tokens(["brandnewtoken"])
        tokenizer.save_pretrained(directory)

    spec = hf_copy(world, "vocab", add_token)
    return _finetune(world, _prompts_for(world, "vocab", spec))


def _hf(case: str, edit: Callable[[Path], None]) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        return _finetune(world, _prompts_for(world, case, hf_copy(world, case, edit)))

    return build


def _remove(*names: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        for name in names:
            (directory / name).unlink()

    return edit


# ----- evaluate ------------------------------------------------------------------------------


def _evaluate(
    world: World, prompts: Artifact | None = None, model: Artifact | None = None, **extra
) -> list[str]:
    argv = ["evaluate", "--prompts", str((prompts or world.prompts).path)]
    argv += ["--model", str((model or world.model).path), "--profile", "smoke"]
    for flag, artifact in extra.items():
        argv += [f"--{flag}", str(artifact.path)]
    return argv


def _eval_embeddings(case: str, rows: int, dim: int) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        emb = copy_artifact(world, world.embeddings, case, embeddings(rows, dim))
        return _evaluate(world, embeddings=emb)

    return build


def _eval_model(case: str, edit: Callable[[Path], None]) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        return _evaluate(world, model=copy_artifact(world, world.model, case, edit))

    return build


def _eval_prompts(case: str, edit: Callable[[Path], None]) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        return _evaluate(world, prompts=copy_artifact(world, world.prompts, case, edit))

    return build


def _eval_other_backbone(world: World) -> list[str]:
    # prompts built for an identical copy of the backbone under another spec: the token ids would
    # even agree, but the run would mix two backbones' artifacts
    return _evaluate(world, prompts=_prompts_for(world, "other-backbone", hf_copy(world, "other-backbone")))


def drop(name: str, key: str) -> Callable[[Path], None]:
    return edit_json(name, lambda doc: doc.pop(key))


def _ft_prompts(case: str, edit: Callable[[Path], None]) -> Callable[[World], list[str]]:
    return lambda w: _finetune(w, copy_artifact(w, w.prompts, case, edit))


def _ft_embeddings(case: str, edit: Callable[[Path], None]) -> Callable[[World], list[str]]:
    return lambda w: _finetune(w, emb=copy_artifact(w, w.embeddings, case, edit))


def _ft_backbone_missing(world: World) -> list[str]:
    return _finetune(world, _prompts_for(world, "nowhere", f"hf:{world.root / 'nowhere'}"))


EMB, WEIGHTS, PROJECTOR = "item_embeddings.safetensors", "model.safetensors", "projector.safetensors"
JUNK_HEADER = b"\x10\0\0\0\0\0\0\0{not json at all"

CASES: list[tuple[str, Callable[[World], list[str]], str, str]] = [
    # finetune
    ("ft-prompts-other-vocabulary", _vocabulary_changed, "vocab_size", "prompts.json"),
    ("ft-prompts-json-invalid", _ft_prompts("pj", write("prompts.json", "{")), "", "prompts.json"),
    ("ft-prompts-json-no-key", _ft_prompts("pk", drop("prompts.json", "n_items")), "n_items", "prompts.json"),
    ("ft-embeddings-wrong-rows", _ft_embeddings("rows", embeddings(30, 64)), "item_embeddings", EMB),
    ("ft-embeddings-truncated", _ft_embeddings("cut", truncate(EMB)), "", EMB),
    ("ft-embeddings-corrupt", _ft_embeddings("junk", write(EMB, JUNK_HEADER)), "", EMB),
    ("ft-hf-dir-missing", _ft_backbone_missing, "", "nowhere"),
    ("ft-hf-no-config", _hf("no-config", _remove("config.json")), "", "config.json"),
    ("ft-hf-no-tokenizer", _hf("no-tokenizer", _remove("tokenizer.json")), "tokenizer", "no-tokenizer"),
    ("ft-hf-no-weights", _hf("no-weights", _remove("model.safetensors")), "weights", "no-weights"),
    ("ft-hf-truncated-weights", _hf("cut-weights", truncate(WEIGHTS, 0.9)), "", WEIGHTS),
    # evaluate
    ("ev-prompts-other-backbone", _eval_other_backbone, "backbone", "prompts.json"),
    ("ev-prompts-json-invalid", _eval_prompts("ev-pj", write("prompts.json", "[1, 2")), "", "prompts.json"),
    ("ev-prompts-no-key", _eval_prompts("pk2", drop("prompts.json", "backbone")), "backbone", "prompts.json"),
    ("ev-embeddings-wrong-rows", _eval_embeddings("ev-rows", 30, 64), "item_embeddings", EMB),
    ("ev-embeddings-wrong-dim", _eval_embeddings("ev-dim", 40, 32), "item_embeddings", EMB),
    ("ev-projector-truncated", _eval_model("ev-proj", truncate(PROJECTOR)), "", PROJECTOR),
    ("ev-summary-json-invalid", _eval_model("ev-sj", write("summary.json", "{")), "", "summary.json"),
]  # fmt: skip
