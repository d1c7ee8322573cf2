"""Integration test against a real Prefect server, deployments from prefect.yaml and a process worker.

Runs are triggered exactly as the UI does (POST /api/deployments/{id}/create_flow_run).
"""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from artifacts import ArtifactStore
from flows.serve import ServeConfig, deploy_all, prefect_env, start_server, start_worker, stop

pytestmark = pytest.mark.slow
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_movielens(directory: Path) -> str:
    """ml100k-format data: 200 users with 12-20 ratings each over 80 items."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    lines = []
    for user in range(1, 201):
        start = rng.integers(880_000_000, 890_000_000)
        items = rng.choice(80, size=int(rng.integers(12, 21)), replace=False) + 1
        lines += [f"{user}\t{item}\t4\t{start + 60 * k}" for k, item in enumerate(items)]
    (directory / "u.data").write_text("\n".join(lines) + "\n")
    titles = [
        f"{i}|Film number {i} (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 19) for i in range(1, 81)
    ]
    (directory / "u.item").write_text("\n".join(titles) + "\n", encoding="latin-1")
    return f"ml100k:{directory}"


class Api:
    """The few REST calls the UI makes. A busy SQLite-backed server may answer 503 for a moment
    (database locked), so every call retries like a browser would."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        self.client = httpx.Client(base_url=url, timeout=30, auth=auth)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(30):
            try:
                response = self.client.request(method, path, **kwargs)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response
            except httpx.TransportError:
                pass  # the server may be restarting
            time.sleep(min(1 + attempt, 5))
        raise AssertionError(f"{method} {path}: server unavailable")

    def deployment(self, flow: str, name: str) -> dict:
        return self.request("GET", f"/deployments/name/{flow}/{name}").json()

    def trigger(self, deployment_id: str, parameters: dict) -> str:
        response = self.request(
            "POST", f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters}
        )
        return response.json()["id"]

    def state(self, run_id: str) -> dict:
        return self.request("GET", f"/flow_runs/{run_id}").json()["state"]

    def wait(self, run_id: str, timeout: float = 900, until: set[str] = TERMINAL) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state["type"] in until:
                return state
            time.sleep(1)
        raise AssertionError(f"flow run {run_id} still {state['type']} after {timeout} s")

    def task_runs(self, run_id: str, name: str) -> list[dict]:
        """The task runs of a flow run (and of the flows it called) whose name starts with ``name``."""
        body = {"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200}
        runs = self.request("POST", "/task_runs/filter", json=body).json()
        return [t for t in runs if t["name"].startswith(name)]

    def artifacts(self, task_run_id: str) -> list[dict]:
        """Every artifact of a task run, every version of a keyed one, oldest first."""
        body = {"artifacts": {"task_run_id": {"any_": [task_run_id]}}, "sort": "CREATED_DESC", "limit": 200}
        return self.request("POST", "/artifacts/filter", json=body).json()[::-1]  # no ascending sort

    def logs(self, run_id: str, timeout: float = 120) -> str:
        """Every log line of a finished run. Logs reach the API a little after the final state, so
        wait for the flow's own closing line ("Finished in state ...")."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self._log_entries(run_id)
            closed = any(
                e["task_run_id"] is None and e["message"].startswith("Finished in state") for e in entries
            )
            if closed or time.monotonic() > deadline:
                return "\n".join(e["message"] for e in entries)
            time.sleep(1)

    def _log_entries(self, run_id: str) -> list[dict]:
        entries: list[dict] = []
        while True:
            response = self.request(
                "POST",
                "/logs/filter",
                json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200, "offset": len(entries)},
            )
            page = response.json()
            entries += page
            if len(page) < 200:
                return entries


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    config = ServeConfig(port=free_port(), prefect_home=root / "prefect", store=root / "store")
    env = prefect_env(config) | {
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    server = start_server(config, env)
    deploy_all(env)
    worker = start_worker(env, root / "worker.log")
    handle = {"config": config, "env": env, "server": server, "root": root, "api": Api(config.api_url)}
    yield handle
    stop(worker, "worker")
    stop(handle["server"], "server")


def smoke_parameters(source: str, store: Path, **extra) -> dict:
    return {
        "source": source,
        "profile": "smoke",
        "sr_baselines": ["sasrec"],
        "llara_sr_models": ["sasrec"],
        "schedules": ["curriculum"],
        "store": str(store),
        **extra,
    }


def test_ui_trigger_cache_hits_refresh_and_nightly_schedule(served):
    api, store = served["api"], served["root"] / "store"
    source = tiny_movielens(served["root"] / "raw")
    reproduce = api.deployment("reproduce", "llara-reproduce")

    first = api.trigger(reproduce["id"], smoke_parameters(source, store))
    state = api.wait(first)
    assert state["type"] == "COMPLETED", (state, api.logs(first)[-3000:])
    logs = api.logs(first)
    assert "computing prepare" in logs and "computing finetune" in logs and "computing report" in logs
    (finetune,) = [a for a in ArtifactStore(store) if a.stage == "finetune"]
    check_live_progress(api, first, finetune.path)
    summary = json.loads((finetune.path / "summary.json").read_text())
    for step in [h["step"] for h in summary["selection"]["history"]]:  # the stage's own lines, once each
        assert logs.count(f"validation at step {step}/{summary['total_steps']}:") == 1, logs[-3000:]

    second = api.trigger(reproduce["id"], smoke_parameters(source, store))
    assert api.wait(second)["type"] == "COMPLETED"
    logs = api.logs(second)
    assert "computing" not in logs
    for stage in ("prepare", "pretrain", "embeddings", "prompts", "finetune", "evaluate", "report"):
        assert f"cache hit: {stage} artifact" in logs, stage

    third = api.trigger(reproduce["id"], smoke_parameters(source, store, refresh=["finetune"]))
    assert api.wait(third)["type"] == "COMPLETED"
    computed = {line.split()[1] for line in api.logs(third).splitlines() if line.startswith("computing ")}
    assert computed == {"finetune"}  # same config, same bytes downstream ids: only the forced stage reran
    assert all(
        not problems
        for problems in (ArtifactStore(store).problems(a.id, full=True) for a in ArtifactStore(store))
    )

    nightly = api.deployment("reproduce", "llara-nightly")
    deadline, scheduled = time.monotonic() + 60, []
    while time.monotonic() < deadline and not scheduled:
        response = api.request(
            "POST",
            "/flow_runs/filter",
            json={
                "flow_runs": {
                    "deployment_id": {"any_": [nightly["id"]]},
                    "state": {"type": {"any_": ["SCHEDULED"]}},
                }
            },
        )
        scheduled = response.json()
        time.sleep(2)
    assert scheduled, "the scheduler created no nightly runs"
    for run in scheduled:
        start = datetime.fromisoformat(run["expected_start_time"])
        assert (start.utcoffset().total_seconds(), start.hour, start.minute) == (0, 3, 0)


def check_live_progress(api: Api, run_id: str, finetune: Path) -> None:
    """The finetune task run of ``run_id`` that wrote ``finetune``: its progress artifact reached
    100 %, and its validation table was published at each validation with the history so far."""
    key = f"finetune-{finetune.name}-progress"
    runs = [api.artifacts(t["id"]) for t in api.task_runs(run_id, "finetune")]
    (artifacts,) = [found for found in runs if any(a["key"] == key for a in found)]
    progress = [a for a in artifacts if a["type"] == "progress"]
    assert len(progress) == 1 and progress[0]["data"] == 100.0, progress
    tables = [json.loads(a["data"]) for a in artifacts if a["type"] == "table"]
    history = json.loads((finetune / "summary.json").read_text())["selection"]["history"]
    assert [[row["step"] for row in table] for table in tables] == [
        [h["step"] for h in history[: i + 1]] for i in range(len(history))
    ]
    assert [row["scoring_hr1"] for row in tables[-1]] == pytest.approx([h["value"] for h in history])
    others = api.task_runs(run_id, "pretrain") + api.task_runs(run_id, "evaluate")
    done = [a["data"] for t in others for a in api.artifacts(t["id"]) if a["type"] == "progress"]
    assert done and all(value == 100.0 for value in done)


def test_failed_stage_then_fixed_rerun_reuses_upstream(served):
    api, store = served["api"], served["root"] / "store-fail"
    source = tiny_movielens(served["root"] / "raw-fail")
    reproduce = api.deployment("reproduce", "llara-reproduce")
    broken = api.trigger(
        reproduce["id"], smoke_parameters(source, store, backbone=f"hf:{served['root']}/no-such-model")
    )
    state = api.wait(broken)
    assert state["type"] == "FAILED"
    assert "no-such-model" in api.logs(broken)
    fixed = api.trigger(reproduce["id"], smoke_parameters(source, store))
    assert api.wait(fixed)["type"] == "COMPLETED"
    logs = api.logs(fixed)
    assert "cache hit: prepare" in logs and "cache hit: pretrain" in logs and "computing prompts" in logs


def test_two_concurrent_runs_compute_once(served):
    api, store = served["api"], served["root"] / "store-twice"
    source = tiny_movielens(served["root"] / "raw-twice")
    prepare = api.deployment("prepare", "llara-prepare")
    params = {"source": source, "store": str(store)}
    runs = [api.trigger(prepare["id"], params), api.trigger(prepare["id"], params)]
    assert [api.wait(r)["type"] for r in runs] == ["COMPLETED", "COMPLETED"]
    logs = [api.logs(r) for r in runs]
    assert sum("computing prepare" in text for text in logs) == 1
    artifacts = list(ArtifactStore(store))
    assert len(artifacts) == 1 and ArtifactStore(store).problems(artifacts[0].id, full=True) == []


def test_worker_survives_a_server_restart(served):
    api, store = served["api"], served["root"] / "store-restart"
    source = tiny_movielens(served["root"] / "raw-restart")
    reproduce = api.deployment("reproduce", "llara-reproduce")
    run = api.trigger(reproduce["id"], smoke_parameters(source, store))
    # The run must be in flight when the server goes down: running, its report not yet written.
    assert api.wait(run, until={"RUNNING"} | TERMINAL)["type"] == "RUNNING"
    stop(served["server"], "server")
    reports_then = [a for a in ArtifactStore(store) if a.stage == "report"]
    with pytest.raises(httpx.TransportError):  # really down
        httpx.get(f"{served['config'].api_url}/health", timeout=5)
    assert reports_then == [], "the run finished before the server went down: nothing was tested"
    served["server"] = start_server(served["config"], served["env"])
    state = api.wait(run)
    assert state["type"] == "COMPLETED", state
    assert [a.stage for a in ArtifactStore(store) if a.stage == "report"] == ["report"]


def test_deployment_runs_branches_in_parallel_with_two_process_finetunes(served):
    """``max_parallel`` and ``nproc_per_node`` from a deployment run: both fine-tunes run on 2
    processes (torchrun) at the same time, and every rank's output reaches the run's log."""
    api, store = served["api"], served["root"] / "store-parallel"
    source = tiny_movielens(served["root"] / "raw-parallel")
    reproduce = api.deployment("reproduce", "llara-reproduce")
    parameters = smoke_parameters(
        source,
        store,
        llara_sr_models=["sasrec", "gru4rec"],
        zero_shot=False,
        max_parallel=2,
        nproc_per_node=2,
    )
    run = api.trigger(reproduce["id"], parameters)
    state = api.wait(run)
    assert state["type"] == "COMPLETED", (state, api.logs(run)[-3000:])
    logs = api.logs(run)
    assert re.search(r"\[\w{8} rank 0\] step 0 ", logs) and re.search(r"\[\w{8} rank 1\] ", logs)
    finetunes = [a for a in ArtifactStore(store) if a.stage == "finetune"]
    assert len(finetunes) == 2 and all(a.manifest["world_size"] == 2 for a in finetunes)
    for finetune in finetunes:  # rank 0 of each torchrun reported to its own task run
        check_live_progress(api, run, finetune.path)
