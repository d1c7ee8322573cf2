"""Run the commands that train or evaluate an LLM under tcmalloc when the machine has it.

glibc's malloc slows a long CPU fine-tune down as it goes: every step builds tensors of new shapes,
the freed blocks pile up in its heap (tens of thousands of free chunks, gigabytes of free heap after
a few dozen LastFM steps) and every allocation searches them. tcmalloc hands out memory from size
classes and does not degrade that way. The measurements, glibc against tcmalloc on the same run:
docs/long-runs.md ("The cause: glibc's malloc").

The allocator must be in place before the process starts, so ``llara`` re-executes itself once
with ``LD_PRELOAD`` naming the library. Only the commands in ``HEAVY`` do (a data command keeps its
fast start-up), only on Linux, only when the library is found and no allocator is preloaded
already, and only from the real command line (``main`` called from Python never re-executes).
``LLARA_MALLOC=system`` keeps the system's malloc; ``LLARA_MALLOC=/path/to/lib.so`` names another
library. Child processes (torchrun's workers, a ``llara serve`` worker's flow runs) inherit the
setting through the environment. A fine-tune's ``summary.json`` records the allocator it ran under
(``malloc``).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

MALLOC_ENV = "LLARA_MALLOC"
"""``system``: glibc's malloc; a path: that library; unset or ``tcmalloc``: tcmalloc when found."""
HEAVY = frozenset({"run", "finetune", "evaluate", "stage", "serve"})
"""Commands that train or score an LLM in this process or its children."""
_RELAUNCHED = "LLARA_MALLOC_RELAUNCHED"  # set in the re-executed process: never loop
_QUIET_LARGE_ALLOCS = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}  # no line per 1 GB tensor


def find_tcmalloc() -> str | None:
    """The tcmalloc library's name as the dynamic loader finds it (Debian/Ubuntu:
    ``libtcmalloc-minimal4``), or None."""
    for name in ("tcmalloc_minimal", "tcmalloc"):
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def relaunch_env(args: list[str], environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to re-execute ``llara args`` under, or None to run on as is."""
    choice = environ.get(MALLOC_ENV, "tcmalloc")
    command = next((a for a in args if not a.startswith("-")), None)  # after --debug / -q
    if choice == "system" or environ.get(_RELAUNCHED) or command not in HEAVY:
        return None
    if choice != "tcmalloc":
        if not Path(choice).is_file():
            raise SystemExit(f"error: {MALLOC_ENV}={choice}: neither system, tcmalloc nor a library file")
        library = choice
    preloaded = environ.get("LD_PRELOAD", "")
    if library is None or any(name in preloaded for name in ("tcmalloc", "jemalloc", library)):
        return None  # not installed, or an allocator is preloaded already (the user's choice)
    preload = " ".join(p for p in (preloaded, library) if p)
    return {**_QUIET_LARGE_ALLOCS, **environ, "LD_PRELOAD": preload, _RELAUNCHED: "1"}


def relaunch_under_tcmalloc(args: list[str]) -> None:
    """Re-execute this command line under tcmalloc when ``relaunch_env`` says so; else return."""
    if not sys.platform.startswith("linux"):  # LD_PRELOAD is the Linux loader's
        return
    env = relaunch_env(args, os.environ, find_tcmalloc())
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, env)
