"""What prediction returns: entities (:class:`mmib.spans.Span` with characters), relations between them, and
the post's result."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from mmib.encoders.detector import Detection
from mmib.metrics import extract_spans
from mmib.predict.inputs import InputError
from mmib.predict.tokenize import Token
from mmib.spans import Span


@dataclass
class Relation:
    head: Span
    tail: Span
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
    entities: list[Span] = field(default_factory=list)
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
) -> list[Span]:
    """The BIO spans of a post's predicted tags with their characters; a span's confidence is the mean CRF
    marginal (``marginals``: (n, tags)) of its predicted tags."""
    tags = [labels[i] for i in tag_ids]
    confidences = marginals[torch.arange(len(tag_ids)), tag_ids]  # (n,)
    return [
        with_characters(text, tokens, span, round(float(confidences[span.first : span.last].mean()), 4))
        for span in extract_spans(tags)
    ]


def with_characters(text: str, tokens: list[Token], span: Span, confidence: float) -> Span:
    """A word span of raw ``text`` completed with its characters, surface string and confidence."""
    begin, end = tokens[span.first].start, tokens[span.last - 1].end
    return replace(span, text=text[begin:end], start=begin, end=end, confidence=confidence)


def given_entity(text: str, tokens: list[Token], given: str | tuple[int, int]) -> Span:
    """An untyped entity named by its surface string (first occurrence on word boundaries) or its character
    span, as the words it covers."""
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
    inside = [i for i, t in enumerate(tokens) if t.start < end and t.end > begin]
    if not inside:
        raise InputError(f"entity {text[begin:end]!r} covers no word of the text")
    return Span("", inside[0], inside[-1] + 1, text[begin:end], begin, end, 1.0)
