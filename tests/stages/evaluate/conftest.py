"""A tiny random Llama (hidden 32, 2 layers) and an offline byte-level BPE tokenizer, built in-process."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from stages.llm.rows import EvalRow

CORPUS = (
    "The user watched these movies . Choose the next movie from these candidates . Answer : "
    "alien aliens heat casino toy story jumanji balto nixon sabrina the rock star wars love city night "
    "day king queen return empire dream house party blue red black white green summer winter 1 2 3"
)
TITLES = [
    "Alien",
    "Heat",
    "Casino",
    "Toy Story",
    "Jumanji",
    "Balto",
    "Nixon",
    "Sabrina",
    "The Rock",
    "Star Wars",
    "Love City",
    "Night Day",
    "King Queen",
    "Return",
    "Empire",
    "Dream House",
    "Party Blue",
    "Red Black",
    "White Green",
    "Summer Winter",
    "Aliens",
    "Winter 2",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "</s>", "<pad>", "[HistoryEmb]", "[CansEmb]", "[PH]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A Llama-2-style SentencePiece BPE tokenizer trained here (byte fallback, identity normaliser).

    Its pipeline is Llama-2's own ``tokenizer.json`` one (prepend "▁", spaces to "▁"), so a lone
    leading space becomes a token of its own: `` " Heat\n"`` alone is not what follows a prompt.
    """
    from stages.llm.random_backbone import llama_style_tokenizer

    tok = llama_style_tokenizer([CORPUS] * 4 + [" ".join(TITLES)] * 4, vocab_size=400)
    tok.add_special_tokens(
        {"pad_token": "<pad>", "additional_special_tokens": ["[HistoryEmb]", "[CansEmb]", "[PH]"]}
    )
    return tok


def build_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def make_rows(n: int, n_cands: int = 20, seed: int = 0) -> list[EvalRow]:
    """Rows with prompts of different lengths (so batches are left-padded)."""
    import random

    rng = random.Random(seed)
    rows = []
    for r in range(n):
        ids = rng.sample(range(len(TITLES)), n_cands)
        hist = rng.sample(range(len(TITLES)), 3 + r % 5)
        history = ", ".join(f"{TITLES[i]} [HistoryEmb]" for i in hist)
        cands = ", ".join(f"{TITLES[i]} [CansEmb]" for i in ids)
        prompt = f"The user watched these movies {history} . Choose the next movie from {cands} . Answer :"
        rows.append(
            EvalRow(
                row_id=r,
                user_id=100 + r,
                prompt=prompt,
                target_id=ids[r % n_cands],
                candidate_ids=tuple(ids),
                candidate_titles=tuple(TITLES[i] for i in ids),
                history_ids=tuple(hist),
            )
        )
    return rows


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture(scope="session")
def sp_tokenizer() -> PreTrainedTokenizerFast:
    return build_sentencepiece_tokenizer()


@pytest.fixture(scope="session")
def sp_model(sp_tokenizer) -> LlamaForCausalLM:
    return build_model(len(sp_tokenizer))


@pytest.fixture(scope="session")
def model(tokenizer) -> LlamaForCausalLM:
    return build_model(len(tokenizer))


@pytest.fixture(scope="session")
def rows_factory():
    """``make_rows`` as a fixture (test modules must not import conftest)."""
    return make_rows
