"""A tweet-aware word tokenizer with character offsets, for raw posts given to :class:`mmib.Extractor`.

The benchmarks are pre-tokenised: @mentions, #hashtags and URLs are single tokens and punctuation is split
off. New posts must be cut the same way, and every entity must map back to character offsets of the raw
string. NLTK's TweetTokenizer cuts alike but returns no offsets, so this is a small regular expression
(the ``regex`` module, already a transformers dependency, knows the emoji property classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

_EMOJI_PART = (
    r"\p{Extended_Pictographic}[\p{Emoji_Modifier}\uFE0F\u20E3]*"  # pictograph + skin tone/variation
)
# keycaps, flag pairs, then pictographs joined by zero-width joiners
_EMOJI = rf"(?:[0-9#*]\uFE0F?\u20E3|\p{{Regional_Indicator}}{{2}}|{_EMOJI_PART}(?:\u200D{_EMOJI_PART})*)"
_PATTERN = regex.compile(
    rf"""
    (?P<url>(?:https?://|www\.)\S+?)(?=[.,;:!?)\]"']*(?:\s|$))   # URL, trailing punctuation left out
  | (?P<mention>@\w+)
  | (?P<hashtag>\#\w+)
  | (?P<emoji>{_EMOJI})
  | (?P<abbreviation>(?:\p{{Lu}}\.){{2,}})                          # U.S., L.A.
  | (?P<number>\d+(?:[.,:/]\d+)*)
  | (?P<word>\w+(?:['’\-]\w+)*)
  | (?P<punct>[^\w\s])
    """,
    regex.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # character offsets into the raw post, [start, end)
    end: int


def tokenize_post(text: str) -> list[Token]:
    """Words of a raw post, keeping @mentions, #hashtags, URLs and emoji (with modifiers and ZWJ joins) whole.

    >>> [t.text for t in tokenize_post("RT @nasa: Launch at 9:30 🚀 #Artemis https://t.co/x.")]
    ['RT', '@nasa', ':', 'Launch', 'at', '9:30', '🚀', '#Artemis', 'https://t.co/x', '.']
    """
    return [Token(match.group(), match.start(), match.end()) for match in _PATTERN.finditer(text)]
