"""Turn a generated answer into a recommendation: the paper's substring rule (SPEC §5).

The public LLaRA code keeps the first line of the generated text, lower-cases it, and collects every
candidate title that is a substring of it. The sample is *valid* when exactly one candidate title
matched and *correct* when that candidate is the target. We follow it exactly (``rule="paper"``,
the default), with two documented safety deviations that can only make a sample invalid, never
correct by accident:

- HTML entities are unescaped on both sides (``"Amélie"`` vs ``"Am&eacute;lie"``) and surrounding
  whitespace is stripped, as the public code strips both sides.
- A candidate whose title is empty after normalisation never matches (in the public code ``""`` is a
  substring of every output, which would make every such sample invalid or, worse, valid for the
  wrong item).

Consequences of the paper rule, kept on purpose for parity:

- Nested titles: the output ``"aliens"`` contains both ``"alien"`` and ``"aliens"``; when both are
  candidates that is two matches, so the sample is invalid.
- Duplicate titles among the candidates (two items with one title) match twice: invalid.
- An output naming two candidates is invalid.

``rule="longest"`` is a *non-paper* variant (label it as such in reports): a matched title that is
a proper substring of another matched title is dropped, so ``"aliens"`` resolves to ``Aliens``.
Identical titles stay ambiguous (invalid) under both rules.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MatchRule = Literal["paper", "longest"]


@dataclass(frozen=True)
class MatchResult:
    """The outcome of parsing one generated answer against its candidates."""

    valid: bool
    """Exactly one candidate matched (after the rule's tie handling)."""
    correct: bool
    """Valid, and the matched candidate is the target item."""
    item_id: int | None
    """Item id of the single matched candidate, or None when invalid."""
    index: int | None
    """Position of that candidate in the row's candidate list, or None when invalid."""


def normalize(text: str) -> str:
    """Unescape HTML entities (twice, for double-escaped sources), lower-case, strip whitespace."""
    return html.unescape(html.unescape(text)).lower().strip()


def first_line(output: str) -> str:
    """The answer's first line as the public code keeps it (leading whitespace dropped first)."""
    return output.strip().split("\n")[0]


def match_output(
    output: str,
    candidate_titles: Sequence[str],
    candidate_ids: Sequence[int],
    target_id: int,
    rule: MatchRule = "paper",
) -> MatchResult:
    """Parse one generated answer. ``candidate_titles[i]`` is the title of ``candidate_ids[i]``."""
    if len(candidate_titles) != len(candidate_ids):
        raise ValueError("candidate_titles and candidate_ids differ in length")
    answer = normalize(first_line(output))
    titles = [normalize(t) for t in candidate_titles]
    matched = [i for i, t in enumerate(titles) if t and t in answer]
    if rule == "longest":
        matched = [
            i for i in matched if not any(titles[i] != titles[j] and titles[i] in titles[j] for j in matched)
        ]
    elif rule != "paper":
        raise ValueError(f"unknown matching rule {rule!r}")
    if len(matched) != 1:
        return MatchResult(valid=False, correct=False, item_id=None, index=None)
    index = matched[0]
    item = int(candidate_ids[index])
    return MatchResult(valid=True, correct=item == int(target_id), item_id=item, index=index)


def match_rows(
    outputs: Sequence[str],
    candidate_titles: Sequence[Sequence[str]],
    candidate_ids: Sequence[Sequence[int]],
    target_ids: Sequence[int],
    rule: MatchRule = "paper",
) -> list[MatchResult]:
    """``match_output`` for every row; all sequences are aligned by row."""
    if not len(outputs) == len(candidate_titles) == len(candidate_ids) == len(target_ids):
        raise ValueError("outputs, candidate_titles, candidate_ids and target_ids differ in length")
    return [
        match_output(o, t, c, g, rule)
        for o, t, c, g in zip(outputs, candidate_titles, candidate_ids, target_ids, strict=True)
    ]
