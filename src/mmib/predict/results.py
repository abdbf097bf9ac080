"""What prediction returns: entities with character offsets, relations between them, and the post's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from mmib.encoders.detector import Detection
from mmib.metrics import extract_spans
from mmib.predict.inputs import InputError
from mmib.predict.tokenize import Token


@dataclass
class Entity:
    text: str
    type: str
    start: int  # character offsets in the raw post, [start, end)
    end: int
    confidence: float  # mean CRF marginal of the span's predicted tags (1.0 for entities given by the user)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Relation:
    head: Entity
    tail: Entity
    relation: str
    confidence: float  # softmax probability of the predicted relation, eq. (19)

    def as_dict(self) -> dict:
        return {
            "head": self.head.as_dict(),
            "tail": self.tail.as_dict(),
            "relation": self.relation,
            "confidence": self.confidence,
        }


@dataclass
class PostPrediction:
    text: str
    tokens: list[Token]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    objects: list[Detection] = field(default_factory=list)  # detected regions whose crops were used
    image_used: bool = False

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "entities": [e.as_dict() for e in self.entities],
            "relations": [r.as_dict() for r in self.relations],
            "objects": [o.as_dict() for o in self.objects],
            "image_used": self.image_used,
        }


def entities_of(
    text: str, tokens: list[Token], labels: list[str], tag_ids: list[int], marginals: torch.Tensor
) -> list[Entity]:
    """The BIO spans of a post's predicted tags as entities with character offsets; a span's confidence is
    the mean CRF marginal (``marginals``: (n, tags)) of its predicted tags."""
    tags = [labels[i] for i in tag_ids]
    confidences = marginals[torch.arange(len(tag_ids)), tag_ids]  # (n,)
    entities = []
    for entity_type, first, last in extract_spans(tags):  # words [first, last)
        begin, end = tokens[first].start, tokens[last - 1].end
        confidence = round(float(confidences[first:last].mean()), 4)
        entities.append(Entity(text[begin:end], entity_type, begin, end, confidence))
    return entities


def given_entity(text: str, tokens: list[Token], given: str | tuple[int, int]) -> Entity:
    """An entity named by its surface string (first occurrence on word boundaries) or character span."""
    if isinstance(given, str):
        starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
        position = text.find(given)
        while position != -1 and not (position in starts and position + len(given) in ends):
            position = text.find(given, position + 1)
        if not given.strip() or position == -1:
            raise InputError(f"entity {given!r} is not a whole-word span of the text")
        begin, end = position, position + len(given)
    else:
        begin, end = int(given[0]), int(given[1])
        if not 0 <= begin < end <= len(text):
            raise InputError(f"entity span {given} is outside the text (length {len(text)})")
    return Entity(text[begin:end], "", begin, end, 1.0)


def word_span(tokens: list[Token], entity: Entity) -> tuple[int, int]:
    """The words ``[first, last)`` an entity's characters cover."""
    inside = [i for i, t in enumerate(tokens) if t.start < entity.end and t.end > entity.start]
    if not inside:
        raise InputError(f"entity {entity.text!r} covers no word of the text")
    return inside[0], inside[-1] + 1
