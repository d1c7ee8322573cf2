"""Prompt templates (three per domain) and the one function that renders and tokenizes a prompt.

A template holds ``[HistoryHere]``, ``[CansHere]`` and ``{n}`` (the true number of candidates; the
public templates say 10 while 20 are used). Items are written ``title TOKEN`` and joined with
``", "``, where TOKEN is ``[PH]`` (text-only prompt) or ``[HistoryEmb]`` / ``[CansEmb]`` (hybrid).
The answer is ``" " + title + "\\n"`` followed by EOS; the loss mask is built from character
offsets: a token belongs to the answer when its span ends after the prompt's last character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from stages.llm.config import TemplateChoice

HISTORY_SLOT, CANS_SLOT, COUNT_SLOT = "[HistoryHere]", "[CansHere]", "{n}"
ANSWER_PREFIX, TERMINATOR = " ", "\n"
IGNORE_INDEX = -100
PH, HISTORY_EMB, CANS_EMB, ITEM_EMB = "[PH]", "[HistoryEmb]", "[CansEmb]", "[ItemEmb]"
SPECIAL_TOKENS = (PH, HISTORY_EMB, CANS_EMB, ITEM_EMB)
"""The tokens every backbone's tokenizer gets (``stages.llm.backbone``); prompts hold the first three."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "movie": (
        "This user has watched [HistoryHere] in the previous. Please predict the next movie this user "
        "will watch. Choose the answer from the following {n} movie titles: [CansHere]. Answer:",
        "The visit history of this user is: [HistoryHere]. Recommend a next movie for this user to watch "
        "from the following {n} movie titles: [CansHere]. The recommendation should contain one movie "
        "title only. Recommendation:",
        "Given the movies this user has watched, [HistoryHere], which one of these {n} movies will the "
        "user watch next: [CansHere]? The next movie is:",
    ),
    "game": (
        "This user has played [HistoryHere] in the previous. Please predict the next game this user "
        "will play. Choose the answer from the following {n} game titles: [CansHere]. Answer:",
        "The play history of this user is: [HistoryHere]. Recommend a next game for this user to play "
        "from the following {n} game titles: [CansHere]. The recommendation should contain one game "
        "title only. Recommendation:",
        "Given the games this user has played, [HistoryHere], which one of these {n} games will the "
        "user play next: [CansHere]? The next game is:",
    ),
    "artist": (
        "This user has listened to [HistoryHere] in the previous. Please predict the next music artist "
        "this user will listen to. Choose the answer from the following {n} artist names: [CansHere]. "
        "Answer:",
        "The listening history of this user is: [HistoryHere]. Recommend a next artist for this user to "
        "listen to from the following {n} artist names: [CansHere]. The recommendation should contain "
        "one artist name only. Recommendation:",
        "Given the artists this user has listened to, [HistoryHere], which one of these {n} artists will "
        "the user listen to next: [CansHere]? The next artist is:",
    ),
}
MODES = ("text", "hybrid")


def draw_template(seed: int, row: int, n_templates: int) -> int:
    """The template of evaluation row ``row`` under ``"draw"``: a function of (seed, row) only."""
    return int(np.random.default_rng([abs(seed), row, 11]).integers(n_templates))


def template_indices(choice: TemplateChoice, n_templates: int) -> list[int] | None:
    """The fixed template indices of a choice (None for ``"draw"``); a bad choice raises ValueError."""
    if choice == "draw":
        return None
    if choice == "all":
        return list(range(n_templates))
    try:
        index = int(choice)
    except (TypeError, ValueError):
        raise ValueError(f"template must be 'draw', 'all' or 0..{n_templates - 1}, got {choice!r}") from None
    if not 0 <= index < n_templates:
        raise ValueError(f"template {index} out of range: the domain has {n_templates} templates")
    return [index]


ITEM_ORDERS = ("title-first", "token-first")


def render_prompt(
    template: str,
    titles: Sequence[str],
    history: Sequence[int],
    candidates: Sequence[int],
    hybrid: bool,
    item_order: str = "title-first",
) -> str:
    """Fill a template: items are ``title TOKEN`` (or ``TOKEN title``, ``item_order``) joined by ", ",
    TOKEN by mode (see module doc)."""
    if item_order not in ITEM_ORDERS:
        raise ValueError(f"unknown item order {item_order!r}: one of {', '.join(ITEM_ORDERS)}")
    hist_token, cans_token = (HISTORY_EMB, CANS_EMB) if hybrid else (PH, PH)

    def item(i: int, token: str) -> str:
        return f"{titles[i]} {token}" if item_order == "title-first" else f"{token} {titles[i]}"

    history_text = ", ".join(item(i, hist_token) for i in history)
    cans_text = ", ".join(item(i, cans_token) for i in candidates)
    text = template.replace(COUNT_SLOT, str(len(candidates)))
    return text.replace(HISTORY_SLOT, history_text).replace(CANS_SLOT, cans_text)


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: ``input_ids[:prompt_length]`` is the prompt, the rest the answer + EOS."""

    input_ids: list[int]
    prompt_length: int


def encode(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], answers: Sequence[str] | None
) -> list[Encoded]:
    """Tokenize prompts (and answers) in one batch call; the answer boundary comes from char offsets.

    With ``answers=None`` only the prompts are encoded (for generation), ``prompt_length == len``.
    """
    if answers is None:
        enc = tokenizer(list(prompts), add_special_tokens=True)
        return [Encoded(list(ids), len(ids)) for ids in enc["input_ids"]]
    texts = [p + ANSWER_PREFIX + a + TERMINATOR for p, a in zip(prompts, answers, strict=True)]
    enc = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
    out = []
    eos = tokenizer.eos_token_id
    for prompt, ids, offsets in zip(prompts, enc["input_ids"], enc["offset_mapping"], strict=True):
        boundary = len(prompt)
        # offsets of added specials (BOS) are (0, 0): they never count as answer
        answer = [i for i, (start, end) in enumerate(offsets) if end > boundary and end > start]
        if not answer:
            raise ValueError(f"answer of prompt {prompt[-60:]!r} produced no tokens")
        ids = list(ids)
        if eos is not None and ids[-1] != eos:
            ids.append(eos)
        out.append(Encoded(ids, answer[0]))
    return out


def answer_labels(input_ids: Sequence[int], prompt_length: int) -> list[int]:
    """Labels for the causal-LM loss: the answer tokens (title, newline, EOS), IGNORE_INDEX elsewhere."""
    return [IGNORE_INDEX] * prompt_length + list(input_ids[prompt_length:])
