"""The predictions output of ``mmib predict``: append-only JSON lines that the command owns.

Why a module of its own: the output is the one file a user may point at something precious (a gold CoNLL
file, the input itself, notes), and resuming means reading it back. So it is checked whole before anything
is written, never rewritten except for a last line that a kill cut short, locked against a second run, and
written so that one record is one line for every reader:

- a file that exists and is not ours (a line that is not a prediction record, anywhere but a cut-short last
  line) is refused with ``file:line`` before a byte is written;
- records are split at ``\\n`` only, and written with the characters that ``str.splitlines`` and other
  readers also take for line breaks (U+0085, U+2028, U+2029) escaped, so a text holding one cannot split its
  record in two;
- a complete last record without its newline gets one before the next record is appended;
- an exclusive lock (``fcntl.flock`` on the output itself) keeps a second run off the same output.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmib.data.errors import DataFormatError
from mmib.errors import UserError

# json.dumps escapes every control character below U+0020; these three are the other line breaks of
# str.splitlines (and of JavaScript's line terminators, for U+2028/U+2029)
_UNESCAPED_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
RECORD_KEYS = ("id", "entities")  # every mmib prediction record has them
RECORD_START = b'{"id": '  # how every record written by dump_record begins


class OutputInUse(UserError, RuntimeError):
    """Another process holds the output's lock."""


def dump_record(record: dict) -> str:
    """One JSON line (with its newline) that no reader splits: line separators escaped, UTF-8 kept."""
    line = json.dumps(record, ensure_ascii=False)
    for raw, escaped in _UNESCAPED_BREAKS.items():
        line = line.replace(raw, escaped)
    return line + "\n"


def _records(path: Path) -> tuple[list[dict], int, bool]:
    """The records of an existing output, the byte length of its complete part, and whether that part
    lacks its final newline. Raises DataFormatError at the first line that is not a prediction record,
    unless it is a last line cut short (no newline after it), which is left out of the complete part."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: list[dict] = []
    offset = 0
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines)
        if last and not raw:
            return records, offset, False  # the file ends with a newline (or is empty)
        record, problem = _parse(raw)
        if problem is None:
            records.append(record)
            offset += len(raw) + (0 if last else 1)
            continue
        if last and raw.startswith(RECORD_START):  # one of ours, cut short by a kill: dropped and redone
            return records, offset, False
        raise DataFormatError(
            path,
            number,
            f"{problem}; this file is not an mmib predictions output and nothing was written to it "
            f"(choose another --output, or move {path.name} away)",
        )
    return records, offset, True  # the last record is complete but lacks its newline


def _parse(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 (byte {error.start + 1})"
    except (json.JSONDecodeError, RecursionError):
        return None, "not a JSON record"
    if not isinstance(record, dict) or any(key not in record for key in RECORD_KEYS):
        return None, f"not a prediction record (expected an object with {' and '.join(RECORD_KEYS)})"
    return record, None


def read_done(path: Path) -> list[dict]:
    """The complete records of an output (none when it does not exist); refuses a file that is not ours."""
    if not path.exists():
        return []
    _refuse_irregular(path)
    return _records(path)[0]


def _refuse_irregular(path: Path) -> None:
    """A folder, FIFO or device as the output: refused before it is opened (a FIFO would block)."""
    if path.exists() and not path.is_file():
        raise DataFormatError(path, 0, "not a regular file", "a predictions file (JSON lines)")


@contextmanager
def open_for_append(path: Path) -> Iterator:
    """The output, locked, checked and repaired (a cut-short last line dropped, a missing final newline
    added), opened for appending records. Raises OutputInUse when another run holds it."""
    _refuse_irregular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:  # "a" creates the file, and changes nothing in one
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise OutputInUse(
                f"{path}: another mmib predict is writing this output; wait for it or choose another --output"
            ) from error
        _, complete, needs_newline = _records(path)
        with path.open("r+b") as repair:
            repair.truncate(complete)  # drops only a last line cut short
            if needs_newline:
                repair.seek(0, os.SEEK_END)
                repair.write(b"\n")
        yield out
