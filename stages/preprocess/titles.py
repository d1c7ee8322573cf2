"""Item titles: the public LLaRA code's rules (``llara``) and a careful cleanup (``clean``).

``llara`` (MovieLens) replicates ``get_mv_title(title[:-7])`` from ljy0ustc/LLaRA
``data/movielens_data.py``: cut the last 7 characters (" (1995)"), then for the first of
", The", ", A", ", An" that occurs *anywhere* in the string, prefix its word and delete *every*
occurrence. Quirks kept: ", A" also matches ", An" (so "Professor, An" -> "A Professorn") and
", Alien ..." inside a title; "unknown" (7 characters) becomes "". For other domains the public
code reads ``id2name.txt`` with ``line.split('::')[1].strip()``, so ``llara`` is ``name.strip()``.

``clean``: unescape HTML entities, strip a trailing "(1995)" year (movies), move a trailing article
(", The", ", A", ", An", and ", La", ", Le", ", Les", ", L'", ", Il", ", Das", ", Der", ", Die",
", El", ", Los", ", Las", ", Un", ", Une", ", Den", ", Det") to the front, also inside a trailing
parenthesised alternative title ("City of Lost Children, The (Cité des enfants perdus, La)" ->
"The City of Lost Children (La Cité des enfants perdus)"). An empty result falls back to the raw id.
Duplicates get " (year)" appended; titles still equal get " [raw id]" appended (all but the first).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Sequence

ARTICLES = (
    "The",
    "A",
    "An",
    "La",
    "Le",
    "Les",
    "L'",
    "Il",
    "Das",
    "Der",
    "Die",
    "El",
    "Los",
    "Las",
    "Un",
    "Une",
    "Den",
    "Det",
)
_ARTICLE = "|".join(re.escape(a) for a in sorted(ARTICLES, key=len, reverse=True))
_TRAILING_ARTICLE = re.compile(rf"^(?P<body>.+?),\s+(?P<art>{_ARTICLE})$")
_YEAR = re.compile(r"\s*\((?P<year>\d{4})(?:/[IVX]+)?\)\s*$")
_ALT = re.compile(r"^(?P<main>.*?)\s*\((?P<alt>[^()]*)\)$")


def split_year(title: str) -> tuple[str, str | None]:
    """``"Heat (1995)" -> ("Heat", "1995")``; no trailing year -> ``(title, None)``."""
    m = _YEAR.search(title)
    if not m:
        return title, None
    return title[: m.start()], m.group("year")


def move_article(text: str) -> str:
    """``"Godfather, The" -> "The Godfather"``; ``"Appartement, L'" -> "L'Appartement"``."""
    m = _TRAILING_ARTICLE.match(text.strip())
    if not m:
        return text.strip()
    art = m.group("art")
    sep = "" if art.endswith("'") else " "
    return f"{art}{sep}{m.group('body').strip()}"


def clean_title(raw: str, *, strip_year: bool) -> tuple[str, str | None]:
    """The ``clean`` title and the year it carried (``None`` if none)."""
    text = html.unescape(raw or "").strip()
    text = re.sub(r"\s+", " ", text)
    year = None
    if strip_year:
        text, year = split_year(text)
    m = _ALT.match(text)
    if m and m.group("main"):
        text = f"{move_article(m.group('main'))} ({move_article(m.group('alt'))})"
    else:
        text = move_article(text)
    return text.strip(), year


def llara_movie_title(raw: str) -> str:
    """The public code's ``get_mv_title(ll[1][:-7])``, quirks included."""
    s = raw[:-7]
    for sub in (", The", ", A", ", An"):
        if sub in s:
            return sub[2:] + " " + s.replace(sub, "")
    return s


def llara_name(raw: str) -> str:
    """The public code's ``id2name.txt`` reading for LastFM / Steam: ``split('::')[1].strip()``."""
    return raw.strip()


def make_titles(
    raw_titles: Sequence[str | None],
    raw_ids: Sequence[str],
    *,
    mode: str,
    domain: str,
    years: Sequence[str | None] | None = None,
) -> list[str]:
    """Final titles in item order. ``years`` is an optional per-item year used to disambiguate."""
    if mode == "llara":
        if domain == "movie":
            return [llara_movie_title(t or "") for t in raw_titles]
        return [llara_name(t or "") for t in raw_titles]
    if mode != "clean":
        raise ValueError(f"title_mode must be 'clean' or 'llara', not {mode!r}")
    titles: list[str] = []
    found_years: list[str | None] = []
    for i, raw in enumerate(raw_titles):
        title, year = clean_title(raw or "", strip_year=domain == "movie")
        if years is not None and years[i]:
            year = year or years[i]
        titles.append(title or str(raw_ids[i]))
        found_years.append(year)
    return _unique(titles, found_years, raw_ids)


def _unique(titles: list[str], years: list[str | None], raw_ids: Sequence[str]) -> list[str]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(titles):
        groups[t.casefold()].append(i)
    out = list(titles)
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:
            if years[i]:
                out[i] = f"{titles[i]} ({years[i]})"
    taken: set[str] = set()
    for i, t in enumerate(out):  # item order: the first keeps its title, later clashes get the raw id
        key = t.casefold()
        if key in taken:
            t = f"{t} [{raw_ids[i]}]"
            key = t.casefold()
            k = 2
            while key in taken:
                t = f"{out[i]} [{raw_ids[i]}#{k}]"
                key, k = t.casefold(), k + 1
            out[i] = t
        taken.add(key)
    return out
