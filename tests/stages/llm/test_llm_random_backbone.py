"""``random:<shape>`` backbones: Llama-2-7B's and SmolLM2's configs checked on the meta device, a tiny
shape loaded."""

from __future__ import annotations

import pytest
import torch

from stages.llm.backbone import SPECIAL_TOKENS, load_backbone, resolve_backbone_dir
from stages.llm.random_backbone import init_random_model
from stages.llm.templates import encode


def test_llama_2_7b_has_the_published_config_and_parameter_count() -> None:
    directory = resolve_backbone_dir("random:llama-2-7b")
    model = init_random_model(directory, torch.bfloat16, "meta")  # shapes only: nothing allocated
    config = model.config
    assert (config.hidden_size, config.intermediate_size) == (4096, 11008)
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (32, 32, 32)
    assert (config.vocab_size, config.max_position_embeddings) == (32000, 4096)
    assert (config.rms_norm_eps, config.hidden_act, config.tie_word_embeddings) == (1e-5, "silu", False)
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616  # Llama-2-7B's count
    assert all(p.device.type == "meta" and p.dtype == torch.bfloat16 for p in model.parameters())


def test_smollm2_shape_has_smollm2_135m_config_and_parameter_count() -> None:
    model = init_random_model(resolve_backbone_dir("random:smollm2-135m"), torch.bfloat16, "meta")
    config = model.config
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (576, 1536, 30)
    assert (config.num_attention_heads, config.num_key_value_heads, config.vocab_size) == (9, 3, 49152)
    assert config.tie_word_embeddings
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # the converted SmolLM2-135M's


def test_tiny_random_shape_loads_with_a_llama_style_tokenizer() -> None:
    state = torch.random.get_rng_state()
    backbone = load_backbone("random:tiny-llama")
    assert torch.equal(state, torch.random.get_rng_state())  # drawing the weights leaves the RNG alone
    tokenizer, model = backbone.tokenizer, backbone.model
    assert model.config.vocab_size == 32000 and len(tokenizer) < 32000  # tokenizer uses the first rows
    assert set(SPECIAL_TOKENS) <= set(tokenizer.get_vocab())
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (1, 2, 0)

    text = "This user has watched Toy Story (1995), Heat (1995) in the previous. Answer: Qwyx"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == 1 and tokenizer.decode(ids, skip_special_tokens=True) == text
    # SentencePiece style: the newline goes through byte fallback, the answer ends with </s>.
    (enc,) = encode(tokenizer, ["Answer:"], ["Heat"])
    assert tokenizer.convert_ids_to_tokens(enc.input_ids[enc.prompt_length :]) == [
        "▁Heat",
        "<0x0A>",
        "</s>",
    ]

    again = load_backbone("random:tiny-llama")  # same seed: same weights
    for a, b in zip(model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), 32000) and torch.isfinite(logits).all()


def test_unknown_random_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown random backbone 'random:gpt-5'"):
        resolve_backbone_dir("random:gpt-5")
