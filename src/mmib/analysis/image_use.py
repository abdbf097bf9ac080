"""Does the model use the image? Scores with the true images, images shuffled across posts, and images removed,
broken down by the synthetic generator's instance categories (text-decided, image-decided, noisy image), or,
on a real benchmark read through captions, by whether the post's caption names one of its gold entities.

On the image-decided instances the text says nothing about the entity type (or relation), so a model that
reads the image must lose F1 when the image is swapped or taken away; on text-decided ones it should not.
With captions as the image side, "shuffled" gives each post another post's caption and "removed" none.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import torch

from mmib.errors import SettingError
from mmib.processing import NerTask
from mmib.training.batching import PreparedSplit
from mmib.training.evaluate_run import RunSplit, open_run_split
from mmib.training.evaluation import predict_split

CONDITIONS = ("true", "shuffled", "removed")
CATEGORY_NAMES = {"text": "text-decided", "image": "image-decided", "noise": "noisy image"}
CAPTION_CATEGORY_NAMES = {
    "names": "caption names an entity",
    "silent": "caption names none",
    "absent": "no usable caption",
}


def read_meta(dataset_folder: Path, split: str) -> dict[int, dict]:
    """Record index -> the generator's metadata (category, answer, crop motifs) from synth_meta.jsonl."""
    meta = Path(dataset_folder) / "synth_meta.jsonl"
    if not meta.exists():
        raise FileNotFoundError(f"{meta} not found: this analysis needs a synthetic benchmark folder")
    wanted = {"valid": "dev", "val": "dev"}.get(split, split)
    items = (json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines())
    return {item["index"]: item for item in items if item["split"] == wanted}


def read_categories(dataset_folder: Path, split: str) -> dict[int, str]:
    """Record index -> generator category (text, image, noise)."""
    return {index: item["category"] for index, item in read_meta(dataset_folder, split).items()}


def shuffled_images(prepared: PreparedSplit, seed: int) -> PreparedSplit:
    """Each post that has an image (or a usable caption) gets another post's image and crops (or caption, its
    states and its text, which the caption pair reads); posts without one stay without."""
    if prepared.captions is not None:
        with_image = [p for p in range(prepared.num_posts) if prepared.captions[p] is not None]
    else:
        with_image = [p for p in range(prepared.num_posts) if prepared.image_mask[p].any()]
    order = with_image[:]
    random.Random(seed).shuffle(order)
    donors = order[1:] + order[:1]  # a cyclic shift of a random order: nobody keeps their own image
    features, mask = prepared.image_features.clone(), prepared.image_mask.clone()
    features[order] = prepared.image_features[donors]
    mask[order] = prepared.image_mask[donors]
    captions = prepared.captions
    if captions is not None:
        captions = list(captions)
        for post, donor in zip(order, donors, strict=True):
            captions[post] = prepared.captions[donor]
    return replace(prepared, image_features=features, image_mask=mask, captions=captions)


def removed_images(prepared: PreparedSplit) -> PreparedSplit:
    return replace(
        prepared,
        image_features=torch.zeros_like(prepared.image_features),
        image_mask=torch.zeros_like(prepared.image_mask),
        captions=None if prepared.captions is None else [None] * len(prepared.captions),
    )


def caption_categories(prepared: PreparedSplit) -> dict[int, str]:
    """Record index -> whether its post's caption names one of the post's gold entities (case-insensitive
    substring), names none, or is absent (missing or degenerate). NER records only."""
    from mmib.metrics import extract_spans

    categories = {}
    for number, record in enumerate(prepared.records):
        caption = prepared.captions[prepared.post_of_record[number]]
        if caption is None:
            categories[record.index] = "absent"
            continue
        names = [" ".join(record.tokens[slice(*s.words)]).lower() for s in extract_spans(record.tags)]
        categories[record.index] = "names" if any(n in caption.lower() for n in names) else "silent"
    return categories


def image_use_scores(opened: RunSplit, categories: dict[int, str], seed: int = 0) -> dict:
    """{condition: {category: scores}} with an "all" category; each prediction pass is one full split."""
    task = opened.collator.task
    records = opened.prepared.records
    variants = {
        "true": opened.prepared,
        "shuffled": shuffled_images(opened.prepared, seed),
        "removed": removed_images(opened.prepared),
    }
    report: dict = {}
    for condition, prepared in variants.items():
        predictions = predict_split(opened.model, opened.collator, prepared, opened.train.eval_batch_size)
        report[condition] = {"all": _summary(task.score(records, predictions), len(records))}
        for category in (*CATEGORY_NAMES, *CAPTION_CATEGORY_NAMES):
            chosen = [i for i, record in enumerate(records) if categories.get(record.index) == category]
            if chosen:
                scores = task.score([records[i] for i in chosen], [predictions[i] for i in chosen])
                report[condition][category] = _summary(scores, len(chosen))
    return report


def _summary(scores: dict, instances: int) -> dict:
    summary = {
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "instances": instances,
    }
    if scores.get("per_type"):
        summary["per_type_f1"] = {t: figures["f1"] for t, figures in scores["per_type"].items()}
        summary["per_type_support"] = {t: figures["support"] for t, figures in scores["per_type"].items()}
    return summary


def image_use_markdown(report: dict, title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| instances | n | F1 true images | F1 shuffled | F1 removed | drop shuffled | drop removed |",
        "|---|---|---|---|---|---|---|",
    ]
    for category in ("all", *CATEGORY_NAMES, *CAPTION_CATEGORY_NAMES):
        if category not in report["true"]:
            continue
        true, shuffled, removed = (report[c][category] for c in CONDITIONS)
        name = {**CATEGORY_NAMES, **CAPTION_CATEGORY_NAMES}.get(category, "all")
        lines.append(
            f"| {name} | {true['instances']} | {100 * true['f1']:.2f} | {100 * shuffled['f1']:.2f} | "
            f"{100 * removed['f1']:.2f} | {100 * (true['f1'] - shuffled['f1']):+.2f} | "
            f"{100 * (true['f1'] - removed['f1']):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def run_image_use(run_dir: Path, split: str = "test", seed: int = 0, progress: bool = True) -> dict:
    opened = open_run_split(run_dir, split, progress=progress)
    config = opened.model.config
    if config.text_only and not config.caption_pair:
        raise SettingError(f"{run_dir} is a text-only run: it has no image branch to test")
    if opened.prepared.captions is not None and isinstance(opened.collator.task, NerTask):
        categories = caption_categories(opened.prepared)
    else:
        try:
            categories = read_categories(Path(opened.train.data), split)
        except FileNotFoundError:  # a real MRE benchmark (no generator metadata): overall and per relation
            categories = {}
    return image_use_scores(opened, categories, seed)
