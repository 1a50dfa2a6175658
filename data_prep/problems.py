"""Problems found in input data, collected so that all of them are reported together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

MAX_LISTED = 5  # per kind of problem, so a broken 1M-line file gives a readable error


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class DataError(ValueError):
    """The input data has errors; ``problems`` lists every one that was found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Found {len(self.problems)} problem(s) in the input data:\n{lines}")


def first_few(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = sorted(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
