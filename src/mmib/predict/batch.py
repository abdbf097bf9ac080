"""``mmib predict``: a file of posts in, one JSON line of predictions per post out.

Input is JSON lines (``{"id": ..., "text": ..., "image": "name.jpg" | null, "caption": ...}``, the caption
for runs trained with captions; ``id`` defaults to the line number, ``image`` is resolved against
``--images``; for an MRE run, ``"head"`` and ``"tail"`` (surface strings or ``[start, end]`` character
spans) ask for that one pair's relation, ``None`` included, with no NER run needed) or a CoNLL file in
the benchmark layout (``IMGID:`` lines name ``<IMGID>.jpg``; the words are joined with spaces and
re-tokenised).

The run is resumable: ids already in the output are skipped, and a last line cut short by a killed run is
removed and redone. A bad input line is reported with its file and line number and skipped; it never
stops the run or costs a good line. Output lines are flushed batch by batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tqdm import tqdm

from mmib.data.errors import DataFormatError
from mmib.data.images import NOT_FOUND, inside
from mmib.data.readers import read_conll
from mmib.errors import UserError
from mmib.predict.extractor import Extractor
from mmib.predict.inputs import InputError, check_text, open_image
from mmib.predict.output import dump_record, open_for_append, read_done
from mmib.predict.prefetch import mapped_ahead

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")


@dataclass
class PredictCounts:
    written: int = 0
    already_done: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    image_missing: int = 0  # posts that name an image not found on disk (predicted without it)
    image_absent: list[str] = field(default_factory=list)  # "file:line: reason" of each such post

    def summary(self) -> str:
        return (
            f"{self.written} posts written, {self.already_done} already in the output, "
            f"{len(self.skipped)} bad lines skipped, {self.image_missing} images not found (predicted text-only)"
        )


@dataclass
class InputPost:
    post_id: str | int  # as the input gave it (a JSON string or number); the line number when absent
    text: str
    image: str | None
    where: str  # "file:line"
    caption: str | None = None  # a caption of the image, for runs trained with captions
    head: str | tuple[int, int] | None = None  # MRE: the one pair asked about (both or neither)
    tail: str | tuple[int, int] | None = None


def _read_jsonl(path: Path, counts: PredictCounts) -> Iterator[InputPost]:
    with path.open("rb") as handle:  # line by line: one bad UTF-8 byte costs its own line only
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                counts.skipped.append(
                    f"{where}: invalid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})"
                )
                continue
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                counts.skipped.append(f"{where}: invalid JSON ({error.msg} at column {error.colno})")
                continue
            except (RecursionError, ValueError):  # nested thousands deep, or a number of thousands of digits
                counts.skipped.append(f"{where}: JSON too deeply nested or with an unreadable number")
                continue
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                counts.skipped.append(f'{where}: expected an object with a string "text" field')
                continue
            image = item.get("image")
            if image is not None and not isinstance(image, str):
                counts.skipped.append(f'{where}: "image" must be a file name or null')
                continue
            caption = item.get("caption")
            if caption is not None and not isinstance(caption, str):
                counts.skipped.append(f'{where}: "caption" must be a string or null')
                continue
            post_id = item.get("id", number)
            if not isinstance(post_id, str | int) or isinstance(post_id, bool):
                counts.skipped.append(f'{where}: "id" must be a string or an integer')
                continue
            pair = _pair(item)
            if isinstance(pair, str):
                counts.skipped.append(f"{where}: {pair}")
                continue
            yield InputPost(post_id, item["text"], image, where, caption, *pair)


def _entity(value: object) -> str | tuple[int, int] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return (value[0], value[1])
    raise ValueError


def _pair(item: dict) -> tuple | str:
    """(head, tail) of an input line, (None, None) without them, or why they are unusable."""
    try:
        head, tail = _entity(item.get("head")), _entity(item.get("tail"))
    except ValueError:
        return '"head" and "tail" must be strings or [start, end] character spans'
    if (head is None) != (tail is None):
        return 'give both "head" and "tail", or neither'
    return head, tail


def _read_conll_posts(path: Path, counts: PredictCounts) -> Iterator[InputPost]:
    try:
        posts = read_conll(path, lenient=True)
    except DataFormatError as error:
        counts.skipped.append(str(error))
        return
    counts.skipped.extend(str(skip) for skip in posts.skipped)
    for number, post in enumerate(posts.records):
        image = f"{post.image_id}.jpg" if post.image_id else None
        post_id = post.image_id or str(number)
        yield InputPost(post_id, " ".join(post.tokens), image, f"{path}:{post.source_line}")


def read_posts(path: Path, counts: PredictCounts) -> Iterator[InputPost]:
    """JSON lines (.jsonl/.json) or CoNLL (anything else whose first line is not JSON)."""
    with path.open("rb") as handle:
        first = handle.readline().lstrip()
    if path.suffix in (".jsonl", ".json") or first.lstrip(b"\xef\xbb\xbf").startswith(b"{"):
        return _read_jsonl(path, counts)
    return _read_conll_posts(path, counts)


def id_key(post_id: object) -> str:
    """Ids compare with their JSON type: 3 and "3" are different posts."""
    return json.dumps(post_id)


class DuplicateIds(UserError, ValueError):
    """Two input lines share an id (and ``--dedupe`` was not given)."""


def check_duplicates(posts: list[InputPost], dedupe: bool, counts: PredictCounts) -> list[InputPost]:
    """The posts with unique ids. A repeated id is an error naming both lines, or, with ``dedupe``, the later
    line is skipped and reported."""
    first_seen: dict[str, InputPost] = {}
    kept = []
    for post in posts:
        key = id_key(post.post_id)
        if key in first_seen:
            message = f"{post.where}: id {key} repeats the id of {first_seen[key].where}"
            if not dedupe:
                raise DuplicateIds(
                    f"{message} (give each post its own id, or pass --dedupe to keep the first)"
                )
            counts.skipped.append(f"{message}; skipped (--dedupe)")
            continue
        first_seen[key] = post
        kept.append(post)
    return kept


def part_path(output: Path, process: int, processes: int) -> Path:
    """Where one of several processes writes its share before the parts are merged into ``output``."""
    return output.with_name(f"{output.name}.part{process + 1}-of{processes}")


def part_paths(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f"{output.name}.part*-of*"))


class MergeMismatch(UserError, RuntimeError):
    """The parts of a multi-process run do not add up to the merged output; the parts are kept."""


def merge_parts(output: Path, posts: list[InputPost]) -> int:
    """Fold the processes' part files into ``output``, every post once and in input order (posts already
    in ``output`` from an earlier run first, as they were); the parts are then removed, but only once the
    records counted into the merge equal those counted out of the parts. Returns the number taken."""
    parts = part_paths(output)
    by_id: dict[str, dict] = {}
    read = 0
    for part in parts:
        for record in read_done(part):  # a last line cut short by a killed process is left out
            by_id[id_key(record["id"])] = record
            read += 1
    if not by_id:
        return 0
    earlier = read_done(output)
    ordered = [by_id[key] for key in (id_key(p.post_id) for p in posts) if key in by_id]
    if len(ordered) != read:
        raise MergeMismatch(
            f"{output}: the part files hold {read} records but {len(ordered)} of them match distinct input "
            f"posts; nothing merged, parts kept: {', '.join(p.name for p in parts)}"
        )
    temporary = output.with_name(output.name + ".merging")
    temporary.write_text("".join(dump_record(r) for r in [*earlier, *ordered]), encoding="utf-8")
    if len(read_done(temporary)) != len(earlier) + read:  # read back what was written before deleting
        raise MergeMismatch(f"{temporary}: the merged file does not read back whole; parts kept")
    temporary.replace(output)  # atomic: a kill mid-merge leaves the parts and the old output
    for part in parts:
        part.unlink()
    return len(ordered)


def done_ids(output: Path) -> set[str]:
    """Ids (as :func:`id_key`) already in the output. Refuses (DataFormatError, file:line) a file that is
    not an mmib predictions output; never rewrites it (predict/output.py)."""
    return {id_key(record["id"]) for record in read_done(output)}


def _resolve_image(post: InputPost, images: Path | None) -> tuple[Path | None, str | None]:
    """The post's image file, or None and why. With ``--images`` the name must lie inside that folder (the
    containment rule of :func:`mmib.data.images.inside`); a name outside it reads exactly like a missing file."""
    if post.image is None:
        return None, None
    path = (
        (Path(post.image) if post.image.strip() else None) if images is None else inside(images, post.image)
    )
    try:
        found = path is not None and path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        found = False
    if found:
        return path, None
    return None, f"{post.where}: image {post.image[:60]!r} {NOT_FOUND}; predicted from the text"


@dataclass
class OpenedPost:
    post: InputPost
    image: object = None  # the decoded image, or None
    image_absent: str | None = None  # why a named image is not there
    error: str | None = None  # why the post is skipped


def _open(post: InputPost, images: Path | None, max_chars: int) -> OpenedPost:
    """Checks the text and decodes the image; a bad post becomes its error line, never an exception."""
    try:
        check_text(post.text, max_chars)
        path, absent = _resolve_image(post, images)
        return OpenedPost(post, open_image(path), absent)
    except InputError as error:
        return OpenedPost(post, error=f"{post.where}: {error}")


def predict_file(
    extractor: Extractor,
    input_path: Path,
    output_path: Path,
    images: Path | None = None,
    progress: bool = True,
    dedupe: bool = False,
    process: int = 0,
    processes: int = 1,
) -> PredictCounts:
    """Predict every post of ``input_path`` into ``output_path`` (JSON lines, resumable). Raises
    :class:`DuplicateIds` before predicting anything when two lines share an id (unless ``dedupe``).

    With several processes, process ``process`` predicts every ``processes``-th post into its own part file
    (:func:`part_path`); :func:`merge_parts` then joins them. Only the first process reports the input's bad
    lines (every process reads them); each reports the posts it predicted.
    """
    counts = PredictCounts()
    posts = check_duplicates(list(read_posts(input_path, counts)), dedupe, counts)
    if process > 0:
        counts.skipped.clear()
    finished = done_ids(output_path).union(*(done_ids(part) for part in part_paths(output_path)))
    target = output_path if processes == 1 else part_path(output_path, process, processes)
    posts = posts[process::processes]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    pending: list[tuple[InputPost, object]] = []
    with open_for_append(target) as out:
        bar = tqdm(total=len(posts), desc="predicting", unit="post", disable=not progress)
        todo = [post for post in posts if id_key(post.post_id) not in finished]
        counts.already_done += len(posts) - len(todo)
        bar.update(len(posts) - len(todo))
        # posts are checked and their images decoded in the prefetch pool, beside the networks
        opening = partial(_open, images=images, max_chars=extractor.max_chars)
        for opened in mapped_ahead(todo, opening, ahead=2 * extractor.batch_size):
            if opened.error is not None:
                counts.skipped.append(opened.error)
                continue
            if opened.image_absent is not None:
                counts.image_missing += 1
                counts.image_absent.append(opened.image_absent)
            pending.append((opened.post, opened.image))
            if len(pending) >= extractor.batch_size:
                _write_batch(extractor, pending, out, counts, bar)
        if pending:
            _write_batch(extractor, pending, out, counts, bar)
        bar.close()
    counts.skipped.sort(key=line_number)  # in file order, whether found while reading or while predicting
    return counts


def _write_batch(extractor: Extractor, pending: list[tuple[InputPost, object]], out, counts, bar) -> None:
    """Predict the pending posts (one batch; a given head and tail alone, as mmib serve scores it), append
    their lines and empty ``pending``."""
    batched = [(post, image) for post, image in pending if post.head is None]
    found = extractor.analyze_many([(p.text, image, p.caption) for p, image in batched]) if batched else []
    results = {id(post): result for (post, _), result in zip(batched, found, strict=True)}
    for post, image in pending:
        if post.head is not None:
            try:
                results[id(post)] = extractor.analyze_pair(
                    post.text, image, post.head, post.tail, post.caption
                )
            except InputError as error:
                counts.skipped.append(f"{post.where}: {error}")
                continue
        out.write(dump_record({"id": post.post_id, **results[id(post)].as_dict()}))
        counts.written += 1
    out.flush()
    bar.update(len(pending))
    pending.clear()


def line_number(message: str) -> int:
    """The line of a ``file:line: reason`` message (0 when it names none)."""
    location = message.split(": ", 1)[0]
    tail = location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
