"""The Prefect side of ``stages.progress``: a computing stage's progress and tables as artifacts of
its task run, and the stages' log records (``llara.*``) in the run's log.

A stage reports through a plain ``stages.progress.Reporter``; this module's ``PrefectReporter``
turns that into a progress artifact (created at the first update, then updated; at most one API
call every ``min_seconds`` except the last update) and into keyed table artifacts. Progress is a
convenience: a failed API call is logged once and never fails the stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from stages.progress import reporting_to

log = logging.getLogger("llara.progress")


def in_run() -> bool:
    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


class RunLogHandler(APILogHandler):
    """``llara.*`` records emitted inside a flow or task run go to that run's log in the UI (the
    console shows them through the root logger as before); outside a run they are not sent."""

    def emit(self, record: logging.LogRecord) -> None:
        if in_run():
            super().emit(record)


def send_stage_logs_to_prefect() -> None:
    """Once per process: the stages' loggers reach the run's log, at INFO unless someone chose a level
    (``llara --quiet``); a worker's flow run has nobody to choose, and Python's default would drop
    every progress line."""
    logger = logging.getLogger("llara")
    if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


class PrefectReporter:
    """One computing stage's progress artifact and tables, attached to the current task run."""

    def __init__(self, stage: str, artifact_id: str, min_seconds: float = 2.0) -> None:
        self.stage, self.artifact_id, self.min_seconds = stage, artifact_id, min_seconds
        self._progress_id: UUID | None = None
        self._sent_at = float("-inf")
        self._pending: tuple[float, str] | None = None
        self._failed = False

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        if self._failed:
            return None
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the UI is a convenience, the stage goes on
            self._failed = True
            log.warning(
                "%s %s: could not update the UI's %s (%s); the stage goes on",
                self.stage,
                self.artifact_id,
                what,
                error,
            )
            return None

    def _send(self, percent: float, description: str) -> None:
        text = f"{self.stage} {self.artifact_id}: {description}"
        if self._progress_id is None:
            self._progress_id = self._call(
                "progress", create_progress_artifact, percent, key=self._key("progress"), description=text
            )
        else:
            self._call("progress", update_progress_artifact, self._progress_id, percent, description=text)
        self._sent_at, self._pending = time.monotonic(), None

    def progress(self, stage: str, done: float, total: float, description: str) -> None:
        percent = min(100.0, 100.0 * done / total) if total else 100.0
        due = time.monotonic() - self._sent_at >= self.min_seconds
        if percent >= 100.0 or due or self._progress_id is None:
            self._send(percent, description)
        else:
            self._pending = (percent, description)

    def table(self, stage: str, name: str, rows: list[dict[str, Any]]) -> None:
        self._call(
            name,
            create_table_artifact,
            [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in rows],
            key=self._key(name),
            description=f"{self.stage} {self.artifact_id}: {name} so far ({len(rows)} rows)",
        )

    def close(self) -> None:
        """Send the last update if throttling held it back."""
        if self._pending is not None:
            self._send(*self._pending)

    def _key(self, name: str) -> str:
        # keys: lowercase letters, digits and dashes; one per stage artifact and kind
        return f"{self.stage}-{self.artifact_id}-{name}".lower().replace("_", "-")


@contextmanager
def reported(stage: str, artifact_id: str) -> Iterator[None]:
    """Within a Prefect run, the stage computed in this block reports to its task run; else nothing."""
    if not in_run():
        yield
        return
    send_stage_logs_to_prefect()
    reporter = PrefectReporter(stage, artifact_id)
    try:
        with reporting_to(reporter, artifact_id[:8]):
            yield
    finally:
        reporter.close()
