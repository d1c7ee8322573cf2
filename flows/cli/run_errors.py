"""Bad input inside a flow run: Prefect logs the exception with its traceback on the run's logger
before the CLI prints its one line. Without ``--debug`` the traceback of a user error is dropped
from that record (its one-line message stays, in the terminal and in the run's logs)."""

from __future__ import annotations

import logging

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine")


class DropUserErrorTraceback(logging.Filter):
    def __init__(self, user_errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.user_errors = user_errors

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.user_errors):
            record.exc_info, record.exc_text = None, None
        return True


def drop_user_error_tracebacks(user_errors: tuple[type[BaseException], ...]) -> None:
    """Install the filter on Prefect's run loggers (a logger's filter sees only its own records)."""
    flt = DropUserErrorTraceback(user_errors)
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropUserErrorTraceback) for f in logger.filters):
            logger.addFilter(flt)
