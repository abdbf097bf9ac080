"""Checks on what a user sends for prediction: text, caption and image, each refused with one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mmib.data.images import ImageUnreadable, decode_image, to_rgb
from mmib.errors import UserError
from mmib.predict.tokenize import Token, tokenize_post
from mmib.processing.live_images import PreparedImage

ImageInput = str | Path | bytes | Image.Image | None
CONTROL_CHARACTERS = frozenset(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
MAX_CHARS = 5000  # a tweet is at most 280 characters; far longer input is almost surely a mistake


class InputError(UserError, ValueError):
    """Bad input to prediction (empty or over-long text, unreadable image, unknown entity)."""


def open_image(image: ImageInput) -> Image.Image | None:
    """An upright RGB image from a path, bytes or PIL image; None stays None. Raises :class:`InputError`."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return to_rgb(image)
    try:
        return decode_image(image if isinstance(image, bytes) else Path(image))
    except ImageUnreadable as error:
        raise InputError(f"image {error.path}: {error.reason}") from None
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"image {image}: no such file") from None


def check_text(text: str, max_chars: int = MAX_CHARS) -> list[Token]:
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise InputError(f"text is {len(text)} characters long; the limit is {max_chars}")
    control = next((c for c in text if c in CONTROL_CHARACTERS), None)
    if control is not None:  # NUL and friends are no words: refused rather than tagged
        raise InputError(f"text contains the control character U+{ord(control):04X}")
    refuse_unencodable("text", text)
    tokens = tokenize_post(text)
    if not tokens:
        raise InputError("text is empty (no words to tag)")
    return tokens


def refuse_unencodable(field: str, value: str) -> None:
    """A lone surrogate (``"a\\ud800"``, which JSON and Python strings allow) is no Unicode text: the tokenizer
    and the UTF-8 output cannot take it, so the post is refused with its position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"{field} holds a lone surrogate U+{ord(value[error.start]):04X} at character {error.start + 1} "
            "(not valid Unicode)"
        ) from None


def check_caption(caption: object) -> str | None:
    if caption is None:
        return None
    if not isinstance(caption, str):
        raise InputError(f"caption must be a string, got {type(caption).__name__}")
    if len(caption) > MAX_CHARS:
        raise InputError(f"caption is {len(caption)} characters long; the limit is {MAX_CHARS}")
    refuse_unencodable("caption", caption)
    return caption.strip() or None


@dataclass
class CheckedPost:
    """A post whose text was tokenised and whose image was opened (and caption checked)."""

    text: str
    tokens: list[Token]
    image: Image.Image | None
    caption: str | None = None
    prepared: PreparedImage | None = None  # made ahead, for runs that read pixels

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]
