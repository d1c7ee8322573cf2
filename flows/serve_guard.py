"""Stops ``llara serve``'s children when ``llara serve`` dies, even by SIGKILL (an OOM kill, a
container stop), which no signal handler of its own can catch.

``llara serve`` starts this guard first (``ServeGuard``), in a session of its own, keeping the only
write end of the guard's stdin, and writes one line per child group it starts (``server PID``,
``worker PID``). The kernel closes that pipe whenever ``llara serve`` exits. A clean stop writes
``done`` first; end of input without it means ``llara serve`` died, and the guard stops what it was
told about as ``flows.serve.stop`` would have: the worker's process group, then the server's, each
with SIGINT and, after a grace period, SIGKILL.

Run as a script (``python flows/serve_guard.py``): it imports nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 15.0
"""How long a group has to stop on SIGINT before it is killed (as ``flows.serve.stop``)."""
ORDER = ("worker", "server")
"""The worker first: its flow runs report to the server while they stop."""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now names someone else's group: not ours to stop
        return False
    return True


def stop_group(pgid: int, grace_s: float = GRACE_S) -> None:
    """SIGINT to the process group ``pgid``, SIGKILL to whatever is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def main() -> None:
    # The terminal's Ctrl-C and hang-up are for llara serve; the guard acts only on end of input.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    groups: dict[str, int] = {}
    for line in sys.stdin:
        fields = line.split()
        if fields == ["done"]:
            return
        if len(fields) == 2 and fields[1].isdigit():
            groups[fields[0]] = int(fields[1])
    for name in sorted(groups, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        stop_group(groups[name])


class ServeGuard:
    """The parent's handle on its guard process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # neither the terminal's signals nor our group's reach it
        )

    def watch(self, name: str, process: subprocess.Popen) -> None:
        """``process`` leads its own process group (``start_new_session``): stop it if we die."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{name} {process.pid}\n")
        self.process.stdin.flush()

    def release(self) -> None:
        """After a clean stop of every child: the guard exits without signalling anything."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write("done\n")
            self.process.stdin.close()
        self.process.wait()


if __name__ == "__main__":
    main()
