"""Errors for malformed input: every message names the file, the line and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmib.errors import UserError


class DataFormatError(UserError, ValueError):
    """A record that does not follow the benchmark format.

    The message reads ``path:line: problem (expected ...)`` so editors and terminals can jump to it.
    """

    def __init__(self, path: Path | str, line: int, problem: str, expected: str = "") -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        hint = f" (expected {expected})" if expected else ""
        super().__init__(f"{self.path}:{line}: {problem}{hint}")


@dataclass(frozen=True)
class SkippedRecord:
    """A record that lenient reading left out, with the reason, so nothing is dropped silently."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"
