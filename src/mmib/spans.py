"""The one span type of mmib, from the benchmark reader to the API.

A :class:`Span` is a run of words ``[first, last)`` of a post with a type. Spans read from benchmark files
(gold NER spans, MNRE heads and tails) know only their words and, for MNRE, the entity's name; spans found
in a user's raw text (predictions, heads and tails given by surface string or characters) also carry their
characters ``[start, end)`` in the raw string and, when predicted, a confidence. The metrics, the error
analysis, the relation batches and the API all pass the same type, so a span never changes shape between
reading, scoring and answering.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Words ``[first, last)`` of a post, with their type and, where known, characters and a confidence.

    ``type``: the entity type of a NER span (``PER``...); empty for an MNRE head or tail (MNRE names no types)
    and for an entity a user gives by hand. Frozen, so spans are set members (``mmib.metrics`` compares sets).
    """

    type: str
    first: int  # words [first, last) in the post's word list
    last: int
    text: str = ""  # the surface string: the entity's name in MNRE files, the raw characters in predictions
    start: int | None = None  # characters [start, end) in the raw post (spans of raw text only)
    end: int | None = None
    confidence: float | None = None  # predicted spans: mean CRF marginal; given spans: 1.0

    @property
    def words(self) -> tuple[int, int]:
        """``(first, last)``: the word range, as the batch builders and entity markers take it."""
        return self.first, self.last

    def as_dict(self) -> dict:
        """The API's and the prediction files' form: the surface string, type, characters and confidence."""
        return {
            "text": self.text,
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
        }
