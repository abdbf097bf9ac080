"""Readers for the benchmark text formats.

* CoNLL (Twitter-2015/2017, and any text-only BIO dataset): optional ``IMGID:<id>`` line, then one
  ``token<TAB>tag`` line per word, a blank line between posts.
* MNRE: one Python dict literal per line, parsed with ``ast.literal_eval`` (never ``eval``).

Strict mode raises :class:`DataFormatError` on the first bad record; lenient mode skips bad records
and returns them as :class:`SkippedRecord` so the caller can report how many and which lines.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mmib.data.errors import DataFormatError, SkippedRecord
from mmib.data.records import NerPost, ReInstance
from mmib.spans import Span

_TAG_PATTERN = re.compile(r"^(O|[BI]-[A-Za-z][A-Za-z0-9_.\-]*)$")  # types may hold hyphens: B-work-of-art
_IMGID_PREFIX = "IMGID:"


@dataclass
class ReadResult:
    """Records read from one file plus those skipped in lenient mode."""

    path: Path
    records: list = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines without their line ends; a UTF-8 byte-order mark is dropped, invalid UTF-8 names its line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    path,
                    number,
                    f"invalid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})",
                    "UTF-8 text",
                ) from None
            yield number, line.rstrip("\r\n")


# --- CoNLL -------------------------------------------------------------------------------------------


def _conll_blocks(path: Path) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """Group non-blank lines into posts; a post also ends where a new ``IMGID:`` line begins."""
    block: list[tuple[int, str]] = []
    for number, line in numbered_lines(path):
        if not line.strip():
            if block:
                yield block[0][0], block
            block = []
            continue
        if line.startswith(_IMGID_PREFIX) and block:
            yield block[0][0], block
            block = []
        block.append((number, line))
    if block:
        yield block[0][0], block


def _parse_conll_block(path: Path, block: list[tuple[int, str]], allowed_types: set[str] | None) -> NerPost:
    image_id = None
    first_line = block[0][0]
    if block[0][1].startswith(_IMGID_PREFIX):
        image_id = block[0][1][len(_IMGID_PREFIX) :].strip()
        if not image_id:
            raise DataFormatError(path, first_line, "empty IMGID", "IMGID:<image id>")
        block = block[1:]
    if not block:
        raise DataFormatError(path, first_line, "post has an IMGID line but no tokens", "token<TAB>tag lines")
    tokens, tags = [], []
    for number, line in block:
        if line.startswith(_IMGID_PREFIX):
            raise DataFormatError(path, number, "IMGID line inside a post", "a blank line before IMGID:")
        if "\t" not in line:
            raise DataFormatError(path, number, f"no tab in {line!r}", "token<TAB>tag")
        if line.count("\t") > 1:
            columns = line.count("\t") + 1
            raise DataFormatError(
                path, number, f"{columns} tab-separated columns in {line!r}", "token<TAB>tag"
            )
        token, tag = line.split("\t")
        tag = tag.strip()
        # Tokens are kept as written: Twitter-2015 has tokens that are a lone no-break space.
        if not token.strip(" "):
            raise DataFormatError(path, number, "empty token", "token<TAB>tag")
        if not _TAG_PATTERN.match(tag):
            raise DataFormatError(path, number, f"malformed tag {tag!r}", "O, B-TYPE or I-TYPE")
        if allowed_types is not None and tag != "O" and tag[2:] not in allowed_types:
            raise DataFormatError(
                path, number, f"unknown entity type in {tag!r}", f"one of {', '.join(sorted(allowed_types))}"
            )
        tokens.append(token)
        tags.append(tag)
    return NerPost(tokens=tokens, tags=tags, image_id=image_id, source_line=first_line)


def read_conll(
    path: Path | str, *, lenient: bool = False, allowed_types: set[str] | None = None
) -> ReadResult:
    """Read a CoNLL file with or without ``IMGID:`` lines into :class:`NerPost` records.

    ``allowed_types`` restricts entity types (e.g. the Twitter types); ``None`` accepts any BIO type.
    """
    path = Path(path)
    result = ReadResult(path)
    for _first_line, block in _conll_blocks(path):
        try:
            post = _parse_conll_block(path, block, allowed_types)
        except DataFormatError as error:
            if not lenient:
                raise
            result.skipped.append(SkippedRecord(path, error.line, error.problem))
            continue
        post.index = len(result.records)
        result.records.append(post)
    return result


# --- MNRE --------------------------------------------------------------------------------------------

_MRE_EXPECTED = "{'token': [...], 'h': {'name', 'pos'}, 't': {...}, 'img_id': ..., 'relation': ...}"


def _parse_entity(path: Path, number: int, record: dict, key: str, n_tokens: int) -> Span:
    entity = record.get(key)
    if not isinstance(entity, dict) or "pos" not in entity:
        raise DataFormatError(
            path, number, f"missing or malformed {key!r}", f"{key!r}: {{'name': ..., 'pos': [start, end]}}"
        )
    pos = entity["pos"]
    if not (isinstance(pos, list | tuple) and len(pos) == 2 and all(isinstance(p, int) for p in pos)):
        raise DataFormatError(path, number, f"{key!r} pos is {pos!r}", "two integers [start, end)")
    start, end = pos
    if not 0 <= start < end <= n_tokens:
        raise DataFormatError(
            path,
            number,
            f"{key!r} span [{start}, {end}) outside the sentence of {n_tokens} tokens",
            f"0 <= start < end <= {n_tokens}",
        )
    return Span("", start, end, text=str(entity.get("name", "")))


def _parse_mre_line(path: Path, number: int, line: str) -> ReInstance:
    try:
        record = ast.literal_eval(line)
    # TypeError: a literal that is no value ({[1]: 2}); RecursionError/MemoryError: nested thousands deep
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as error:
        raise DataFormatError(
            path, number, f"not a Python dict literal ({error.__class__.__name__})", _MRE_EXPECTED
        ) from None
    if not isinstance(record, dict):
        raise DataFormatError(path, number, f"a {type(record).__name__}, not a dict", _MRE_EXPECTED)
    tokens = record.get("token")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise DataFormatError(
            path, number, "missing or empty 'token' list", "'token': a non-empty list of strings"
        )
    head = _parse_entity(path, number, record, "h", len(tokens))
    tail = _parse_entity(path, number, record, "t", len(tokens))
    if head.words == tail.words:
        raise DataFormatError(
            path,
            number,
            f"head and tail are the same span [{head.first}, {head.last})",
            "two different spans",
        )
    relation = record.get("relation")
    if not isinstance(relation, str) or not relation:
        raise DataFormatError(
            path, number, "missing 'relation'", "'relation': a label such as '/per/org/member_of' or 'None'"
        )
    image_id = record.get("img_id")
    if image_id is not None and not isinstance(image_id, str):
        raise DataFormatError(path, number, f"'img_id' is {image_id!r}", "a file name such as 'x.jpg'")
    standard = {"token", "h", "t", "img_id", "relation"}
    extra = {k: v for k, v in record.items() if k not in standard}
    return ReInstance(tokens, head, tail, image_id, relation, source_line=number, extra=extra)


def read_mnre(path: Path | str, *, lenient: bool = False) -> ReadResult:
    """Read an MNRE-format file (one dict literal per line) into :class:`ReInstance` records.

    The instance index (the key of MNRE crop mappings) counts non-blank lines, skipped ones included,
    so that crops stay attached to the right instance in lenient mode.
    """
    path = Path(path)
    result = ReadResult(path)
    index = -1
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        index += 1
        try:
            instance = _parse_mre_line(path, number, line)
        except DataFormatError as error:
            if not lenient:
                raise
            result.skipped.append(SkippedRecord(path, error.line, error.problem))
            continue
        instance.index = index
        result.records.append(instance)
    return result


def sniff_format(path: Path | str) -> str:
    """``"mre"`` if the first non-blank line is a dict literal, else ``"ner"`` (CoNLL)."""
    for _, line in numbered_lines(Path(path)):
        if line.strip():
            return "mre" if line.lstrip().startswith("{") else "ner"
    return "ner"
