"""The OpenAI-compatible endpoint path: the request format and reply parsing, on a mock transport.

and over real HTTP against a small OpenAI-compatible server started here. (The test against a real
llama.cpp server was removed: no PyPI package ships one prebuilt for this machine, and
llama-cpp-python[server] is a source distribution that compiles llama.cpp when installed.)"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from stages.evaluate.endpoint import (
    EndpointConfig,
    chat_completion,
    completions_url,
    endpoint_prompt,
    evaluate_endpoint,
)
from stages.llm.generation import score_outputs


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


class _FirstCandidate(BaseHTTPRequestHandler):
    """An OpenAI-style chat endpoint that answers the first candidate the prompt offers."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        first = prompt.split("Choose the next movie from ", 1)[1].split(",", 1)[0].strip()
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": f" {first}\nso"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


def test_evaluate_endpoint_over_http(rows_factory) -> None:
    """The whole endpoint row against a server on 127.0.0.1: replies in row order, scored as generation is."""
    rows = rows_factory(6)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FirstCandidate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = evaluate_endpoint(rows, EndpointConfig(url=url, model="stub"), seed=0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    first_titles = [r.candidate_titles[0] for r in rows]
    assert [o.strip().splitlines()[0] for o in result.outputs] == first_titles
    expected = score_outputs(result.outputs, rows, "paper", 0)
    assert {k: v.mean for k, v in result.metrics.items()} == {k: v.mean for k, v in expected.metrics.items()}
    assert result.metrics["valid_ratio"].mean > 0  # the replies name candidates, as a model's would
