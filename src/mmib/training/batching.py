"""From dataset records to model batches: labels to ids, image features per post, post grouping.

Image features of a split are looked up once (through the on-disk cache) before training; batches then
only index tensors. MRE instances that share a post (same words, same image) are grouped so that each
post is encoded once per batch and its entity pairs are pooled from the same C.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from mmib.data.captions import CaptionSet
from mmib.data.discover import Dataset
from mmib.data.images import ImageStore
from mmib.data.records import NerPost, ReInstance
from mmib.encoders.captions import CaptionEncoder, CaptionFeatureCache, CaptionSide
from mmib.encoders.entity_markers import mark_entities
from mmib.encoders.image import ImageFeatureCache, build_image_encoder
from mmib.encoders.text import WordTokenizer
from mmib.model.config import MMIBConfig
from mmib.model.mmib import Batch


@dataclass
class PreparedSplit:
    """One split ready for batching: records, their post grouping and image features."""

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
    dataset: Dataset,
    split: str,
    cache: ImageFeatureCache | None,
    feature_dim: int,
    max_crops: int,
    progress: bool = True,
    caption_side: CaptionSide | None = None,
) -> PreparedSplit:
    """Group records into posts and fetch each post's whole-image and crop features (masked if absent),
    or, with ``caption_side``, its caption (and the caption's token states when the side has a cache)."""
    records = dataset.splits[split]
    keys: dict[tuple, int] = {}
    post_of_record = [keys.setdefault(_post_key(r), len(keys)) for r in records]
    post_records: list[list[int]] = [[] for _ in keys]
    for record_index, post in enumerate(post_of_record):
        post_records[post].append(record_index)
    features = torch.zeros(len(keys), max_crops + 1, feature_dim)
    mask = torch.zeros(len(keys), max_crops + 1, dtype=torch.bool)
    captions = None
    if caption_side is not None:
        image_ids = [records[rs[0]].image_id for rs in post_records]
        captions, caption_features, caption_mask = caption_side.post_inputs(split, image_ids, progress)
        if caption_features is not None:
            features, mask = caption_features, caption_mask
    elif cache is not None and dataset.image_root is not None:
        store = ImageStore.discover(dataset.image_root, split, max_crops=max_crops)
        located = [store.locate(records[rs[0]].image_id, records[rs[0]].index) for rs in post_records]
        vectors = cache.features([p for paths in located for p in paths if p is not None], progress=progress)
        for post, paths in enumerate(located):
            for slot, path in enumerate(paths):
                vector = vectors.get(path) if path is not None else None
                if vector is not None:
                    features[post, slot] = vector
                    mask[post, slot] = True
    elif cache is not None:
        cache.counts.without_image_folder += len(post_records)  # said in the run's image-features line
    return PreparedSplit(split, records, post_of_record, post_records, features, mask, captions)


def _image_identity(split: PreparedSplit, post: int) -> int:
    """Posts that show the same image file share an identity (they cannot be each other's negatives)."""
    image_id = split.records[split.post_records[post][0]].image_id
    return zlib.crc32(image_id.encode()) if image_id is not None else -1 - post


class Collator:
    """Builds a :class:`Batch` from a list of post numbers of a prepared split."""

    def __init__(
        self,
        tokenizer: WordTokenizer,
        labels: list[str],
        task: str,
        caption_pair: bool = False,
        entity_markers: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.label_ids = {label: i for i, label in enumerate(labels)}
        self.task = task
        self.caption_pair = caption_pair  # the caption goes in as a second text segment
        self.entity_markers = entity_markers and task == "mre"  # one marked text row per entity pair

    @classmethod
    def for_model(cls, tokenizer: WordTokenizer, config: MMIBConfig) -> Collator:
        return cls(tokenizer, config.labels, config.task, config.caption_pair, config.entity_markers)

    def lengths(self, split: PreparedSplit) -> list[int]:
        """Sub-words of each post's text row (its first chunk's worth at most; markers and the pair's
        caption included): what a batch pads to, the key of length bucketing."""
        found = []
        for post, records in enumerate(split.post_records):
            words = split.records[records[0]].tokens
            length = sum(len(self.tokenizer.pieces(word)) for word in words) + 2
            if self.entity_markers:
                length += 4  # two markers around each of head and tail
            if self.caption_pair and split.captions is not None:
                length += len(self.tokenizer.caption_pieces(split.captions[post]))
            found.append(min(length, self.tokenizer.max_length + self.tokenizer.caption_room))
        return found

    def label_id(self, label: str, record) -> int:
        if label not in self.label_ids:
            raise ValueError(
                f"{label!r} in record at line {record.source_line} is not among the model's labels; "
                f"known: {', '.join(self.label_ids)}"
            )
        return self.label_ids[label]

    def __call__(self, split: PreparedSplit, posts: list[int]) -> Batch:
        if self.entity_markers:
            return self._marked_pairs(split, posts)
        first_records = [split.records[split.post_records[p][0]] for p in posts]
        words = [record.tokens for record in first_records]
        lengths = torch.tensor([len(w) for w in words])
        second = [split.captions[p] for p in posts] if self.caption_pair else None
        image_features, image_mask = image_side_of(split, posts)
        batch = Batch(
            text=self.tokenizer(words, second),
            word_lengths=lengths,
            image_features=image_features,
            image_mask=image_mask,
            post_ids=torch.tensor([_image_identity(split, p) for p in posts]),
        )
        if self.task == "ner":
            tags = torch.zeros(len(posts), int(lengths.max()), dtype=torch.long)
            for row, record in enumerate(first_records):
                tags[row, : len(record.tags)] = torch.tensor([self.label_id(t, record) for t in record.tags])
            batch.tags = tags
        else:
            pairs = [(row, split.records[r]) for row, p in enumerate(posts) for r in split.post_records[p]]
            batch.pair_post = torch.tensor([row for row, _ in pairs])
            batch.heads = torch.tensor([[r.head.start, r.head.end] for _, r in pairs])
            batch.tails = torch.tensor([[r.tail.start, r.tail.end] for _, r in pairs])
            batch.relations = torch.tensor([self.label_id(r.relation, r) for _, r in pairs])
        return batch

    def _marked_pairs(self, split: PreparedSplit, posts: list[int]) -> Batch:
        """MRE with entity markers: every pair is its own text row (its post's words with the head and
        tail marked) and shares its post's image side; the head reads the two opening markers."""
        pairs = [(p, split.records[r]) for p in posts for r in split.post_records[p]]
        marked = [
            mark_entities(r.tokens, (r.head.start, r.head.end), (r.tail.start, r.tail.end)) for _, r in pairs
        ]
        rows = torch.tensor([p for p, _ in pairs])
        second = [split.captions[p] for p, _ in pairs] if self.caption_pair else None
        image_features, image_mask = image_side_of(split, rows.tolist())  # (N, m+1, F), (N, m+1)
        return Batch(
            text=self.tokenizer([words for words, _, _ in marked], second),
            word_lengths=torch.tensor([len(words) for words, _, _ in marked]),
            image_features=image_features,
            image_mask=image_mask,
            post_ids=torch.tensor([_image_identity(split, p) for p, _ in pairs]),
            pair_post=torch.arange(len(pairs)),
            heads=torch.tensor([list(head) for _, head, _ in marked]),
            tails=torch.tensor([list(tail) for _, _, tail in marked]),
            relations=torch.tensor([self.label_id(r.relation, r) for _, r in pairs]),
        )


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


def image_side(
    config: MMIBConfig, captions: str | None, cache_dir: str | Path | None, device: torch.device | str = "cpu"
) -> tuple[ImageFeatureCache | None, CaptionSide | None]:
    """What stands for the image in a model's batches: a CNN feature cache (pixels), the captions (as
    token states for MMIB, as texts for the caption-pair baseline), or nothing (text-only)."""
    cache_dir = cache_dir or default_cache_dir()
    if config.uses_captions:
        if not captions:
            raise ValueError(
                "this model reads image captions: give --captions FILE (or `captions:` in the YAML)"
            )
        states = (
            None
            if config.text_only
            else CaptionFeatureCache(
                CaptionEncoder(config.caption_encoder, config.caption_max_tokens), cache_dir
            )
        )
        return None, CaptionSide(CaptionSet.read(captions), states)
    if config.text_only:
        return None, None
    return ImageFeatureCache(build_image_encoder(config.image_encoder), cache_dir, device=device), None


def default_cache_dir() -> Path:
    from mmib.encoders.text import mmib_home

    return mmib_home() / "features"
