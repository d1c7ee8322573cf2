"""``llara pretrain`` and ``llara import-sr``: a recommender trained here, or one the LLaRA authors
released, as an item-embedding artifact for the LLM stages."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from artifacts import ArtifactStore
from flows.cli.settings import RefreshOption
from flows.cli.store import StoreOption


class SRModel(StrEnum):
    sasrec = "sasrec"
    gru4rec = "gru4rec"
    caser = "caser"
    morec = "morec"
    sasrec_conv = "sasrec-conv"


class SRLoss(StrEnum):
    ce = "ce"
    bce1 = "bce1"


class PretrainProfile(StrEnum):
    chosen = "chosen"
    defaults = "defaults"
    authors = "authors"


def pretrain_command(
    data: Annotated[
        str, typer.Option(help="Prepared dataset: artifact path (as `llara prepare` prints) or id.")
    ],
    model: Annotated[SRModel, typer.Option(help="Sequential recommender.")] = SRModel.sasrec,
    profile: Annotated[
        PretrainProfile,
        typer.Option(
            help="chosen: the settings chosen on validation for the dataset's domain (LastFM so far; "
            "stages/seqrec/chosen.py), else the defaults; defaults: PretrainConfig's defaults; authors: "
            "the LLaRA authors' recipe (bce1, lr 1e-3, L2 1e-4; SASRec as their Conv1d-FFN network).",
        ),
    ] = PretrainProfile.chosen,
    loss: Annotated[
        SRLoss | None,
        typer.Option(help="ce: full softmax (stronger); bce1: one sampled negative (paper) [default: ce]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, batching and negatives.")] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(help="Maximum epochs (early stopping on validation) [default: the profile's]."),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Any other PretrainConfig field, e.g. --set dropout=0.7 --set lr=3e-3 (repeatable). "
            "The MODEL.FIELD=VALUE flags that `python -m stages.seqrec.sweep` prints work as they are.",
        ),
    ] = None,
    store: StoreOption = None,
    refresh: RefreshOption = False,
) -> None:
    """Train one recommender, evaluate it on the frozen candidates, and export its item embeddings
    (the ``pretrain`` stage, then ``embeddings`` on it).

    Prints the settings used and the model artifact (metrics.json, scores) on stderr, and the
    embedding artifact last on stdout.
    """
    from stages.seqrec.chosen import authors_config, chosen_config, describe
    from stages.seqrec.config import PretrainConfig
    from stages.seqrec.table import parse_model_setting
    from tasks.pretrain import train_recommender

    fields: dict = {"seed": seed}
    if loss is not None:
        fields["loss"] = loss.value
    if epochs is not None:
        fields["epochs"] = epochs
    for text in settings or []:
        try:
            owner, name, value = parse_model_setting(text)  # the sweep prints MODEL.FIELD=VALUE
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--set") from e
        if owner not in (None, model.value):
            raise typer.BadParameter(f"{text!r} is for {owner}, not {model.value}", param_hint="--set")
        fields[name] = value
    artifact_store = ArtifactStore.for_inputs(store, data)  # given by path: its store
    dataset = artifact_store.open(data)
    domain = json.loads((dataset.path / "dataset.json").read_text()).get("domain", "")
    if profile is PretrainProfile.chosen:
        config, found = chosen_config(domain, model.value, **fields)
        source = f"chosen on validation for domain {domain!r}" if found else (
            f"no settings chosen for domain {domain!r}: the defaults")
    elif profile is PretrainProfile.authors:
        config, source = authors_config(model.value, **fields), "the LLaRA authors' recipe"
    else:
        config, source = PretrainConfig(model=model.value, **fields), "defaults"
    typer.echo(f"{config.model} settings ({source}, with the flags given): {describe(config)}", err=True)
    trained, embeddings = train_recommender(dataset, config, artifact_store, refresh=refresh)
    _print_sr_metrics(config.model, trained.path)
    typer.echo(embeddings.path)


def import_sr_command(
    file: Annotated[Path, typer.Argument(help="A released LLaRA checkpoint, e.g. rec_model/lastfm.pt.")],
    data: Annotated[
        str, typer.Option(help="Prepared dataset with the same items: artifact path or id.")
    ],
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="The checkpoint is a pickled module. It is read with a restricted unpickler that runs "
            "none of its code (a pickle that asks to call a function is refused); still, only for files "
            "you trust.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap CIs.")] = 0,
    store: StoreOption = None,
    refresh: RefreshOption = False,
) -> None:
    """Import the authors' SASRec checkpoint: score it on our frozen candidates, export its embeddings
    (the ``import-sr`` stage, then ``embeddings`` on it).

    Prints the model artifact (metrics.json, scores) on stderr and the embedding artifact last on stdout.
    """
    from stages.seqrec.config import ImportConfig
    from tasks.pretrain import import_recommender

    artifact_store = ArtifactStore.for_inputs(store, data)  # given by path: its store
    config = ImportConfig(file=str(file.resolve()), allow_pickle=allow_pickle, seed=seed)
    model, embeddings = import_recommender(artifact_store.open(data), config, artifact_store, refresh=refresh)
    _print_sr_metrics("SASRec (released)", model.path)
    typer.echo(embeddings.path)


def _print_sr_metrics(name: str, model_dir: Path) -> None:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        typer.echo(
            f"{name} {split}: "
            + ", ".join(
                f"{k} {v['mean']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]"
                for k, v in metrics[split].items()
            ),
            err=True,
        )
    typer.echo(f"model artifact: {model_dir}", err=True)
