"""The pipeline's stages, in order: the one list every other name is checked against.

A stage's ``name`` is its name everywhere: ``llara stage NAME``, the Prefect flow and task ``NAME``,
the deployment ``llara-NAME``, the ``stage`` field of its artifacts (``llara store ls``) and the
module ``stages/<package>/<name>.py`` (dashes as underscores) that holds ``NAME``, its config and
``run``. The CLI, ``refresh`` and the store read this list; tests/test_stage_names.py checks that
the flows, the tasks, prefect.yaml and each module's ``NAME`` agree with it.

This module imports nothing, so the CLI can list the stages without loading torch, and no stage's
code version depends on it (a stage module's own ``NAME`` is what enters its artifact ids).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    """The stage's one name (see the module docstring)."""
    module: str
    """Dotted path of the module holding ``NAME``, the config dataclass and ``run``."""
    reads: tuple[str, ...]
    """The stages whose artifacts it takes as inputs."""
    summary: str
    """One line for ``llara stage --help`` and the deployment's description."""


STAGES: tuple[Stage, ...] = (
    Stage("prepare", "stages.preprocess.prepare", (), "a raw data source -> the prepared dataset"),
    Stage("text-embeddings", "stages.seqrec.text_embeddings", ("prepare",), "title vectors, MoRec's input"),
    Stage("pretrain", "stages.seqrec.pretrain", ("prepare", "text-embeddings"), "train a recommender"),
    Stage("import-sr", "stages.seqrec.import_sr", ("prepare",), "a released SASRec checkpoint, scored"),
    Stage("embeddings", "stages.seqrec.embeddings", ("pretrain", "import-sr"), "a recommender's item table"),
    Stage("prompts", "stages.llm.prompts", ("prepare",), "prompts for a backbone's tokenizer"),
    Stage("finetune", "stages.llm.finetune", ("prompts", "embeddings"), "LoRA + projector, curriculum"),
    Stage("evaluate", "stages.evaluate.evaluate", ("prompts", "finetune", "embeddings"), "score or generate"),
    Stage("report", "stages.report.report", ("pretrain", "import-sr", "finetune", "evaluate"), "the table"),
)

NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)

# Names used before every stage had one (CLI and deployment names, and the artifact ``stage`` of
# the item-embedding table) -> today's. Artifacts stored under an old name stay listed but are
# never a cache hit: the stage name is part of the artifact id.
OLD_NAMES: dict[str, str] = {
    "pretrain-sr": "pretrain",
    "materialize-prompts": "prompts",
    "export-embeddings": "embeddings",
}


def stage(name: str) -> Stage:
    """The stage called ``name``; an old name is refused with the name it has now."""
    for s in STAGES:
        if s.name == name:
            return s
    hint = f" (now called {OLD_NAMES[name]!r})" if name in OLD_NAMES else ""
    raise KeyError(f"no stage {name!r}{hint}; the stages are {', '.join(NAMES)}")


def module_file(s: Stage) -> str:
    """Where ``s.module`` lives, relative to the project root."""
    return s.module.replace(".", "/") + ".py"
