"""Random backbones ``random:<shape>``: a published model's shapes with random weights, for measuring.

Throughput and memory depend on the shapes, not on the weights, so ``random:llama-2-7b`` measures
the paper's backbone size on any GPU without downloading weights. Its config is Llama-2-7B's
(``meta-llama/Llama-2-7b-hf`` ``config.json``: hidden 4096, 32 layers, 32 heads and 32 key/value
heads, MLP 11008, vocabulary 32000, 4096 positions, RMSNorm eps 1e-5, RoPE theta 10000, untied
head): 6,738,415,616 parameters. ``random:smollm2-135m`` is SmolLM2-135M's (hidden 576, 30 layers, 9
heads and 3 key/value heads, MLP 1536, vocabulary 49152, 8192 positions, RoPE theta 100000, tied
head): 134,515,008 parameters, the converted real model's count; it measures our default backbone
where its weights (a 98 MB GGUF) have not arrived. ``random:tiny-llama`` is the same architecture at
a tiny width, for tests.

The tokenizer is Llama-style: a SentencePiece BPE model with byte fallback, ``<unk>``/``<s>``/``</s>``
at ids 0/1/2 (``<s>`` added in front of every sequence), a "▁" prepended and spaces written as
"▁" (Llama-2's ``tokenizer.json`` pipeline), trained here on a fixed corpus generated in code (the
prompt templates and a word list), so the build is offline and deterministic. Its vocabulary is
what that corpus supports (about 2k pieces, 256 of them bytes), far below 32000: the model keeps
Llama-2's 32000-row embedding and head (the FLOPs and memory being measured) and the tokenizer
uses the first rows. Words outside the corpus fall back to short pieces or bytes, so a prompt
can take more tokens than under the real Llama-2 tokenizer; compare tokens/s rather than rows/s
across tokenizers.

The directory in the cache holds ``config.json`` and the tokenizer only; the weights are drawn by
``init_random_model`` on the requested device and dtype, from a fixed seed.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import LlamaConfig, PreTrainedModel

from stages.llm.templates import TEMPLATES

PREFIX = "random:"
VERSION = "v1"

_LLAMA_2 = dict(
    vocab_size=32000,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    initializer_range=0.02,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
)
SHAPES: dict[str, dict] = {
    "llama-2-7b": dict(
        _LLAMA_2,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
    ),
    "smollm2-135m": dict(
        _LLAMA_2,
        vocab_size=49152,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
    ),
    "tiny-llama": dict(
        _LLAMA_2,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
    ),
}
"""LlamaConfig keyword arguments per shape name."""

TITLE_WORDS = (
    "the a an of and in on for with to from at by is was be his her their my your our it this that "
    "story love war star night day city man woman men women world life time dark last first king queen "
    "lord return rise fall empire legend dream house home game party beautiful blue red black white "
    "green gold silver summer winter spring autumn fire ice water blood death dead living heart mind "
    "soul shadow light sun moon sky sea river mountain island road street town country land kingdom "
    "boy girl father mother son daughter brother sister family friend friends wild lost secret hidden "
    "great little big small new old young good bad true american english french big top high low "
    "part one two three four five six seven eight nine ten ii iii iv music song dance rock band live "
    "best hits greatest collection edition volume chronicles adventure adventures journey quest saga "
    "toy heat casino jumanji sabrina balto nixon alien aliens godfather matrix titanic batman superman "
    "space station planet earth galaxy future past back school college doctor detective killer hunter "
    "ghost ghosts monster monsters zombie dragon wizard magic princess prince knight knights soldier"
)


def parse(spec: str) -> str:
    """The shape name of a ``random:<shape>`` spec."""
    name = spec[len(PREFIX) :]
    if name not in SHAPES:
        raise ValueError(f"unknown random backbone {spec!r}: use {', '.join(PREFIX + s for s in SHAPES)}")
    return name


def llama_config(name: str) -> LlamaConfig:
    """The shape's config (pad id: none, as Llama-2; ``load_tokenizer`` pads with EOS)."""
    return LlamaConfig(**SHAPES[name])


def tokenizer_corpus() -> list[str]:
    """Deterministic sentences: the prompt templates with made-up titles, and title lists."""
    rng = random.Random(0)
    vocabulary = TITLE_WORDS.split()

    def title() -> str:
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 5))]
        return " ".join(w.title() for w in words) + f" ({rng.randint(1920, 2020)})"

    sentences = []
    for templates in TEMPLATES.values():
        for template in templates:
            for _ in range(20):
                history = ", ".join(title() for _ in range(10))
                cands = ", ".join(title() for _ in range(20))
                text = template.replace("[HistoryHere]", history).replace("[CansHere]", cands)
                sentences.append(text.replace("{n}", "20") + " " + title())
    return sentences


def llama_style_tokenizer(sentences: Iterable[str], vocab_size: int, hard_vocab_limit: bool = True):
    """A Llama-2-style SentencePiece BPE tokenizer (byte fallback, "▁" prepended, spaces as "▁")
    trained on ``sentences``; with ``hard_vocab_limit`` off, ``vocab_size`` is an upper bound."""
    try:
        import sentencepiece as spm
    except ImportError as e:
        raise ImportError(f"{PREFIX} backbones build their tokenizer with sentencepiece: {e}") from e
    from tokenizers import normalizers
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buffer,
        vocab_size=vocab_size,
        hard_vocab_limit=hard_vocab_limit,
        model_type="bpe",
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        num_threads=1,  # one thread: the same pieces on every machine
        minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    tok = LlamaTokenizer(vocab=vocab, merges=generate_merges(vocab))
    tok.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    tok.backend_tokenizer.pre_tokenizer = None
    return tok


def build_tokenizer(work: Path) -> None:
    """Train the Llama-style SentencePiece BPE tokenizer and save it (``tokenizer.json``) into ``work``."""
    # 4000 is an upper bound: the corpus supports fewer pieces
    tok = llama_style_tokenizer(tokenizer_corpus(), vocab_size=4000, hard_vocab_limit=False)
    tok.add_bos_token = True  # Llama-2 starts every sequence with <s>
    tok.save_pretrained(work)


def build_random_dir(name: str, work: Path) -> None:
    """``config.json`` and the tokenizer of shape ``name`` into ``work`` (no weights)."""
    build_tokenizer(work)
    llama_config(name).save_pretrained(work)


def init_random_model(
    directory: Path, dtype: torch.dtype, device: torch.device | str | None = None, seed: int = 0
) -> PreTrainedModel:
    """The shape's model with weights drawn from ``seed``, allocated on ``device`` in ``dtype``.

    The global RNG is restored afterwards. ``device="meta"`` allocates nothing (config checks).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(directory)
    target = torch.device(device or "cpu")
    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    torch.manual_seed(seed)
    try:
        with target:
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    finally:
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
    return model
