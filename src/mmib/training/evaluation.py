"""Predicting and scoring a prepared split (the metric and the prediction files are the task's: processing/task.py)."""

from __future__ import annotations

import contextlib

import torch

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
            records = [split.post_records[post] for post in posts]
            predicted_by_record.update(collator.task.by_record(predicted, records))
    if accelerator is not None:
        predicted_by_record = gather_predictions(predicted_by_record, accelerator)
    return [predicted_by_record[record] for record in range(len(split.records))]


def evaluate_split(
    model: MMIBModel, collator: Collator, split: PreparedSplit, batch_size: int, accelerator=None
) -> dict:
    predictions = predict_split(model, collator, split, batch_size, accelerator)
    return collator.task.score(split.records, predictions)
