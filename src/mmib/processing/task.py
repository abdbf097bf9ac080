"""The task strategy: what differs between MNER and MRE on the data side of the model.

A :class:`Task` turns posts into a batch's text rows and gold tensors, maps a batch's predictions back to
the records they belong to, scores them with the field's metric and writes prediction files. The model's
side of a task (the CRF of eq. 18 or the pair classifier of eq. 19) is its head, chosen once from the same
name (``mmib.model.heads.HEADS``). Adding a task means adding a class here and a head there.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import torch

from mmib.encoders.entity_markers import mark_entities
from mmib.errors import SettingError
from mmib.metrics import ner_scores, re_scores
from mmib.model.mmib import Batch
from mmib.processing.inputs import PostInput


class Task(ABC):
    """Labels and the task's side of batching, scoring and prediction files."""

    name: ClassVar[str]  # the name a model config saves ("ner", "mre")
    prediction_suffix: ClassVar[str]
    classifies_pairs: ClassVar[bool] = False  # whether the task's instances are entity pairs (markers apply)

    def __init__(self, labels: list[str]) -> None:
        self.labels = list(labels)
        self.label_ids = {label: i for i, label in enumerate(self.labels)}

    def label_id(self, label: str, source_line: int) -> int:
        if label not in self.label_ids:
            raise SettingError(
                f"{label!r} in record at line {source_line} is not among the model's labels; "
                f"known: {', '.join(self.label_ids)}"
            )
        return self.label_ids[label]

    @classmethod
    def from_config(cls, config) -> Task:
        return cls(config.labels)

    @property
    def marks_entities(self) -> bool:
        """Whether each text row is one entity pair with its head and tail marked."""
        return False

    @abstractmethod
    def batch(self, text, posts: list[PostInput], features: torch.Tensor, mask: torch.Tensor) -> Batch:
        """A batch of ``posts`` with their image side, features (P, W, F) and mask (P, W). ``text(words,
        captions)`` makes the text rows (the processor's tokenizer, with the caption pair's second segment)."""

    @abstractmethod
    def by_record(self, predicted: list, records_per_post: list[list[int]]) -> dict[int, object]:
        """The model's predictions of a batch, as labels keyed by record number."""

    @abstractmethod
    def score(self, records: list, predictions: list) -> dict:
        """The field's metric of the predictions of ``records``."""

    @abstractmethod
    def write_predictions(self, records: list, predictions: list, path: Path) -> None:
        """A prediction file beside the gold labels."""


class NerTask(Task):
    """MNER: one text row per post, a BIO tag per word, scored with seqeval (default mode)."""

    name = "ner"
    prediction_suffix = "conll"

    def batch(self, text, posts: list[PostInput], features: torch.Tensor, mask: torch.Tensor) -> Batch:
        lengths = torch.tensor([len(post.words) for post in posts])
        batch = Batch(
            text=text([post.words for post in posts], [post.caption for post in posts]),
            word_lengths=lengths,
            image_features=features,
            image_mask=mask,
            post_ids=torch.tensor([post.identity for post in posts]),
        )
        if posts and posts[0].tags is not None:
            tags = torch.zeros(len(posts), int(lengths.max()), dtype=torch.long)  # (P, n_max)
            for row, post in enumerate(posts):
                tags[row, : len(post.tags)] = torch.tensor(
                    [self.label_id(t, post.source_line) for t in post.tags]
                )
            batch.tags = tags
        return batch

    def by_record(self, predicted: list, records_per_post: list[list[int]]) -> dict[int, object]:
        return {
            records[0]: [self.labels[i] for i in tag_ids]
            for records, tag_ids in zip(records_per_post, predicted, strict=True)
        }

    def score(self, records: list, predictions: list) -> dict:
        return ner_scores([r.tags for r in records], predictions).as_dict()

    def write_predictions(self, records: list, predictions: list, path: Path) -> None:
        """CoNLL: token, gold tag, predicted tag; a post's image id first, as the benchmark files have it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for record, predicted in zip(records, predictions, strict=True):
                if record.image_id is not None:
                    handle.write(f"IMGID:{record.image_id}\n")
                for token, gold, guess in zip(record.tokens, record.tags, predicted, strict=True):
                    handle.write(f"{token}\t{gold}\t{guess}\n")
                handle.write("\n")


class ReTask(Task):
    """MRE: entity pairs classified, scored with the micro P/R/F1 that leaves ``None`` out.

    Without markers a post is one text row and its pairs pool their spans from its C (eq. 19); with
    ``entity_markers`` every pair is its own row, head and tail marked (encoders/entity_markers.py).
    """

    name = "mre"
    prediction_suffix = "jsonl"
    classifies_pairs = True

    def __init__(self, labels: list[str], entity_markers: bool = False) -> None:
        super().__init__(labels)
        self.entity_markers = entity_markers

    @classmethod
    def from_config(cls, config) -> ReTask:
        return cls(config.labels, config.entity_markers)

    @property
    def marks_entities(self) -> bool:
        return self.entity_markers

    def batch(self, text, posts: list[PostInput], features: torch.Tensor, mask: torch.Tensor) -> Batch:
        pairs = [(row, pair) for row, post in enumerate(posts) for pair in post.pairs]
        if self.entity_markers:
            batch = self._marked_rows(text, posts, pairs, features, mask)
        else:  # every post encoded once, its pairs pooled from its C
            batch = Batch(
                text=text([post.words for post in posts], [post.caption for post in posts]),
                word_lengths=torch.tensor([len(post.words) for post in posts]),
                image_features=features,
                image_mask=mask,
                post_ids=torch.tensor([post.identity for post in posts]),
                pair_post=torch.tensor([row for row, _ in pairs]),
                heads=torch.tensor([list(pair.head.words) for _, pair in pairs]),
                tails=torch.tensor([list(pair.tail.words) for _, pair in pairs]),
            )
        if pairs and pairs[0][1].relation is not None:
            batch.relations = torch.tensor([self.label_id(p.relation, p.source_line) for _, p in pairs])
        return batch

    @staticmethod
    def _marked_rows(text, posts, pairs, features: torch.Tensor, mask: torch.Tensor) -> Batch:
        """One row per pair: its post's words with head and tail marked, its post's image side (N, W, F);
        the head reads the two opening markers."""
        marked = [mark_entities(posts[row].words, pair.head.words, pair.tail.words) for row, pair in pairs]
        rows = torch.tensor([row for row, _ in pairs], dtype=torch.long)
        return Batch(
            text=text([words for words, _, _ in marked], [posts[row].caption for row, _ in pairs]),
            word_lengths=torch.tensor([len(words) for words, _, _ in marked]),
            image_features=features[rows],
            image_mask=mask[rows],
            post_ids=torch.tensor([posts[row].identity for row, _ in pairs]),
            pair_post=torch.arange(len(pairs)),
            heads=torch.tensor([list(head) for _, head, _ in marked]),
            tails=torch.tensor([list(tail) for _, _, tail in marked]),
        )

    def by_record(self, predicted: list, records_per_post: list[list[int]]) -> dict[int, object]:
        records = [record for post in records_per_post for record in post]
        return {record: self.labels[relation] for record, relation in zip(records, predicted, strict=True)}

    def score(self, records: list, predictions: list) -> dict:
        return re_scores([r.relation for r in records], predictions).as_dict()

    def write_predictions(self, records: list, predictions: list, path: Path) -> None:
        """JSON lines: the instance as MNRE writes it, with the predicted relation."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for record, predicted in zip(records, predictions, strict=True):
                line = {
                    "index": record.index,
                    "token": record.tokens,
                    "img_id": record.image_id,
                    "h": list(record.head.words),
                    "t": list(record.tail.words),
                    "relation": record.relation,
                    "predicted": predicted,
                }
                handle.write(json.dumps(line) + "\n")


TASKS: dict[str, type[Task]] = {NerTask.name: NerTask, ReTask.name: ReTask}


def task_for(config) -> Task:
    """The task of a model config (``MMIBConfig``): its name, labels and MRE input."""
    if config.task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {config.task!r}")
    return TASKS[config.task].from_config(config)
