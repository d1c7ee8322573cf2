"""The one error type for bad user data: it names the file and the field, in one line."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Input data that cannot be used. The CLI prints ``str(error)`` alone, without a traceback."""

    def __init__(self, file: str | Path, field: str | None, problem: str) -> None:
        self.file, self.field, self.problem = str(file), field, problem
        where = f"{self.file}" + (f" [field {field!r}]" if field else "")
        super().__init__(f"{where}: {problem}")
