"""What a post brings to a batch, whoever read it: a benchmark reader (training, evaluation, analysis) or a
user's raw text (prediction, serving)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmib.spans import Span


@dataclass(frozen=True)
class PairInput:
    """One entity pair of an MRE post: the head and tail spans (their words are what the batch reads) and,
    when known, the gold relation."""

    head: Span
    tail: Span
    relation: str | None = None
    source_line: int = 0  # where the pair was read, for messages about its label


@dataclass
class PostInput:
    """One post on its way into a :class:`~mmib.model.Batch`.

    ``identity`` is the same for posts that show the same image (they are never each other's negatives in
    L_ar, eq. 24); ``tags`` (MNER) and the pairs' relations (MRE) are the gold labels, None when predicting.
    """

    words: list[str]
    caption: str | None = None
    identity: int = 0
    tags: list[str] | None = None
    pairs: list[PairInput] = field(default_factory=list)
    source_line: int = 0
