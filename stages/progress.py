"""How far a running stage is, wherever it runs: a bar on a terminal, else one log line every so
often, and at every update the installed ``Reporter`` (the Prefect UI: ``tasks.progress``).

Stages never import Prefect. The task side installs a reporter for the duration of a stage
(``reporting_to``). A stage run in child processes (``stages.launch``) has no reporter of its own:
its worker installs ``ChildChannel`` on global rank 0, which prints each event as one marked line on
stdout, and the launcher hands those lines to the reporter of the task that launched it
(``relay``). The children's log records travel the same way, so they reach the parent's loggers and
are written there with the parent's time, format and stage name, once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

MARK = "@llara-event "
"""Prefix of the lines a child process prints for its parent to read (never shown as they are)."""
# torchrun --tee prefixes every line of local rank N with "[default<N>]:".
_TORCHRUN_PREFIX = re.compile(r"^\[\w+?(\d+)\]:")


class Reporter(Protocol):
    """Where a stage's progress goes besides the terminal and the log (the Prefect UI)."""

    def progress(self, stage: str, done: float, total: float, description: str) -> None:
        """``done`` of ``total`` units; ``description`` says what (e.g. "step 5/8, loss 6.02")."""

    def table(self, stage: str, name: str, rows: list[dict[str, Any]]) -> None:
        """A table that replaces the previous one of the same ``name`` (e.g. the validation history)."""


_REPORTER: ContextVar[Reporter | None] = ContextVar("llara_reporter", default=None)
_LABEL: ContextVar[str] = ContextVar("llara_label", default="")
_ACTIVE: ContextVar[Progress | None] = ContextVar("llara_progress", default=None)


@contextmanager
def reporting_to(reporter: Reporter | None, label: str = "") -> Iterator[None]:
    """Send the progress of the stages run in this block (this thread) to ``reporter``. ``label``
    (the artifact being computed) starts the lines of its child processes: stages running side by
    side (``llara run --max-parallel``) share one console.

    A stage's progress is never nested in an earlier one's: a progress an earlier stage left open
    (an abandoned generator) would otherwise silence every later stage of the process.
    """
    tokens = _REPORTER.set(reporter), _LABEL.set(label), _ACTIVE.set(None)
    try:
        yield
    finally:
        _REPORTER.reset(tokens[0])
        _LABEL.reset(tokens[1])
        _ACTIVE.reset(tokens[2])


def current_reporter() -> Reporter | None:
    return _REPORTER.get()


def report_table(stage: str, name: str, rows: list[dict[str, Any]]) -> None:
    """Publish ``rows`` as the stage's table ``name`` where a reporter listens; else nothing."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter.table(stage, name, rows)


def bars_off() -> bool:
    """``llara --quiet`` turns every bar off through Hugging Face's own switch (one switch for all)."""
    return os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes")


class Progress:
    """``done`` of ``total`` units of one stage, shown once per update, one way.

    On a terminal with no reporter (a command run by hand) a tqdm bar; otherwise (a log file, a
    Prefect run, a child process) a log line on ``llara.<stage>`` when ``done`` crosses a multiple
    of ``every`` and at the end; ``show=False``: neither. Each update also goes to the reporter, if
    any. A ``Progress`` opened while another is active in the same thread is silent: a stage's
    progress is its outermost one (a sharded evaluation counts its forwards, not the rows of each).
    """

    def __init__(
        self,
        stage: str,
        total: float,
        unit: str = "step",
        every: float = 1,
        description: str = "",
        show: bool = True,
    ) -> None:
        self.stage, self.total, self.unit, self.every = stage, total, unit, max(every, 1)
        self.description = description or stage
        self.log = logging.getLogger(f"llara.{stage}")
        self.silent = _ACTIVE.get() is not None
        self.reporter = None if self.silent else _REPORTER.get()
        shown = show and not self.silent
        draw = shown and self.reporter is None and not bars_off() and sys.stderr.isatty()
        self.lines = shown and not draw
        self.bar = None
        self._stack = ExitStack()
        self._previous = _ACTIVE.get()
        if not self.silent:
            _ACTIVE.set(self)
        self._logged = -1.0  # the last multiple of ``every`` logged; inf once the end was
        if draw:
            from tqdm.auto import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            # log records (a validation line) print above the bar instead of through it
            self._stack.enter_context(logging_redirect_tqdm())
            self.bar = self._stack.enter_context(tqdm(total=total, desc=self.description, unit=unit))

    def update(self, done: float, line: str = "", **postfix: object) -> None:
        """``done`` units so far (not an increment); ``line`` the log text of this point."""
        if self.silent:
            return
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix({k: str(v) for k, v in postfix.items()}, refresh=False)
            self.bar.update(done - self.bar.n)
        bucket = float("inf") if done >= self.total else done // self.every
        if self.lines and bucket > self._logged:
            self._logged = bucket
            self.log.info("%s", line or f"{self.description}: {done:g}/{self.total:g} {self.unit}s")
        if self.reporter is not None:
            text = line or f"{self.description}: {done:g}/{self.total:g} {self.unit}s"
            self.reporter.progress(self.stage, done, self.total, text)

    def finish(self, line: str = "") -> None:
        """Done before ``total`` (early stopping): show it as complete."""
        self.update(self.total, line)

    def close(self) -> None:
        # set back, not reset by token: a generator's Progress may be closed from another context
        if _ACTIVE.get() is self:
            _ACTIVE.set(self._previous)
        self._stack.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----- child processes ---------------------------------------------------------------------------


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


class ChildChannel(logging.Handler):
    """In a child process: log records and (on global rank 0) progress as marked stdout lines."""

    def __init__(self, rank: int) -> None:
        super().__init__(logging.INFO)
        self.rank = rank

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            _emit({"log": [record.levelno, record.name, self.rank, message]})
        except Exception:  # noqa: BLE001 - logging must never fail the stage
            self.handleError(record)

    def progress(self, stage: str, done: float, total: float, description: str) -> None:
        _emit({"progress": [stage, done, total, description]})

    def table(self, stage: str, name: str, rows: list[dict[str, Any]]) -> None:
        _emit({"table": [stage, name, rows]})


@contextmanager
def child_channel(rank: int) -> Iterator[None]:
    """In a launched child: ``llara.*`` records (INFO and up) and, on rank 0, the progress go to the
    parent through stdout; the parent decides, with its own log level, what to show."""
    channel = ChildChannel(rank)
    logger = logging.getLogger("llara")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(channel)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with reporting_to(channel if rank == 0 else None):
            yield
    finally:
        logger.removeHandler(channel)
        logger.setLevel(level)
        logger.propagate = propagate


def relay(line: str, logger: logging.Logger | logging.LoggerAdapter, ranks: int = 1) -> None:
    """One line a child printed: its marked events to this process's loggers and reporter, any
    other line (a library's own output) to ``logger`` as it is. ``ranks`` > 1 names the rank."""
    text = line
    if (prefix := _TORCHRUN_PREFIX.match(line)) is not None:
        text = line[prefix.end() :]
    if not text.startswith(MARK):
        logger.info("%s", line)
        return
    try:
        event = json.loads(text[len(MARK) :])
    except ValueError:
        logger.info("%s", line)
        return
    if "log" in event:
        level, name, rank, message = event["log"]
        tags = " ".join(filter(None, [_LABEL.get(), f"rank {rank}" if ranks > 1 else ""]))
        logging.getLogger(name).log(level, "%s%s", f"[{tags}] " if tags else "", message)
    elif (reporter := _REPORTER.get()) is not None:
        if "progress" in event:
            reporter.progress(*event["progress"])
        elif "table" in event:
            reporter.table(*event["table"])
