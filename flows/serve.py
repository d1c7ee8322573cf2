"""``llara serve``: a local Prefect server, the work pool, every deployment and a worker, in one go.

The server binds to 127.0.0.1 unless told otherwise and keeps its state (SQLite database, logs) under
the Prefect home, ``.llara/prefect`` by default, so it survives restarts. Any other address needs an
auth string: the server then runs with Prefect's basic authentication and every client we start
(the deploy calls, the worker and so every flow run) sends it.

Ctrl-C or SIGTERM (what systemd, Docker and Kubernetes send) stops the worker first and then the
server, each with SIGINT to its whole process group (a worker ignores SIGTERM for a while once its
server is gone, and the children run in their own sessions so that a terminal's Ctrl-C does not
reach them before we decide the order). A SIGKILL, which nothing can handle, is covered by a guard
process that does the same once ``llara serve`` is gone (``flows.serve_guard``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from flows.serve_guard import ServeGuard

log = logging.getLogger("llara.serve")
PROJECT_DIR = Path(__file__).resolve().parents[1]
WORK_POOL = "llara-process"
AUTH_ENV = "LLARA_AUTH_STRING"
# Set in the worker's environment (so in every flow run it starts) by ``llara serve --allow-pickle``:
# without it a deployment run refuses ``allow_pickle``, a parameter anyone who reaches the UI can set.
PICKLE_OPT_IN_ENV = "LLARA_WORKER_ALLOWS_PICKLE"
WILDCARDS = ("0.0.0.0", "::", "")


class ServeError(Exception):
    """A ``llara serve`` setting that would be unsafe or cannot work; the CLI prints it as one line."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


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
    auth_string: str | None = None
    """``user:password`` for Prefect's basic authentication; required off loopback."""
    allow_pickle: bool = False
    """Let deployment runs honour their ``allow_pickle`` parameter (the worker's opt-in)."""

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.auth_string:
            raise ServeError(
                f"--host {self.host!r} is not a loopback address: anyone who reaches it could run flows. "
                f"Give an auth string (--auth-string USER:PASSWORD, or the {AUTH_ENV} environment "
                "variable) to turn on Prefect's basic authentication, or serve on 127.0.0.1"
            )
        if self.auth_string is not None and not self.auth_string.strip():
            raise ServeError("--auth-string: empty")

    @property
    def api_url(self) -> str:
        """The address our own clients use: loopback when the server listens on every interface."""
        host = "127.0.0.1" if self.host in WILDCARDS else self.host
        return f"http://{_bracket(host)}:{self.port}/api"

    @property
    def ui_api_url(self) -> str:
        """The address a browser's UI calls, which must work from other machines off loopback."""
        host = socket.getfqdn() if self.host in WILDCARDS else self.host
        return f"http://{_bracket(host)}:{self.port}/api"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def prefect_env(config: ServeConfig) -> dict[str, str]:
    """Environment for the CLI calls and the worker (and so for every flow run)."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(config.prefect_home.resolve()),
        "PREFECT_API_URL": config.api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_API_URL": config.ui_api_url,
        "LLARA_PROJECT_DIR": str(PROJECT_DIR),
        "LLARA_STORE": str(config.store.resolve()),
    }
    # Neither secret nor opt-in may leak in from the caller's shell: only the config decides.
    for name in ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", PICKLE_OPT_IN_ENV):
        env.pop(name, None)
    if config.auth_string:
        env["PREFECT_API_AUTH_STRING"] = config.auth_string
    if config.allow_pickle:
        env[PICKLE_OPT_IN_ENV] = "1"
    return env


def server_env(config: ServeConfig, env: dict[str, str]) -> dict[str, str]:
    """The clients' environment plus what only the server needs (the auth string it checks)."""
    env = {k: v for k, v in env.items() if k != PICKLE_OPT_IN_ENV}
    if config.auth_string:
        env["PREFECT_SERVER_API_AUTH_STRING"] = config.auth_string
    return env


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


def start_server(
    config: ServeConfig, env: dict[str, str], guard: ServeGuard | None = None
) -> subprocess.Popen:
    """The Prefect server, healthy; ``guard`` stops it should this process die before it does."""
    config.prefect_home.mkdir(parents=True, exist_ok=True)
    logfile = (config.prefect_home / "server.log").open("ab")
    server = subprocess.Popen(
        _prefect("server", "start", "--host", config.host, "--port", str(config.port)),
        env=server_env(config, env),
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our Ctrl-C handling decides when it stops
    )
    if guard is not None:
        guard.watch("server", server)
    try:
        wait_healthy(config.api_url, config.startup_timeout_s, server)
    except BaseException:  # including a stop signal while it starts: leave nothing running
        stop(server, "server")
        raise
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


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    # Each child leads its own session (start_new_session), so its process group id is its pid and
    # the group holds whatever it started in turn.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def stop(process: subprocess.Popen | None, name: str, timeout_s: float = 15.0) -> None:
    if process is None:
        return
    if process.poll() is None:
        _signal_group(process, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on SIGINT within %.0f s; killing it", name, timeout_s)
    _signal_group(process, signal.SIGKILL)  # stragglers of its group, if any
    process.wait()


class Stop(KeyboardInterrupt):
    """Raised by our signal handler so that a service manager's SIGTERM unwinds like Ctrl-C."""


def serve(config: ServeConfig) -> None:
    """Run server + deployments + worker until Ctrl-C, SIGTERM or SIGHUP, then stop both."""
    env = prefect_env(config)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:  # a second signal must not cut the shutdown short
            stopping = True
            raise Stop(signal.Signals(signum).name)

    guard = ServeGuard()  # a SIGKILL skips everything below: the guard then stops the children
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in handled}
    try:
        _run(config, env, children, guard)
    except KeyboardInterrupt as e:
        log.info("%s: stopping worker and server", e if isinstance(e, Stop) else "SIGINT")
    finally:
        stopping = True
        stop(children.get("worker"), "worker")
        stop(children.get("server"), "server")
        guard.release()
        for signum, old in previous.items():
            signal.signal(signum, old)


def _run(
    config: ServeConfig, env: dict[str, str], children: dict[str, subprocess.Popen], guard: ServeGuard
) -> None:
    where = "" if is_loopback(config.host) else f" (listening on {config.host}, basic auth on)"
    log.info("starting Prefect server on %s%s (home %s)", config.api_url, where, config.prefect_home)
    children["server"] = start_server(config, env, guard)
    log.info("deploying every deployment of prefect.yaml to work pool %s", WORK_POOL)
    deploy_all(env)
    children["worker"] = start_worker(env, config.prefect_home / "worker.log")
    guard.watch("worker", children["worker"])
    ui = config.ui_api_url.removesuffix("/api")
    print(f"Prefect UI: {ui}  (Deployments -> llara-reproduce -> Run). Ctrl-C stops everything.", flush=True)
    while True:
        for name, process in children.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"Prefect {name} exited with code {process.returncode}; see {config.prefect_home}"
                )
        time.sleep(1)
