"""Per-split summaries of a dataset, with image/crop availability when an image root is known."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mmib.data.discover import Dataset
from mmib.data.formats import FORMATS
from mmib.data.images import (
    NOT_FOUND,
    ImageCounts,
    ImageStore,
    ImageUnreadable,
    audit_crop_mapping,
    decode_image,
)


def check_images(dataset: Dataset, split: str, progress: bool = True) -> ImageCounts:
    """Decode every distinct image and crop file of a split once; count found, missing, unreadable."""
    counts = ImageCounts()
    if dataset.image_root is None:
        return counts
    store = ImageStore.discover(dataset.image_root, split)
    paths: dict[Path, str] = {}  # MNRE instances of one post share an image: decode it once
    for record in dataset.splits[split]:
        located = store.locate(record.image_id, record.index, counts)
        paths.update((p, "image" if i == 0 else "crop") for i, p in enumerate(located) if p is not None)
    for path, kind in tqdm(
        paths.items(), desc=f"images {split}", unit="file", disable=not progress, leave=False
    ):
        try:
            decode_image(path)
            counts.record(path, kind, "found")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            counts.record(path, kind, "missing", NOT_FOUND)
        except ImageUnreadable as error:
            counts.record(path, kind, "unreadable", error.reason)
    return counts


def crop_mapping_audit(dataset: Dataset, split: str) -> dict[str, int]:
    if dataset.image_root is None:
        return {}
    records = dataset.splits[split]
    store = ImageStore.discover(dataset.image_root, split)
    image_ids = {r.image_id for r in records if r.image_id}
    image_ids |= {f"{i}.jpg" for i in image_ids}
    return audit_crop_mapping(store, {r.index for r in records}, image_ids)


def split_stats(dataset: Dataset, split: str) -> dict:
    """Counts for one split in the JSON shape of ``mmib data stats --format json``."""
    return dataset.format.split_stats(dataset.splits[split])


def dataset_stats(dataset: Dataset, with_images: bool = True, progress: bool = True) -> dict:
    """Stats for every split, plus skipped records and image/crop availability."""
    splits = {}
    for split in dataset.splits:
        stats = split_stats(dataset, split)
        stats["file"] = str(dataset.files[split])
        stats["skipped_records"] = [str(s) for s in dataset.skipped.get(split, [])]
        if with_images and dataset.image_root is not None:
            counts = check_images(dataset, split, progress)
            stats["image_files"] = counts.as_dict()
            stats["image_problems"] = counts.problems
            stats["crop_mapping"] = crop_mapping_audit(dataset, split)
        splits[split] = stats
    return {
        "dataset": dataset.name,
        "path": str(dataset.path),
        "task": dataset.task,
        "image_root": str(dataset.image_root) if dataset.image_root else None,
        "splits": splits,
    }


def format_stats(stats: dict) -> str:
    """A plain-text table of :func:`dataset_stats` output."""
    splits = stats["splits"]
    names = list(splits)
    lines = [f"dataset {stats['dataset']} ({stats['task']}) at {stats['path']}"]

    def row(label: str, values: list) -> str:
        return f"  {label:<34}" + "".join(f"{v!s:>10}" for v in values)

    lines.append(row("", names))
    lines.extend(FORMATS[stats["task"]].stats_lines(splits, row))
    if stats.get("image_root"):
        lines.append(f"  image files under {stats['image_root']}")
        for key in ImageCounts().as_dict():
            lines.append(row(key.replace("_", " "), [splits[s]["image_files"][key] for s in names]))
        audit_keys = sorted({k for s in names for k in splits[s].get("crop_mapping", {})})
        if audit_keys:
            lines.append("  crop mapping files (all entries, all listed crops)")
        for key in audit_keys:
            lines.append(row(key.replace("_", " "), [splits[s]["crop_mapping"].get(key, "-") for s in names]))
    for split in names:
        skipped = splits[split]["skipped_records"]
        if skipped:
            lines.append(f"  {split}: skipped {len(skipped)} malformed record(s):")
            lines.extend(f"    {s}" for s in skipped)
    return "\n".join(lines)
