"""Prompt token ids assembled from pieces tokenized once, equal to tokenizing the rendered text.

A rendered prompt (``templates.render_prompt``) is text segments separated by placeholder tokens
(``[PH]``, ``[HistoryEmb]``, ``[CansEmb]``). Hugging Face tokenizers cut the text at added tokens
first and encode each segment on its own, so a prompt's ids are its segments' ids with the
placeholders' ids between them. Every segment is a template piece or ``", " + title + " "``, so a
dictionary of segment ids turns encoding a train row into a few dictionary lookups.

A segment is encoded where it stands: the first one at the start of the text (the tokenizer's
BOS and SentencePiece's prefix space apply), every other one right after a placeholder
(``[PH] + segment``, the placeholder's id dropped), because some tokenizers treat the first
segment differently. The last segment carries the answer (``" " + title + "\\n"``) and is encoded
with character offsets, as ``templates.encode`` does, to find where the answer starts.

Equality with ``templates.encode`` is checked, not assumed: ``agrees_with_tokenizer`` compares the
two on sample rows, and ``stages.llm.data.PromptData`` uses the assembly only where they agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from stages.llm.backbone import CANS_EMB, HISTORY_EMB, PH
from stages.llm.templates import ANSWER_PREFIX, TERMINATOR, Encoded, encode


class PieceEncoder:
    """``templates.encode`` for rendered prompts and answers, from cached segment ids."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        placeholders = (PH, HISTORY_EMB, CANS_EMB)
        self.placeholder_ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in placeholders}
        self._split = re.compile("(" + "|".join(re.escape(t) for t in placeholders) + ")")
        self._marker, self._marker_id = PH, self.placeholder_ids[PH]
        self._first: dict[str, list[int]] = {}
        self._middle: dict[str, list[int]] = {}
        self._tail: dict[tuple[str, str], tuple[list[int], int]] = {}

    def _after_marker(self, text: str, offsets: bool = False) -> dict:
        enc = self.tokenizer(self._marker + text, add_special_tokens=False, return_offsets_mapping=offsets)
        if not enc["input_ids"] or enc["input_ids"][0] != self._marker_id:
            raise ValueError(f"the tokenizer does not keep {self._marker} as one token before {text[:40]!r}")
        return enc

    def _middle_ids(self, segment: str) -> list[int]:
        if segment not in self._middle:
            self._middle[segment] = list(self._after_marker(segment)["input_ids"][1:]) if segment else []
        return self._middle[segment]

    def _first_ids(self, segment: str) -> list[int]:
        if segment not in self._first:
            self._first[segment] = list(self.tokenizer(segment, add_special_tokens=True)["input_ids"])
        return self._first[segment]

    def _tail_ids(self, segment: str, answer: str) -> tuple[list[int], int]:
        """Ids of ``segment + " " + answer + "\\n"`` after a placeholder, and where the answer starts."""
        key = (segment, answer)
        if key not in self._tail:
            enc = self._after_marker(segment + ANSWER_PREFIX + answer + TERMINATOR, offsets=True)
            ids, spans = enc["input_ids"][1:], enc["offset_mapping"][1:]
            boundary = len(self._marker) + len(segment)
            starts = [i for i, (lo, hi) in enumerate(spans) if hi > boundary and hi > lo]
            if not starts:
                raise ValueError(f"answer {answer!r} produced no tokens")
            self._tail[key] = (list(ids), starts[0])
        return self._tail[key]

    def encode(self, prompts: Sequence[str], answers: Sequence[str]) -> list[Encoded]:
        """Prompt + answer ids and prompt lengths, exactly as ``templates.encode`` gives them."""
        eos = self.tokenizer.eos_token_id
        out = []
        for prompt, answer in zip(prompts, answers, strict=True):
            parts = self._split.split(prompt)  # text, token, text, ..., text
            if len(parts) < 3:
                raise ValueError("a prompt without placeholders cannot be assembled")
            ids = list(self._first_ids(parts[0]))
            for k in range(1, len(parts) - 1, 2):
                ids.append(self.placeholder_ids[parts[k]])
                if k + 1 < len(parts) - 1:
                    ids.extend(self._middle_ids(parts[k + 1]))
            tail, answer_start = self._tail_ids(parts[-1], answer)
            prompt_length = len(ids) + answer_start
            ids.extend(tail)
            if eos is not None and ids[-1] != eos:
                ids.append(eos)
            out.append(Encoded(ids, prompt_length))
        return out

    def agrees_with_tokenizer(self, prompts: Sequence[str], answers: Sequence[str]) -> bool:
        """Whether the assembly gives exactly ``templates.encode``'s ids and prompt lengths here."""
        try:
            return self.encode(prompts, answers) == encode(self.tokenizer, prompts, answers)
        except ValueError:
            return False
