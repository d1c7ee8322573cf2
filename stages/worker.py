"""``python -m stages.worker JOB`` (or under ``torchrun``): one rank of a job ``stages.launch`` wrote.

Rank 0 writes the stage's result as JSON; a rank that fails writes one line, ``Type: message``, so
the launcher can say which rank failed and why. A rank the launcher stops (SIGTERM, after another
rank failed) says so instead of leaving its own line empty.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
from pathlib import Path

from stages.launch import ERROR_FILE, RESULT_FILE, Job
from stages.progress import child_channel


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit("terminated by the launcher")


def main(job_file: str) -> None:
    if os.environ.get("LLARA_CPUS"):  # this slot's cores, before torch sizes its thread pool
        os.sched_setaffinity(0, {int(c) for c in os.environ["LLARA_CPUS"].split(",")})
    signal.signal(signal.SIGTERM, _stopped)
    rank = int(os.environ.get("RANK", "0"))
    report_dir = Path(job_file).parent
    try:
        job: Job = pickle.loads(Path(job_file).read_bytes())
        with child_channel(rank):  # log records and rank 0's progress reach the launcher
            result = job.run(job.config, job.inputs, job.out_dir, **job.kwargs)
    except BaseException as error:
        message = " ".join(str(error).split()) or "no message"
        (report_dir / ERROR_FILE.format(rank=rank)).write_text(f"{type(error).__name__}: {message}\n")
        raise
    if rank == 0:
        (report_dir / RESULT_FILE).write_text(json.dumps(result, default=str))  # the manifest's extra


if __name__ == "__main__":
    main(sys.argv[1])
