"""``llara serve``: a local Prefect server, the work pool, every deployment and a worker, in one go.

Everything binds to 127.0.0.1 and keeps its state (SQLite database, logs) under the Prefect home,
``.llara/prefect`` by default, so it survives restarts. Ctrl-C stops the worker first and then the
server, each with SIGINT (a worker ignores SIGTERM for a while once its server is gone).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger("llara.serve")
PROJECT_DIR = Path(__file__).resolve().parents[1]
WORK_POOL = "llara-process"


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    """Interface the API and UI bind to; loopback keeps them private to this machine."""
    port: int = 4200
    """Port of the Prefect API and UI."""
    prefect_home: Path = Path(".llara/prefect")
    """Where Prefect keeps its SQLite database and settings."""
    store: Path = Path(".llara/store")
    """Artifact store the deployed flows read and write."""
    startup_timeout_s: float = 120.0
    """How long to wait for the server to report healthy."""

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"


def prefect_env(config: ServeConfig) -> dict[str, str]:
    """Environment for the server, the CLI calls and the worker (and so for every flow run)."""
    return {
        **os.environ,
        "PREFECT_HOME": str(config.prefect_home.resolve()),
        "PREFECT_API_URL": config.api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_API_URL": config.api_url,
        "LLARA_PROJECT_DIR": str(PROJECT_DIR),
        "LLARA_STORE": str(config.store.resolve()),
    }


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def wait_healthy(api_url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Prefect server exited with code {process.returncode} before it was healthy")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout_s:.0f} s")


def start_server(config: ServeConfig, env: dict[str, str]) -> subprocess.Popen:
    config.prefect_home.mkdir(parents=True, exist_ok=True)
    logfile = (config.prefect_home / "server.log").open("ab")
    server = subprocess.Popen(
        _prefect("server", "start", "--host", config.host, "--port", str(config.port)),
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our Ctrl-C handling decides when it stops
    )
    wait_healthy(config.api_url, config.startup_timeout_s, server)
    return server


def deploy_all(env: dict[str, str]) -> None:
    """Create the process work pool (idempotent) and every deployment in prefect.yaml."""
    subprocess.run(
        _prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"),
        env=env,
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _prefect("--no-prompt", "deploy", "--all"), env=env, cwd=PROJECT_DIR, check=True, capture_output=True
    )


def start_worker(env: dict[str, str], logfile: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _prefect("worker", "start", "--pool", WORK_POOL, "--type", "process"),
        env=env,
        cwd=PROJECT_DIR,
        stdout=logfile.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen | None, name: str, timeout_s: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop on SIGINT within %.0f s; killing it", name, timeout_s)
        process.kill()
        process.wait()


def serve(config: ServeConfig) -> None:
    """Run server + deployments + worker until interrupted."""
    env = prefect_env(config)
    server = worker = None
    try:
        log.info("starting Prefect server on %s (home %s)", config.api_url, config.prefect_home)
        server = start_server(config, env)
        log.info("deploying every deployment of prefect.yaml to work pool %s", WORK_POOL)
        deploy_all(env)
        worker = start_worker(env, config.prefect_home / "worker.log")
        ui = config.api_url.removesuffix("/api")
        print(
            f"Prefect UI: {ui}  (Deployments -> llara-reproduce -> Run). Ctrl-C stops everything.", flush=True
        )
        while True:
            for process, name in ((server, "server"), (worker, "worker")):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"Prefect {name} exited with code {process.returncode}; see {config.prefect_home}"
                    )
            time.sleep(1)
    except KeyboardInterrupt:
        log.info("stopping worker and server")
    finally:
        stop(worker, "worker")
        stop(server, "server")
