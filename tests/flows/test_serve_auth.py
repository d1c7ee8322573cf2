"""`llara serve` itself, against the real Prefect server it starts: basic auth, the worker's pickle
opt-in, and a SIGTERM that leaves no process behind. Runs the real CLI as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from flows.serve import ServeConfig, ServeError
from tests.flows.test_server import Api, free_port, tiny_movielens
from tests.stages.preprocess.bad_inputs import _release

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "llara", "correct-horse-battery"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root``, with its start time (so a reused pid is not mistaken)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if (stat := _stat(pid)) is not None:
            found[pid] = stat[1]
            todo += children.get(pid, [])
    return found


def alive(pid: int, started: str) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == started and stat[0] != "Z"


class Serve:
    """`llara serve` as a service manager runs it: a background process, stopped with SIGTERM."""

    def __init__(self, root: Path, port: int, *flags: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),  # the worker's flow runs import this checkout too
            "LLARA_AUTH_STRING": f"{USER}:{PASSWORD}",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
        }
        self.stderr = (root / "serve.stderr").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), *flags,
             "--prefect-home", str(root / "prefect"), "--store", str(root / "store")],
            env=env, cwd=root, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        deadline = time.monotonic() + 180
        while not any(line.startswith("Prefect UI:") for line in self.lines):
            assert self.process.poll() is None, (root / "serve.stderr").read_text()[-3000:]
            assert time.monotonic() < deadline, "llara serve printed no UI address"
            time.sleep(0.5)

    def sigterm(self, timeout: float = 60) -> tuple[int, dict[int, str]]:
        """SIGTERM; returns the exit code and the processes below it that were running before."""
        below = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout), below

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    root = tmp_path_factory.mktemp("guarded")
    port = free_port()
    serve = Serve(root, port)
    yield {"serve": serve, "root": root, "url": f"http://127.0.0.1:{port}/api"}
    serve.close()


def test_off_loopback_needs_an_auth_string():
    with pytest.raises(ServeError, match="--auth-string"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(ServeError, match="not a loopback"):
        ServeConfig(host="example.org", auth_string="")
    assert ServeConfig(host="0.0.0.0", auth_string="a:b").api_url.startswith("http://127.0.0.1:")
    ServeConfig(host="::1")  # loopback needs none


def test_the_cli_refuses_a_public_host_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LLARA_AUTH_STRING", None)
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
         "--prefect-home", str(tmp_path / "prefect")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "LLARA_AUTH_STRING" in result.stderr
    assert not (tmp_path / "prefect").exists()  # refused before anything started


def test_unauthenticated_api_calls_get_401(guarded):
    url = guarded["url"]
    assert httpx.post(f"{url}/deployments/filter", json={}, timeout=30).status_code == 401
    wrong = httpx.post(f"{url}/deployments/filter", json={}, auth=(USER, "guess"), timeout=30)
    assert wrong.status_code == 401
    right = httpx.post(f"{url}/deployments/filter", json={}, auth=(USER, PASSWORD), timeout=30)
    assert right.status_code == 200 and len(right.json()) >= 8  # `llara serve` deployed with the string


def test_an_authenticated_deployment_run_completes(guarded):
    api = Api(guarded["url"], auth=(USER, PASSWORD))
    source = tiny_movielens(guarded["root"] / "raw")
    prepare = api.deployment("prepare", "llara-prepare")
    run = api.trigger(prepare["id"], {"source": source, "store": str(guarded["root"] / "store")})
    state = api.wait(run, timeout=300)
    assert state["type"] == "COMPLETED", (state, api.logs(run)[-3000:])
    assert "computing prepare" in api.logs(run)


def test_pickle_from_a_deployment_run_needs_the_workers_opt_in(guarded):
    api = Api(guarded["url"], auth=(USER, PASSWORD))
    source, _ = _release(guarded["root"] / "release")
    store = guarded["root"] / "store-pickle"
    prepare = api.deployment("prepare", "llara-prepare")
    run = api.trigger(prepare["id"], {"source": source, "allow_pickle": True, "store": str(store)})
    assert api.wait(run, timeout=300)["type"] == "FAILED"
    assert "llara serve --allow-pickle" in api.logs(run)
    assert not (store / "objects").exists()  # refused before anything was read


def test_sigterm_stops_worker_and_server(guarded):
    serve = guarded["serve"]
    code, below = serve.sigterm()
    assert code == 0, guarded["root"].joinpath("serve.stderr").read_text()[-2000:]
    assert len(below) >= 2  # at least the server and the worker were running
    deadline = time.monotonic() + 10
    while (left := [p for p, t in below.items() if alive(p, t)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], left
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{guarded['url']}/health", timeout=5)


def test_pickle_from_a_deployment_run_with_the_opt_in(tmp_path):
    port = free_port()
    serve = Serve(tmp_path, port, "--allow-pickle")
    try:
        api = Api(f"http://127.0.0.1:{port}/api", auth=(USER, PASSWORD))
        source, _ = _release(tmp_path / "release")
        prepare = api.deployment("prepare", "llara-prepare")
        run = api.trigger(
            prepare["id"], {"source": source, "allow_pickle": True, "store": str(tmp_path / "s")}
        )
        state = api.wait(run, timeout=300)
        assert state["type"] == "COMPLETED", (state, api.logs(run)[-3000:])
        code, below = serve.sigterm()
        assert code == 0
        time.sleep(1)
        assert not [p for p, t in below.items() if alive(p, t)]
    finally:
        serve.close()


def test_sigkill_of_llara_serve_still_stops_worker_and_server(tmp_path):
    """An OOM kill or a container stop: no handler of llara serve runs, its guard stops the rest."""
    port = free_port()
    serve = Serve(tmp_path, port)
    below = descendants(serve.process.pid)
    try:
        assert len(below) >= 3  # the guard, the server and the worker at least
        serve.process.send_signal(signal.SIGKILL)
        assert serve.process.wait(timeout=10) == -signal.SIGKILL
        deadline = time.monotonic() + 60  # SIGINT, then SIGKILL after 15 s, per group
        while (left := [p for p, t in below.items() if alive(p, t)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], left
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
    finally:
        for pid, started in below.items():  # nothing left, unless the test failed
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        serve.close()
