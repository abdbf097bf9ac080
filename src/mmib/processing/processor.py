"""The one road from posts to a :class:`~mmib.model.Batch`: :class:`MMIBProcessor`.

Training, evaluation, analysis, prediction and serving all build their batches here (the role a Hugging Face
``Processor`` plays): the word tokenizer makes the text rows, the :class:`~mmib.processing.task.Task` adds
the task's rows and gold tensors, and the caller brings the image side's features (from
:mod:`mmib.processing.image_side` or :mod:`mmib.processing.live_images`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from mmib.encoders.text import TextBatch, WordTokenizer
from mmib.model.config import MMIBConfig
from mmib.model.mmib import Batch
from mmib.processing.inputs import PostInput
from mmib.processing.task import Task, task_for

MARKERS_PER_PAIR = 4  # an opening and a closing marker around each of head and tail


class MMIBProcessor:
    """posts + their image side -> :class:`Batch`.

    ``second_segment``: the caption-pair baseline, whose caption follows the words as a second text segment.
    """

    def __init__(
        self,
        tokenizer: WordTokenizer,
        task: Task,
        second_segment: bool = False,
        config: MMIBConfig | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.task = task
        self.second_segment = second_segment
        self.config = config  # the model config it was made from (what save_pretrained writes)

    @classmethod
    def for_model(cls, tokenizer: WordTokenizer, config: MMIBConfig) -> MMIBProcessor:
        """The processor of a model config (its task, labels, text window and caption pair)."""
        return cls(tokenizer, task_for(config), config.caption_pair, config)

    def save_pretrained(self, run_dir: Path | str) -> None:
        """The processor's files in the run-folder layout: the model config and the tokenizer's files, which
        :meth:`from_pretrained` reads back (a run folder written by training already holds them)."""
        from mmib.model.run_folder import RunFolder

        if self.config is None:
            raise ValueError("a processor made without its model config cannot be saved: use for_model")
        run = RunFolder(run_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        self.config.save(run.model_config)
        self.tokenizer.tokenizer.save_pretrained(run.text_encoder)

    @classmethod
    def from_pretrained(cls, run_dir: Path | str) -> MMIBProcessor:
        """The processor saved in a run folder (its model config and tokenizer)."""
        from transformers import AutoTokenizer

        from mmib.model.package import locate_model
        from mmib.model.run_folder import RunFolder

        run = RunFolder(locate_model(run_dir)).require()
        config = MMIBConfig.load(run.model_config)
        tokenizer = AutoTokenizer.from_pretrained(run.text_encoder)
        return cls.for_model(WordTokenizer.for_model(tokenizer, config), config)

    def __call__(self, posts: list[PostInput], features: torch.Tensor, mask: torch.Tensor) -> Batch:
        """A batch of ``posts`` (P) with their image side: features (P, W, F), mask (P, W) bool."""
        return self.task.batch(self.text, posts, features, mask)

    def text(self, words: list[list[str]], captions: list[str | None]) -> TextBatch:
        """Sub-word rows of word lists, with the caption as the second segment for the caption pair."""
        return self.tokenizer(words, captions if self.second_segment else None)

    def length(self, words: list[str], caption: str | None) -> int:
        """Sub-words of a post's text row (its first chunk's worth at most; markers and the pair's caption
        included): what a batch pads to, the key of length bucketing."""
        length = sum(len(self.tokenizer.pieces(word)) for word in words) + 2
        if self.task.marks_entities:
            length += MARKERS_PER_PAIR
        if self.second_segment:
            length += len(self.tokenizer.caption_pieces(caption))
        return min(length, self.tokenizer.max_length + self.tokenizer.caption_room)
