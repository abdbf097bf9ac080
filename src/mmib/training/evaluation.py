"""Scoring a prepared split with the field-standard metrics, and writing prediction files."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from mmib.metrics import ner_scores, re_scores
from mmib.model.mmib import MMIBModel
from mmib.training.batching import Collator, PreparedSplit, epoch_batches
from mmib.training.hardware import gather_predictions, process_share


@torch.inference_mode()
def predict_split(
    model: MMIBModel, collator: Collator, split: PreparedSplit, batch_size: int, accelerator=None
) -> list:
    """Predicted labels per record, in file order: a tag list (MNER) or a relation (MRE).

    With an ``accelerator`` of several processes, each predicts every n-th batch and the parts are merged
    (training/hardware.py): every record is scored exactly once, whatever the split's size. Posts go
    shortest first, so each batch pads to posts of its own length; predictions return in file order.
    """
    model.eval()
    labels = model.config.labels
    batches = epoch_batches(split, batch_size, seed=None, lengths=collator.lengths(split))
    device = torch.device("cpu")
    autocast = contextlib.nullcontext()
    if accelerator is not None:
        batches = process_share(batches, accelerator)
        device, autocast = accelerator.device, accelerator.autocast()
    predicted_by_record: dict[int, object] = {}
    with autocast:
        for posts in batches:
            predicted = model.predict(collator(split, posts).to(device))
            if model.config.task == "ner":
                for post, tag_ids in zip(posts, predicted, strict=True):
                    predicted_by_record[split.post_records[post][0]] = [labels[i] for i in tag_ids]
            else:
                records = [r for p in posts for r in split.post_records[p]]
                for record, relation_id in zip(records, predicted, strict=True):
                    predicted_by_record[record] = labels[relation_id]
    if accelerator is not None:
        predicted_by_record = gather_predictions(predicted_by_record, accelerator)
    return [predicted_by_record[record] for record in range(len(split.records))]


def score(task: str, records: list, predictions: list) -> dict:
    if task == "ner":
        return ner_scores([r.tags for r in records], predictions).as_dict()
    return re_scores([r.relation for r in records], predictions).as_dict()


def evaluate_split(
    model: MMIBModel, collator: Collator, split: PreparedSplit, batch_size: int, accelerator=None
) -> dict:
    predictions = predict_split(model, collator, split, batch_size, accelerator)
    return score(model.config.task, split.records, predictions)


def write_predictions(task: str, records: list, predictions: list, path: Path) -> None:
    """CoNLL (token, gold, predicted) for MNER; JSON lines with gold and predicted relation for MRE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record, predicted in zip(records, predictions, strict=True):
            if task == "ner":
                if record.image_id is not None:
                    handle.write(f"IMGID:{record.image_id}\n")
                for token, gold, guess in zip(record.tokens, record.tags, predicted, strict=True):
                    handle.write(f"{token}\t{gold}\t{guess}\n")
                handle.write("\n")
            else:
                handle.write(
                    json.dumps(
                        {
                            "index": record.index,
                            "token": record.tokens,
                            "img_id": record.image_id,
                            "h": [record.head.start, record.head.end],
                            "t": [record.tail.start, record.tail.end],
                            "relation": record.relation,
                            "predicted": predicted,
                        }
                    )
                    + "\n"
                )
