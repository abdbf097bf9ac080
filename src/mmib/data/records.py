"""Typed records for the two tasks and deterministic label vocabularies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mmib.spans import Span

# Twitter-2015 calls the miscellaneous type OTHER, Twitter-2017 calls it MISC; both are kept as written
# so that scores match the published per-type tables of each dataset.
TWITTER_ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC", "OTHER")
NONE_RELATION = "None"


@dataclass
class NerPost:
    """One post of an MNER benchmark: words, word-level BIO tags and the image id (None if text-only)."""

    tokens: list[str]
    tags: list[str]
    image_id: str | None
    source_line: int = 0  # line of the first token (or of IMGID:) in the source file, for messages
    index: int = 0  # position in its split

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class ReInstance:
    """One MRE instance: words, head and tail spans (untyped, ``text`` the entity's name), image file name
    and the relation label."""

    tokens: list[str]
    head: Span
    tail: Span
    image_id: str | None
    relation: str
    source_line: int = 0
    index: int = 0  # 0-based instance index in its split: the key of MNRE crop mappings
    extra: dict = field(default_factory=dict)  # keys beyond the standard ones (e.g. caption), kept


@dataclass(frozen=True)
class LabelVocab:
    """A fixed label <-> id map. Built sorted so that the same data always gives the same ids."""

    labels: tuple[str, ...]

    @classmethod
    def for_bio(cls, tags: Iterable[str]) -> LabelVocab:
        """``O`` first, then for each type (sorted) ``B-type`` and ``I-type``, whichever of them occur."""
        types = sorted({t[2:] for t in tags if t != "O"})
        return cls(("O", *(f"{prefix}-{t}" for t in types for prefix in ("B", "I"))))

    @classmethod
    def for_relations(cls, relations: Iterable[str], none_label: str = NONE_RELATION) -> LabelVocab:
        """The no-relation label first (id 0, as in MNRE's rel2id), then the others sorted."""
        others = sorted(set(relations) - {none_label})
        return cls((none_label, *others))

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def id(self, label: str) -> int:
        return self.labels.index(label)

    def to_dict(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}
