"""The image-side strategy: what stands for a post's image in a batch, chosen once from the model config.

| config | strategy | in a batch |
|---|---|---|
| ``text_only`` | :class:`NoImage` | nothing (an all-absent mask) |
| ``text_only`` + ``caption_pair`` | :class:`CaptionPair` | nothing; the caption is the text's second segment |
| ``image_source: pixels`` | :class:`CachedPixels` / :class:`LivePixels` | CNN vectors of image and crops (III-A2) |
| ``image_source: captions`` | :class:`CaptionStates` / :class:`LiveCaptions` | a frozen encoder's token states of a caption |

The cached strategies serve training, evaluation and analysis (benchmark posts, features computed once per
file and kept on disk); the live ones serve prediction (a user's image or caption, encoded on the spot and
rounded through float16 as the cache holds them, so a post scores the same either way).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from mmib.data.captions import CaptionSet
from mmib.data.discover import Dataset
from mmib.data.images import ImageStore
from mmib.encoders.captions import CaptionEncoder, CaptionFeatureCache, CaptionSide
from mmib.encoders.image import ImageFeatureCache, build_image_encoder
from mmib.errors import SettingError
from mmib.model.config import MMIBConfig

logger = logging.getLogger(__name__)


@dataclass
class PostImages:
    """The image side of a list of posts: features (P, W, F), mask (P, W) and, when read, their captions."""

    features: torch.Tensor
    mask: torch.Tensor
    captions: list[str | None] | None = None


def feature_width(config: MMIBConfig) -> int:
    """Width F of what enters W_v: the CNN's feature size, or the caption encoder's hidden size (0 without
    an image branch)."""
    if config.text_only:
        return 0
    if config.image_source == "captions":
        from transformers import AutoConfig

        from mmib.encoders.text import resolve_text_encoder

        return AutoConfig.from_pretrained(resolve_text_encoder(config.caption_encoder)).hidden_size
    return build_image_encoder(config.image_encoder).feature_dim


def absent_features(config: MMIBConfig, posts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeros (P, m+1, F) and an all-False mask (P, m+1): what posts without an image bring, in training and
    prediction alike."""
    slots = config.max_crops + 1
    return torch.zeros(posts, slots, config.image_feature_dim), torch.zeros(posts, slots, dtype=torch.bool)


class ImageSide:
    """What stands for each post's image in a batch. This base brings none (every post image-absent); the
    strategies below override :meth:`split_images` and :meth:`report`."""

    second_segment: ClassVar[bool] = False  # whether the caption goes in as the text's second segment

    def __init__(self, config: MMIBConfig) -> None:
        self.config = config

    def absent(self, posts: int) -> PostImages:
        return PostImages(*absent_features(self.config, posts))

    def split_images(self, dataset: Dataset, split: str, first_records: list, progress: bool) -> PostImages:
        """The image side of a split's posts, given each post's first record."""
        return self.absent(len(first_records))

    def report(self) -> dict[str, object]:
        """What the side read, for the run's summary: image-feature counts, caption lines per split."""
        return {}


class NoImage(ImageSide):
    """The text-only baselines: no image branch, every post image-absent."""


class CachedPixels(ImageSide):
    """CNN features of each post's image and its crops, from the on-disk feature cache (Section III-A2)."""

    def __init__(self, config: MMIBConfig, cache: ImageFeatureCache) -> None:
        super().__init__(config)
        self.cache = cache

    def split_images(self, dataset: Dataset, split: str, first_records: list, progress: bool) -> PostImages:
        images = self.absent(len(first_records))
        if dataset.image_root is None:
            self.cache.counts.without_image_folder += len(first_records)  # said in the image-features line
            return images
        store = ImageStore.discover(dataset.image_root, split, max_crops=self.config.max_crops)
        located = [store.locate(record.image_id, record.index) for record in first_records]
        vectors = self.cache.features([p for paths in located for p in paths if p is not None], progress)
        for post, paths in enumerate(located):
            for slot, path in enumerate(paths):
                vector = vectors.get(path) if path is not None else None
                if vector is not None:
                    images.features[post, slot] = vector
                    images.mask[post, slot] = True
        return images

    def report(self) -> dict[str, object]:
        return {"image_features": self.cache.counts}


class CaptionPair(ImageSide):
    """The text + caption baseline: no image branch; each post's caption is its text's second segment."""

    second_segment = True

    def __init__(self, config: MMIBConfig, captions: CaptionSide) -> None:
        super().__init__(config)
        self.captions = captions

    def split_images(self, dataset: Dataset, split: str, first_records: list, progress: bool) -> PostImages:
        texts, features, mask = self.captions.post_inputs(
            split, [r.image_id for r in first_records], progress
        )
        images = self.absent(len(first_records)) if features is None else PostImages(features, mask)
        images.captions = texts
        return images

    def report(self) -> dict[str, object]:
        return {"captions": {split: counts.line(split) for split, counts in self.captions.counts.items()}}


class CaptionStates(CaptionPair):
    """Captions as MMIB's image side: a frozen encoder's token states (P, L_caption, H), cached on disk."""

    second_segment = False


def cached_image_side(
    config: MMIBConfig,
    captions: str | Path | None,
    cache_dir: str | Path | None,
    device: torch.device | str = "cpu",
) -> ImageSide:
    """The image side of a model's batches over benchmark posts (training, evaluation, analysis)."""
    cache_dir = cache_dir or default_cache_dir()
    if config.uses_captions:
        if not captions:
            raise SettingError(
                "this model reads image captions: give --captions FILE (or `captions:` in the YAML)"
            )
        if config.text_only:
            return CaptionPair(config, CaptionSide(CaptionSet.read(captions)))
        encoder = CaptionEncoder(config.caption_encoder, config.caption_max_tokens)
        return CaptionStates(
            config, CaptionSide(CaptionSet.read(captions), CaptionFeatureCache(encoder, cache_dir))
        )
    if config.text_only:
        return NoImage(config)
    cache = ImageFeatureCache(build_image_encoder(config.image_encoder), cache_dir, device=device)
    return CachedPixels(config, cache)


def default_cache_dir() -> Path:
    from mmib.encoders.text import mmib_home

    return mmib_home() / "features"
