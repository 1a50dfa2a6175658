"""Problems found in input data, collected so that all of them are reported together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from rerankforge.core.errors import InputError

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


class DataError(InputError, ValueError):
    """The input data has errors; ``problems`` lists every one that was found.

    The message groups problems of one kind (the same message text) and lists the first ``MAX_LISTED`` of each
    with their file and line, so that a file broken on every line still gives a short, readable error."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(summarize(self.problems))


def summarize(problems: list[Problem], limit: int = MAX_LISTED) -> str:
    """``Found N problems in the input data:`` then each kind of problem once, with where the first few are."""
    kinds: dict[tuple[str, str], list[Problem]] = {}
    for problem in problems:
        kinds.setdefault((problem.level, problem.message), []).append(problem)
    count = len(problems)
    head = f"Found {count:,} problem(s) in the input data"
    lines = [head + (f" ({len(kinds)} kinds):" if len(kinds) > 1 and len(kinds) < count else ":")]
    for (_, message), group in kinds.items():
        if len(group) == 1:
            lines.append(f"  - {group[0]}")
            continue
        lines.append(f"  - {message} ({len(group):,} times)")
        located = [p for p in group if p.file]
        for problem in located[:limit]:
            lines.append(f"      at {problem.file}" + (f":{problem.line}" if problem.line is not None else ""))
        if len(located) > limit:
            lines.append(f"      ... and {len(group) - limit:,} more like this")
    return "\n".join(lines)


def first_few(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = sorted(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
