"""Prompt token ids assembled from pieces tokenized once, equal to tokenizing the rendered text.

A rendered prompt (``templates.render_prompt``) is text segments separated by placeholder tokens
(``[PH]``, ``[HistoryEmb]``, ``[CansEmb]``). Hugging Face tokenizers cut the text at added tokens
first and encode each segment on its own, so a prompt's ids are its segments' ids with the
placeholders' ids between them. Every segment is a template piece or ``", " + title + " "``
(``" " + title + ", "`` in the token-first item order), so a dictionary of segment ids turns encoding
a train row into a few dictionary lookups.

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
from weakref import WeakKeyDictionary

from transformers import PreTrainedTokenizerBase

from stages.llm.templates import ANSWER_PREFIX, CANS_EMB, HISTORY_EMB, PH, TERMINATOR, Encoded, encode


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
        self.trusted: bool | None = None
        """``encode_checked``: None until its first call compares the assembly with the tokenizer."""

    def _after_marker(self, texts: list[str], offsets: bool = False) -> list[tuple[list[int], list]]:
        """Ids (and offsets) of each text as it reads right after a placeholder, in one batch call."""
        enc = self.tokenizer(
            [self._marker + t for t in texts], add_special_tokens=False, return_offsets_mapping=offsets
        )
        spans = enc["offset_mapping"] if offsets else [[]] * len(texts)
        out = []
        for text, ids, span in zip(texts, enc["input_ids"], spans, strict=True):
            if not ids or ids[0] != self._marker_id:
                raise ValueError(f"the tokenizer splits {self._marker} before {text[:40]!r}")
            out.append((list(ids[1:]), list(span[1:])))
        return out

    def _fill(self, splits: list[list[str]], answers: Sequence[str]) -> None:
        """Tokenize the segments not seen before, one batch call per kind."""
        firsts = sorted({p[0] for p in splits} - self._first.keys())
        if firsts:
            ids = self.tokenizer(firsts, add_special_tokens=True)["input_ids"]
            self._first.update({t: list(i) for t, i in zip(firsts, ids, strict=True)})
        middles = sorted({p[k] for p in splits for k in range(2, len(p) - 1, 2)} - self._middle.keys())
        if middles:
            self._middle.update(
                {t: i for t, (i, _) in zip(middles, self._after_marker(middles), strict=True)}
            )
        tails = sorted({(p[-1], a) for p, a in zip(splits, answers, strict=True)} - self._tail.keys())
        if tails:
            texts = [segment + ANSWER_PREFIX + answer + TERMINATOR for segment, answer in tails]
            for (segment, answer), (ids, spans) in zip(tails, self._after_marker(texts, True), strict=True):
                boundary = len(self._marker) + len(segment)
                starts = [i for i, (lo, hi) in enumerate(spans) if hi > boundary and hi > lo]
                if not starts:
                    raise ValueError(f"answer {answer!r} produced no tokens")
                self._tail[(segment, answer)] = (ids, starts[0])

    def encode(self, prompts: Sequence[str], answers: Sequence[str]) -> list[Encoded]:
        """Prompt + answer ids and prompt lengths, exactly as ``templates.encode`` gives them."""
        splits = [self._split.split(p) for p in prompts]  # text, token, text, ..., text
        if any(len(parts) < 3 for parts in splits):
            raise ValueError("a prompt without placeholders cannot be assembled")
        self._fill(splits, answers)
        eos = self.tokenizer.eos_token_id
        out = []
        for parts, answer in zip(splits, answers, strict=True):
            ids = list(self._first[parts[0]])
            for k in range(1, len(parts) - 1, 2):
                ids.append(self.placeholder_ids[parts[k]])
                if k + 1 < len(parts) - 1:
                    ids.extend(self._middle[parts[k + 1]])
            tail, answer_start = self._tail[(parts[-1], answer)]
            prompt_length = len(ids) + answer_start
            ids.extend(tail)
            if eos is not None and ids[-1] != eos:
                ids.append(eos)
            out.append(Encoded(ids, prompt_length))
        return out

    def encode_checked(self, prompts: Sequence[str], answers: Sequence[str]) -> list[Encoded]:
        """``templates.encode``'s result: assembled once the first call showed that both agree."""
        if self.trusted is None:
            exact = encode(self.tokenizer, prompts, answers)
            self.trusted = self.agrees_with_tokenizer(prompts, answers, exact)
            return exact
        if self.trusted:
            return self.encode(prompts, answers)
        return encode(self.tokenizer, prompts, answers)

    def agrees_with_tokenizer(
        self, prompts: Sequence[str], answers: Sequence[str], exact: list[Encoded] | None = None
    ) -> bool:
        """Whether the assembly gives exactly ``templates.encode``'s ids and prompt lengths here."""
        try:
            return self.encode(prompts, answers) == (exact or encode(self.tokenizer, prompts, answers))
        except ValueError:
            return False


_SHARED: WeakKeyDictionary[PreTrainedTokenizerBase, PieceEncoder] = WeakKeyDictionary()


def shared_encoder(tokenizer: PreTrainedTokenizerBase) -> PieceEncoder:
    """One ``PieceEncoder`` per tokenizer object, so its pieces are tokenized once per process."""
    if tokenizer not in _SHARED:
        _SHARED[tokenizer] = PieceEncoder(tokenizer)
    return _SHARED[tokenizer]
