"""The error family: every error rerankforge raises for the user to act on is a ``RerankforgeError``.

Each carries the CLI's exit code (2: the input or config is wrong and the user must change it; 1: the run failed)
and, optionally, a one-line ``hint`` on how to fix it, which ends the message. Each subclass also keeps the
built-in base it always had (``ValueError``, ``OSError``, ...), so ``except ValueError`` still catches a bad config.
"""

from __future__ import annotations

from typing import Optional

ERROR_LOG_ENV = "RERANKFORGE_ERROR_LOG"  # `rerankforge <command>` writes its error (and traceback) there when set
INPUT = 2  # exit code: the user's input or config must change
FAILED = 1  # exit code: the run failed (a stage, a model, the environment)


class RerankforgeError(Exception):
    """Base of rerankforge's errors. ``exit_code``: what the CLI exits with; ``hint``: how to fix it."""

    exit_code: int = FAILED

    def __init__(self, message: str = "", *args, hint: Optional[str] = None, exit_code: Optional[int] = None):
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(f"{message} {hint}" if hint else message, *args)


class InputError(RerankforgeError):
    """The user's input or config is wrong; the message says what was given, what was expected and the fix."""

    exit_code = INPUT


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for ``exc``: its own when it is a ``RerankforgeError``; 2 for a missing file the user
    named; 1 for anything else (a bug or the environment)."""
    if isinstance(exc, RerankforgeError):
        return exc.exit_code
    return INPUT if isinstance(exc, FileNotFoundError) else FAILED


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (+ how many lines more)."""
    lines = str(exc).strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    return f"{type(exc).__name__}: {lines[0]}{more}".rstrip(": ")
