"""Encoding text and images: the second stage of the data flow (Section III-A of the paper)."""

from mmib.encoders.image import ImageEncoder, ImageFeatureCache, build_image_encoder
from mmib.encoders.text import TextEncoder, WordTokenizer, resolve_text_encoder

__all__ = [
    "ImageEncoder",
    "ImageFeatureCache",
    "TextEncoder",
    "WordTokenizer",
    "build_image_encoder",
    "resolve_text_encoder",
]
