"""The two benchmark file formats as strategy objects: what reading, labelling and summarising a dataset
needs to know about its format, in one place per format.

A file's format names its task before any model exists (``sniff_format``): CoNLL files hold MNER posts,
dict-literal lines hold MNRE instances. Everything in the data layer that depends on it asks the format
object (``FORMATS[dataset.task]``) rather than comparing the task's name; a new format is a new class here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mmib.data.readers import ReadResult, read_conll, read_mnre
from mmib.data.records import TWITTER_ENTITY_TYPES, LabelVocab, NerPost, ReInstance
from mmib.metrics import extract_spans

Row = Callable[[str, list], str]  # a label and one value per split -> one line of the stats table


class ConllFormat:
    """MNER posts in CoNLL columns, with ``IMGID:`` lines in the Twitter benchmarks."""

    task = "ner"

    def read(self, file: Path, lenient: bool, entity_types: set[str] | None) -> ReadResult:
        """Files with ``IMGID:`` lines accept the Twitter entity types unless ``entity_types`` says
        otherwise; plain CoNLL files accept any BIO type."""
        if entity_types is None and _has_imgid(file):
            entity_types = set(TWITTER_ENTITY_TYPES)
        return read_conll(file, lenient=lenient, allowed_types=entity_types)

    @staticmethod
    def label_vocab(records: list[NerPost]) -> LabelVocab:
        return LabelVocab.for_bio(tag for post in records for tag in post.tags)

    @staticmethod
    def split_stats(records: list[NerPost]) -> dict:
        entities = Counter(span.type for post in records for span in extract_spans(post.tags))
        return {
            "posts": len(records),
            "tokens": sum(len(post) for post in records),
            "entities": dict(sorted(entities.items())),
            "entities_total": sum(entities.values()),
            # I- tags after O or after another type: seqeval (and these counts) start an entity there
            "orphan_i_tags": sum(_orphan_i_tags(post.tags) for post in records),
            "images": len({post.image_id for post in records if post.image_id}),
        }

    @staticmethod
    def stats_lines(splits: dict[str, dict], row: Row) -> list[str]:
        names = list(splits)
        types = sorted({t for s in names for t in splits[s]["entities"]})
        return [
            row("posts", [splits[s]["posts"] for s in names]),
            row("tokens", [splits[s]["tokens"] for s in names]),
            *(row(f"entities {t}", [splits[s]["entities"].get(t, 0) for s in names]) for t in types),
            row("entities total", [splits[s]["entities_total"] for s in names]),
            row("orphan I- tags (start an entity)", [splits[s]["orphan_i_tags"] for s in names]),
            row("distinct image ids", [splits[s]["images"] for s in names]),
        ]


class MnreFormat:
    """MNRE instances, one dict literal per line."""

    task = "mre"

    def read(self, file: Path, lenient: bool, entity_types: set[str] | None) -> ReadResult:
        return read_mnre(file, lenient=lenient)

    @staticmethod
    def label_vocab(records: list[ReInstance]) -> LabelVocab:
        return LabelVocab.for_relations(r.relation for r in records)

    @staticmethod
    def split_stats(records: list[ReInstance]) -> dict:
        relations = Counter(instance.relation for instance in records)
        return {
            "instances": len(records),
            "tokens": sum(len(instance.tokens) for instance in records),
            "images": len({instance.image_id for instance in records if instance.image_id}),
            "relations": dict(sorted(relations.items(), key=lambda kv: (-kv[1], kv[0]))),
        }

    @staticmethod
    def stats_lines(splits: dict[str, dict], row: Row) -> list[str]:
        names = list(splits)
        relations = sorted({r for s in names for r in splits[s]["relations"]})
        return [
            row("instances", [splits[s]["instances"] for s in names]),
            row("distinct images", [splits[s]["images"] for s in names]),
            *(row(f"  {r}", [splits[s]["relations"].get(r, 0) for s in names]) for r in relations),
        ]


DataFormat = ConllFormat | MnreFormat
FORMATS: dict[str, DataFormat] = {f.task: f for f in (ConllFormat(), MnreFormat())}


def _has_imgid(path: Path) -> bool:
    with path.open("rb") as handle:  # bytes: a bad UTF-8 byte is for the reader to name with its line
        return any(line.startswith(b"IMGID:") for _, line in zip(range(200), handle, strict=False))


def _orphan_i_tags(tags: list[str]) -> int:
    previous = ["O", *tags[:-1]]
    return sum(tag.startswith("I-") and prev[2:] != tag[2:] for prev, tag in zip(previous, tags, strict=True))
