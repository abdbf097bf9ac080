"""Image captions as a stand-in for the pixels: reading a caption file and judging each caption.

The format is the one the PGIM release uses for its BLIP-2 captions of the Twitter-2015/2017 images,
one line per image::

    <IMGID>.jpg :<caption>

(the separator is the first `` :``). A caption is *degenerate*, and its post treated as image-absent,
when it stands for many different photos (the captioner's answer for a broken or placeholder file: in
Twitter-2017, 358 images share one caption) or when it is a list of one repeated word
(``person, person, person``), when it is empty, or when it is a refusal (a summarising captioner's
"The paragraph is not provided. Please provide the paragraph...", 19 of Qwen-VL's MNRE captions). Such
captions carry no evidence about the photo; keeping them would teach the model that "a man is standing on
a skateboard in the snow" means nothing, through the back door.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mmib.data.errors import DataFormatError
from mmib.data.readers import numbered_lines

# A caption given to at least this many different images is taken to describe none of them. The largest
# honest repeat in the BLIP-2 captions is 13 ("a man in a suit and tie standing at a podium"); the
# placeholder caption of Twitter-2017 covers 358 images.
SHARED_CAPTION_LIMIT = 50
SEPARATOR = " :"
# A captioner's answer that it was given nothing to describe. Matched words, not whole sentences: the Qwen-VL
# refusals vary ("Sorry, please provide the paragraph...", "...as there is no paragraph provided"), and no
# real caption of the MNRE images says "please provide" or "no paragraph".
REFUSAL = re.compile(
    r"\bplease provide\b|\bno paragraph\b|\bparagraph (?:is|was) not provided\b", re.IGNORECASE
)
# why a caption is treated as absent, in the order the counts line lists them
ABSENT_REASONS = ("empty", "refusal", "shared", "repeated word list")


def is_repeated_word_list(caption: str) -> bool:
    """``person, person, person``: three or more comma-separated items, all the same."""
    items = [item.strip() for item in caption.split(",")]
    return len(items) >= 3 and len(set(items)) == 1


def absent_reason(caption: str, times_shared: int, shared_limit: int = SHARED_CAPTION_LIMIT) -> str | None:
    """Why a caption describes no particular photo (one of ``ABSENT_REASONS``), or None when it is usable."""
    if not caption:
        return "empty"
    if REFUSAL.search(caption):
        return "refusal"
    if times_shared >= shared_limit:
        return "shared"
    if is_repeated_word_list(caption):
        return "repeated word list"
    return None


@dataclass
class CaptionCounts:
    """What happened to the posts of one split: the line every run prints per split."""

    used: int = 0
    degenerate: int = 0
    missing: int = 0
    reasons: Counter = field(default_factory=Counter)  # degenerate posts by ABSENT_REASONS

    def line(self, split: str) -> str:
        """``captions (dev): 917 used, 14 degenerate (treated as absent: 1 empty, 13 repeated word list),
        0 missing``; the breakdown is left out when the file's captions carry no reasons."""
        found = ", ".join(f"{self.reasons[r]} {r}" for r in ABSENT_REASONS if self.reasons[r])
        return (
            f"captions ({split}): {self.used} used, {self.degenerate} degenerate "
            f"(treated as absent{': ' + found if found else ''}), {self.missing} missing"
        )


@dataclass
class CaptionSet:
    """Captions keyed by image file name (``<IMGID>.jpg``), with the degenerate ones marked."""

    path: Path
    captions: dict[str, str]
    degenerate: set[str] = field(default_factory=set)  # keys whose caption stands for no particular image
    reasons: dict[str, str] = field(default_factory=dict)  # degenerate key -> one of ABSENT_REASONS

    @classmethod
    def read(cls, path: Path | str, shared_limit: int = SHARED_CAPTION_LIMIT) -> CaptionSet:
        """Parse a caption file. Raises :class:`DataFormatError` naming the file and line of a bad line."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such caption file")
        captions: dict[str, str] = {}
        # invalid UTF-8 is a DataFormatError naming its line (numbered_lines)
        for number, line in numbered_lines(path):
            if not line.strip():
                continue
            key, separator, caption = line.partition(SEPARATOR)
            if not separator or not key.strip():
                raise DataFormatError(path, number, "no caption separator", "'<image file> :<caption>'")
            key = key.strip()
            if key in captions and captions[key] != caption.strip():
                raise DataFormatError(
                    path, number, f"a second, different caption for {key}", "one caption per image"
                )
            captions[key] = caption.strip()
        shared = Counter(captions.values())
        reasons = {
            key: reason
            for key, caption in captions.items()
            if (reason := absent_reason(caption, shared[caption], shared_limit)) is not None
        }
        return cls(path, captions, set(reasons), reasons)

    @staticmethod
    def key_for(image_id: str) -> str:
        """The caption key of a post: the ``IMGID:`` value plus ``.jpg`` (MNRE ids already end in one)."""
        return image_id if "." in Path(image_id).name else f"{image_id}.jpg"

    def lookup(self, image_id: str | None, counts: CaptionCounts | None = None) -> str | None:
        """The usable caption of a post's image, or None (missing or degenerate), counted in ``counts``."""
        key = self.key_for(image_id) if image_id else None
        if key is None or key not in self.captions:
            if counts is not None:
                counts.missing += 1
            return None
        if key in self.degenerate:
            if counts is not None:
                counts.degenerate += 1
                counts.reasons[self.reasons.get(key, "shared")] += 1
            return None
        if counts is not None:
            counts.used += 1
        return self.captions[key]
