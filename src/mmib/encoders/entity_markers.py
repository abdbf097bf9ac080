"""Entity-marker input for MRE (an option; the paper pools the entity spans of C, eq. (19)).

The "matching the blanks" family (Baldini Soares et al., 2019) and HVPNeT's MRE head mark the head and
tail in the text itself and classify from the representations of the opening markers. Every (head, tail)
pair then gets its own encoding, so the encoder sees which two spans are asked about; the paper's pooled
head encodes a post once for all its pairs and asks the classifier to tell the pair from pooled spans.

Markers are plain punctuation already in every sub-word vocabulary, so no embedding row is added and a
run loads with the stock tokenizer: ``«`` ... ``»`` around the head, ``<`` ... ``>`` around the tail.
None of the four occurs in the MNRE text (``@`` and ``#``, the usual punctuation markers, are in 15% of
its words as mentions and hashtags).
"""

from __future__ import annotations

from mmib.errors import SettingError

HEAD_MARKERS = ("«", "»")
TAIL_MARKERS = ("<", ">")


def mark_entities(
    words: list[str], head: tuple[int, int], tail: tuple[int, int]
) -> tuple[list[str], tuple[int, int], tuple[int, int]]:
    """Words with the head and tail ``[start, end)`` wrapped in markers, and the one-word spans of the
    two opening markers (what the relation head reads instead of the entity words).

    Spans that nest or overlap stay well-formed: at each boundary closing markers come before opening
    ones, and the head's before the tail's.
    """
    for name, (start, end) in (("head", head), ("tail", tail)):
        if not 0 <= start < end <= len(words):
            raise SettingError(f"{name} span [{start}, {end}) is outside the {len(words)} words")
    marked: list[str] = []
    opening: dict[str, int] = {}
    spans = (("head", head, HEAD_MARKERS), ("tail", tail, TAIL_MARKERS))
    for position in range(len(words) + 1):
        marked.extend(markers[1] for _, (_, end), markers in spans if end == position)
        for name, (start, _), markers in spans:
            if start == position:
                opening[name] = len(marked)
                marked.append(markers[0])
        if position < len(words):
            marked.append(words[position])
    return marked, (opening["head"], opening["head"] + 1), (opening["tail"], opening["tail"] + 1)
