"""Zero-shot generation through any OpenAI-compatible chat endpoint (off by default).

One ``POST {base}/v1/chat/completions`` per row over plain HTTP (httpx), the prompt as a single user
message, ``temperature`` 0 and ``max_tokens`` 64 (greedy, like the local generation mode); the reply's
``choices[0].message.content`` then goes through the same first-line + substring rule
(``matching``). This gives the "zero-shot" / GPT-4-style rows for any served model (llama.cpp's
server, vLLM, a hosted API).

The LLaRA placeholder tokens (``[PH]``, ``[HistoryEmb]``, ``[CansEmb]``, ``[ItemEmb]``) mean nothing
to a remote model and are removed from the prompt text by default. A key, when the endpoint needs
one, is read from the environment variable that ``api_key_env`` names, never from the config itself
(configs are written into manifests).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from stages.llm.generation import GenerationResult, score_outputs
from stages.llm.matching import MatchRule
from stages.llm.rows import EvalRow

PLACEHOLDERS = re.compile(r"\s*\[(?:PH|HistoryEmb|CansEmb|ItemEmb)\]")


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to ask an OpenAI-compatible chat endpoint."""

    url: str
    """Base URL (``http://127.0.0.1:8080``), its ``/v1``, or the full ``.../chat/completions`` URL."""
    model: str = ""
    """The ``model`` field of the request (the served model's name; some servers ignore it)."""
    max_tokens: int = 64
    """Most tokens per answer, as the local generation mode."""
    temperature: float = 0.0
    """0: greedy decoding."""
    timeout_s: float = 120.0
    """Per-request timeout in seconds."""
    retries: int = 2
    """Extra attempts after a transport error or a 5xx reply."""
    strip_placeholders: bool = True
    """Remove the LLaRA placeholder tokens from the prompt text."""
    system_prompt: str | None = None
    """Optional system message before the prompt (None: none, as the paper's prompts)."""
    api_key_env: str | None = None
    """Name of an environment variable holding a bearer token (None: no Authorization header)."""


def completions_url(url: str) -> str:
    """Normalise the configured URL to the chat-completions route."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def endpoint_prompt(prompt: str, config: EndpointConfig) -> str:
    return PLACEHOLDERS.sub("", prompt) if config.strip_placeholders else prompt


def chat_completion(client: httpx.Client, config: EndpointConfig, prompt: str) -> str:
    """One request; returns the reply text ("" when the server sends no content)."""
    messages = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    messages.append({"role": "user", "content": endpoint_prompt(prompt, config)})
    body = {
        "model": config.model,
        "messages": messages,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "stream": False,
    }
    headers = {}
    if config.api_key_env:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise RuntimeError(f"environment variable {config.api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    last: Exception | None = None
    for _ in range(config.retries + 1):
        try:
            reply = client.post(
                completions_url(config.url), json=body, headers=headers, timeout=config.timeout_s
            )
            if reply.status_code >= 500:
                last = RuntimeError(f"{reply.status_code} from {config.url}: {reply.text[:200]}")
                continue
            reply.raise_for_status()
            choices = reply.json().get("choices") or [{}]
            return str((choices[0].get("message") or {}).get("content") or "")
        except httpx.TransportError as e:
            last = e
    raise RuntimeError(f"endpoint {config.url} failed after {config.retries + 1} attempts: {last}")


def endpoint_answers(rows: Sequence[EvalRow], config: EndpointConfig) -> list[str]:
    """The raw reply of every row, in order (requests are sequential: servers are often single-slot)."""
    with httpx.Client() as client:
        return [chat_completion(client, config, row.prompt) for row in rows]


def evaluate_endpoint(
    rows: Sequence[EvalRow], config: EndpointConfig, rule: MatchRule = "paper", seed: int = 0
) -> GenerationResult:
    """Ask the endpoint for every row and score the replies with the paper's rule."""
    return score_outputs(endpoint_answers(rows, config), rows, rule, seed)
