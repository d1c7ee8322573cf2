"""The LLaRA model: frozen backbone + LoRA, a projector from SR item embeddings, placeholder replacement.

``build_inputs_embeds`` is the one place where hybrid prompts become input embeddings; training
and the evaluator both call it (through ``LlaraModel.inputs_embeds``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from stages.llm.backbone import Backbone, SpecialTokenIds
from stages.llm.bit_dropout import use_bit_dropout
from stages.llm.config import LoraSettings
from stages.llm.projector import Projector, ProjectorNorm, UserToken, token_rms
from stages.llm.templates import IGNORE_INDEX

PROJECTOR_FILE, TOKEN_ROWS_FILE, ADAPTER_DIR = "projector.safetensors", "token_rows.safetensors", "adapter"


def project_items(projector: nn.Module, item_embeddings: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``projector(E[items])``: (n,) item ids -> (n, d) LLM input embeddings, in the projector's dtype."""
    param = next(projector.parameters())
    table = item_embeddings.to(device=param.device)
    return projector(table[items.to(param.device)].to(param.dtype))


def project_users(projector: Projector, item_embeddings: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The user token's vectors of (B,) last-history item ids: (B, d), in the projector's dtype."""
    param = next(projector.parameters())
    table = item_embeddings.to(device=param.device)
    return projector.user_vectors(table[items.to(param.device)].to(param.dtype))


def scatter_items(
    emb: torch.Tensor,
    input_ids: torch.Tensor,
    tokens: SpecialTokenIds,
    history_values: torch.Tensor | None,
    candidate_values: torch.Tensor | None,
) -> torch.Tensor:
    """Put projected item embeddings at the ``[HistoryEmb]`` / ``[CansEmb]`` tokens of ``emb`` (B, L, d).

    history_values / candidate_values: (n_hist, d) / (n_cans, d) in row-major order of their tokens
    (the k-th token of a kind, counting row by row, gets the k-th value); None leaves that kind as is.
    The caller checks the counts on the CPU side (``stages.llm.data.pad_batch``), so no host sync here.
    """
    for token, values in ((tokens.history, history_values), (tokens.cans, candidate_values)):
        if values is None or values.numel() == 0:
            continue
        mask = (input_ids == token).unsqueeze(-1)  # (B, L, 1)
        emb = emb.masked_scatter(mask, values.to(emb.dtype))
    return emb


def build_inputs_embeds(
    embed: nn.Module,
    projector: nn.Module,
    item_embeddings: torch.Tensor,
    tokens: SpecialTokenIds,
    input_ids: torch.Tensor,
    history_items: torch.Tensor,
    candidate_items: torch.Tensor,
    hybrid: bool,
) -> torch.Tensor:
    """Input embeddings of a batch; in hybrid mode placeholders are replaced by projected item embeddings.

    embed: the LLM's input embedding module; item_embeddings: (n_items, item_dim) frozen SR table;
    input_ids: (B, L); history_items / candidate_items: flat int64 item ids, (n_hist,) / (n_cans,),
    in row-major order of the ``[HistoryEmb]`` / ``[CansEmb]`` tokens in ``input_ids``. Returns (B, L, d).
    In text mode nothing is replaced and the projector is not called (it gets no gradient).
    """
    emb = embed(input_ids)  # (B, L, d)
    if not hybrid:
        return emb
    for token, items in ((tokens.history, history_items), (tokens.cans, candidate_items)):
        count = int((input_ids == token).sum())
        if count != items.numel():
            raise ValueError(f"{count} placeholder tokens {token} but {items.numel()} items")
    history = project_items(projector, item_embeddings, history_items) if history_items.numel() else None
    cans = project_items(projector, item_embeddings, candidate_items) if candidate_items.numel() else None
    return scatter_items(emb, input_ids, tokens, history, cans)


class PromptLM(nn.Module):
    """The LoRA-wrapped LLM fed hybrid-prompt embeddings; ``forward`` returns the answer-only loss.

    This is what DeepSpeed wraps. The projector stays outside it, with an optimizer of its own that
    steps only when a hybrid batch ran (SPEC §1: no update, momentum or weight decay on text-only
    steps; an engine-owned optimizer would step it with zero gradients under ZeRO).
    """

    def __init__(self, llm: PeftModel, tokens: SpecialTokenIds) -> None:
        super().__init__()
        self.llm = llm
        self.tokens = tokens

    def state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        """Only the trainable tensors (LoRA): the frozen base comes from the backbone.

        Keeps DeepSpeed checkpoints small: its ``exclude_frozen_parameters`` misses tied weights
        (a tied ``lm_head`` is the whole vocabulary matrix).
        """
        full = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        trainable = {prefix + n for n, p in self.named_parameters() if p.requires_grad}
        for key in [k for k in full if k not in trainable]:
            del full[key]
        return full

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        logit_positions: torch.Tensor,
        targets: torch.Tensor,
        history_values: torch.Tensor | None = None,
        candidate_values: torch.Tensor | None = None,
        user_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy over the answer tokens ``targets`` (IGNORE_INDEX entries left out).

        input_ids / attention_mask: (B, L), the mask None for causal attention only (a right-padded
        batch needs no more, see ``Batch.loss``); logit_positions / targets: (B, K), the positions that
        predict an answer token and that token (``stages.llm.data.Batch``). Only those K positions
        go through the vocabulary head: the answer is ~10 of ~270 tokens, and full-vocabulary fp32
        logits everywhere cost a fifth of the forward pass and most of its activation memory.
        user_values: (B, d), added at each row's answer cue (``logit_positions[:, 0]``), or None.
        """
        emb = self.llm.get_input_embeddings()(input_ids)  # (B, L, d)
        if self.training:
            # The same autograd graph for text-only and hybrid batches: under ZeRO-3, ranks whose
            # micro-batches differ in kind (llara-official) must run the same gradient collectives.
            emb.requires_grad_(True)
        emb = scatter_items(emb, input_ids, self.tokens, history_values, candidate_values)
        if user_values is not None:
            rows = torch.arange(emb.shape[0], device=emb.device)
            emb = emb.index_put((rows, logit_positions[:, 0]), user_values.to(emb.dtype), accumulate=True)
        out = self.llm(
            inputs_embeds=emb, attention_mask=attention_mask, logits_to_keep=logit_positions, use_cache=False
        )
        logits = out.logits.float()  # (B, K, V), upcast as the HF loss does
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


class LlaraModel(nn.Module):
    """Backbone with LoRA adapters + projector; ``forward`` returns the answer-only causal-LM loss."""

    def __init__(
        self, llm: PeftModel, projector: Projector, item_embeddings: torch.Tensor, tokens: SpecialTokenIds
    ) -> None:
        super().__init__()
        self.llm = llm
        self.projector = projector
        self.register_buffer("item_embeddings", item_embeddings.float(), persistent=False)  # (n_items, 64)
        self.tokens = tokens

    def inputs_embeds(
        self,
        input_ids: torch.Tensor,
        history_items: torch.Tensor,
        candidate_items: torch.Tensor,
        hybrid: bool,
        user_items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, d) input embeddings (see ``build_inputs_embeds``).

        ``user_items`` (B,): with a user token, each row's last history item; its user vector is added
        at the last column, the answer cue of a left-padded prompt batch (as the evaluators pass them).
        """
        emb = build_inputs_embeds(
            self.llm.get_input_embeddings(),
            self.projector,
            self.item_embeddings,
            self.tokens,
            input_ids,
            history_items,
            candidate_items,
            hybrid,
        )
        if hybrid and self.projector.user is not None and user_items is not None:
            users = project_users(self.projector, self.item_embeddings, user_items)  # (B, d)
            emb = torch.cat([emb[:, :-1], emb[:, -1:] + users[:, None].to(emb.dtype)], dim=1)
        return emb

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        history_items: torch.Tensor,
        candidate_items: torch.Tensor,
        hybrid: bool,
    ) -> torch.Tensor:
        """Mean cross-entropy over answer tokens (labels != -100). input_ids/attention_mask/labels: (B, L)."""
        emb = self.inputs_embeds(input_ids, history_items, candidate_items, hybrid)
        out = self.llm(inputs_embeds=emb, attention_mask=attention_mask, labels=labels, use_cache=False)
        return out.loss

    def logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        history_items: torch.Tensor,
        candidate_items: torch.Tensor,
        hybrid: bool,
    ) -> torch.Tensor:
        """(B, L, vocab) next-token logits."""
        emb = self.inputs_embeds(input_ids, history_items, candidate_items, hybrid)
        return self.llm(inputs_embeds=emb, attention_mask=attention_mask, use_cache=False).logits


def build_llara_model(
    backbone: Backbone,
    item_embeddings: torch.Tensor,
    lora: LoraSettings = LoraSettings(),
    seed: int = 0,
    gradient_checkpointing: bool = False,
    projector_norm: ProjectorNorm = "none",
    user_token: UserToken = "none",
) -> LlaraModel:
    """Wrap a loaded backbone with fresh LoRA adapters and a fresh fp32 projector (seeded).

    LoRA's dropout is ``BitDropout`` (the same distribution as ``nn.Dropout``, a cheaper mask).
    """
    torch.manual_seed(seed)
    model = backbone.model
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.targets),
        task_type="CAUSAL_LM",
        bias="none",
    )
    llm = get_peft_model(model, config)
    use_bit_dropout(llm)
    gain = token_rms(model.get_input_embeddings().weight)
    projector = Projector(item_embeddings.shape[1], backbone.hidden_size, projector_norm, gain, user_token)
    projector = projector.float()
    return LlaraModel(llm, projector, item_embeddings, backbone.tokens)


def token_rows(model: LlaraModel) -> dict[str, torch.Tensor]:
    """The input-embedding rows of the four special tokens, (4, d), with their ids."""
    tokens = model.tokens
    ids = torch.tensor([tokens.ph, tokens.history, tokens.cans, tokens.item])
    weight = model.llm.get_input_embeddings().weight
    return {"ids": ids, "rows": weight.detach()[ids].float().cpu().contiguous()}


def save_trained(
    model: LlaraModel,
    out_dir: Path,
    state: dict[str, torch.Tensor] | None = None,
    rows: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write adapter (peft ``save_pretrained``), projector and special-token rows into ``out_dir``.

    ``state`` / ``rows`` optionally give full (gathered) trainable tensors by parameter name and the
    special-token rows (``token_rows``), for ZeRO-3 where the module holds only partitions.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    named = (
        state
        if state is not None
        else {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    )
    lora_state = {n[len("llm.") :]: t.cpu() for n, t in named.items() if n.startswith("llm.")}
    # the resized embedding is frozen: its 4 new rows go to TOKEN_ROWS_FILE, not a full vocab copy
    model.llm.save_pretrained(
        out_dir / ADAPTER_DIR, state_dict=lora_state or None, save_embedding_layers=False
    )
    projector = {
        n[len("projector.") :]: t.float().cpu().contiguous()
        for n, t in named.items()
        if n.startswith("projector.")
    }
    save_file(projector, str(out_dir / PROJECTOR_FILE))
    save_file(rows if rows is not None else token_rows(model), str(out_dir / TOKEN_ROWS_FILE))


def load_trained(backbone: Backbone, item_embeddings: torch.Tensor, trained_dir: Path) -> LlaraModel:
    """Rebuild a trained LLaRA model from ``save_trained`` output on top of a freshly loaded backbone."""
    rows = load_file(str(trained_dir / TOKEN_ROWS_FILE))
    with torch.no_grad():
        weight = backbone.model.get_input_embeddings().weight  # (vocab, d)
        weight[rows["ids"]] = rows["rows"].to(weight.dtype)
    llm = PeftModel.from_pretrained(backbone.model, str(trained_dir / ADAPTER_DIR), is_trainable=False)
    projector_state = load_file(str(trained_dir / PROJECTOR_FILE))
    projector = Projector.for_state(projector_state).float()
    projector.load_state_dict(projector_state)
    return LlaraModel(llm, projector, item_embeddings, backbone.tokens).eval()
