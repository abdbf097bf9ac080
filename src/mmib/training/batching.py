"""From dataset records to model batches: post grouping, the image side per post, epoch batches.

A split's image side is fetched once (through the on-disk caches) before training; batches then only index
tensors. MRE instances that share a post (same words, same image) are grouped so that each post is encoded
once per batch and its entity pairs are pooled from the same C. The batch itself is built by
:class:`mmib.processing.MMIBProcessor`, as for prediction.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import torch

from mmib.data.discover import Dataset
from mmib.data.records import NerPost, ReInstance
from mmib.encoders.text import WordTokenizer
from mmib.model.config import MMIBConfig
from mmib.model.mmib import Batch
from mmib.processing import ImageSide, MMIBProcessor, PairInput, PostInput, Task


@dataclass
class PreparedSplit:
    """One split ready for batching: records, their post grouping and image side."""

    name: str
    records: list[NerPost] | list[ReInstance]
    post_of_record: list[int]  # record -> post number
    post_records: list[list[int]]  # post number -> its records
    image_features: torch.Tensor  # (posts, m+1, F); with captions (posts, L_caption, H)
    image_mask: torch.Tensor  # (posts, m+1) bool; with captions (posts, L_caption)
    captions: list[str | None] | None = None  # per post, when the model reads captions

    @property
    def num_posts(self) -> int:
        return len(self.post_records)


def _post_key(record: NerPost | ReInstance) -> tuple:
    if isinstance(record, NerPost):
        return (record.index,)
    return (tuple(record.tokens), record.image_id)


def prepare_split(
    dataset: Dataset, split: str, image_side: ImageSide, progress: bool = True
) -> PreparedSplit:
    """Group records into posts and fetch each post's image side (CNN features of the whole image and its
    crops, masked where absent; or its caption, with the caption's token states when MMIB reads them)."""
    records = dataset.splits[split]
    keys: dict[tuple, int] = {}
    post_of_record = [keys.setdefault(_post_key(r), len(keys)) for r in records]
    post_records: list[list[int]] = [[] for _ in keys]
    for record_index, post in enumerate(post_of_record):
        post_records[post].append(record_index)
    first_records = [records[rs[0]] for rs in post_records]
    images = image_side.split_images(dataset, split, first_records, progress)
    return PreparedSplit(
        split, records, post_of_record, post_records, images.features, images.mask, images.captions
    )


def _image_identity(split: PreparedSplit, post: int) -> int:
    """Posts that show the same image file share an identity (they cannot be each other's negatives)."""
    image_id = split.records[split.post_records[post][0]].image_id
    return zlib.crc32(image_id.encode()) if image_id is not None else -1 - post


def post_input(split: PreparedSplit, post: int) -> PostInput:
    """A prepared post as the processor takes it, with its gold labels."""
    records = [split.records[r] for r in split.post_records[post]]
    first = records[0]
    pairs = [
        PairInput(r.head, r.tail, r.relation, r.source_line) for r in records if isinstance(r, ReInstance)
    ]
    return PostInput(
        words=first.tokens,
        caption=split.captions[post] if split.captions is not None else None,
        identity=_image_identity(split, post),
        tags=first.tags if isinstance(first, NerPost) else None,
        pairs=pairs,
        source_line=first.source_line,
    )


class Collator:
    """Builds a :class:`Batch` from a list of post numbers of a prepared split (through the processor)."""

    def __init__(self, processor: MMIBProcessor) -> None:
        self.processor = processor

    @classmethod
    def for_model(cls, tokenizer: WordTokenizer, config: MMIBConfig) -> Collator:
        return cls(MMIBProcessor.for_model(tokenizer, config))

    @property
    def task(self) -> Task:
        return self.processor.task

    def lengths(self, split: PreparedSplit) -> list[int]:
        """Sub-words of each post's text row: what a batch pads to, the key of length bucketing."""
        captions = split.captions or [None] * split.num_posts
        return [
            self.processor.length(split.records[records[0]].tokens, captions[post])
            for post, records in enumerate(split.post_records)
        ]

    def __call__(self, split: PreparedSplit, posts: list[int]) -> Batch:
        features, mask = image_side_of(split, posts)
        return self.processor([post_input(split, post) for post in posts], features, mask)


def image_side_of(split: PreparedSplit, posts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The posts' image side, (B, W, F) and mask (B, W), cut to the widest position any of them uses.

    A split's caption states are padded to its longest caption (128 sub-words with CogVLM's paragraphs,
    whose mean is 64): without the cut every batch ran the image-side encoders over all 128. Every image-side
    operation masks padding (attention keys, the KL's and the discriminator's means, fusion), so the cut
    changes no result beyond floating-point rounding. Region features (m + 1 columns) are cut the same way."""
    features, mask = split.image_features[posts], split.image_mask[posts]
    used = mask.any(dim=0).nonzero()
    width = int(used.max()) + 1 if used.numel() else 1
    return features[:, :width], mask[:, :width]


# Length bucketing: each shuffled window of this many batches is sorted by length before it is cut, so a
# batch pads to posts of about its own length, and the window keeps batches as random as a plain shuffle
# (the usual "bucket iterator" of seq2seq toolkits; written here because a batch holds whole posts).
BUCKET_WINDOW = 50


def epoch_batches(
    split: PreparedSplit, batch_size: int, seed: int | None, lengths: list[int] | None = None
) -> list[list[int]]:
    """Post numbers per batch. Shuffled by ``seed`` (None keeps file order, for evaluation).

    A batch holds whole posts and closes once it has ``batch_size`` records (MRE posts may carry several
    pairs, so a batch can exceed it by the pairs of its last post). With ``lengths`` (sub-words per post,
    :meth:`Collator.lengths`), batches are bucketed by length: for evaluation the posts are taken shortest
    first (predictions are mapped back by record, so order is free); for training each window of
    ``BUCKET_WINDOW`` batches of the shuffle is sorted by length, cut, and the batches shuffled again.
    """
    order = list(range(split.num_posts))
    rng = random.Random(seed)
    if seed is not None:
        rng.shuffle(order)
    if lengths is not None:
        window = batch_size * BUCKET_WINDOW if seed is not None else len(order)
        order = [
            post
            for start in range(0, len(order), max(1, window))
            for post in sorted(order[start : start + window], key=lambda p: lengths[p])
        ]
    batches: list[list[int]] = [[]]
    count = 0
    for post in order:
        if count >= batch_size:
            batches.append([])
            count = 0
        batches[-1].append(post)
        count += len(split.post_records[post])
    batches = [b for b in batches if b]
    if lengths is not None and seed is not None:
        rng.shuffle(batches)  # else every window would run short posts first, long ones last
    return batches
