"""`mmib features DATA`: fill the image-feature cache ahead of training, on the device, in batches, and
split across processes.

Training computes missing features itself; this command does it beforehand (e.g. once on a GPU machine,
for CPU runs to read later) and in parallel: under ``torchrun --nproc_per_node N -m mmib features ...``
each process encodes every N-th distinct image file and writes its own shards. The cache stays one
entry per image content hash (encoders/feature_store.py), so runs on one machine or many share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmib.data.discover import Dataset
from mmib.data.images import ImageStore
from mmib.encoders.image import CacheCounts, ImageFeatureCache


@dataclass
class ExtractionReport:
    files: int  # distinct image files of the dataset (whole images and crops)
    this_process: int  # files this process was given
    counts: CacheCounts

    def line(self, process: int, processes: int) -> str:
        who = f"process {process + 1}/{processes}: " if processes > 1 else ""
        return f"{who}{self.this_process} of {self.files} image files; {self.counts}"


def dataset_image_files(dataset: Dataset, max_crops: int) -> list[Path]:
    """Every whole-image and crop path the dataset's posts point at (all splits), sorted, each once."""
    if dataset.image_root is None:
        return []
    paths: set[Path] = set()
    for split, records in dataset.splits.items():
        store = ImageStore.discover(dataset.image_root, split, max_crops=max_crops)
        for record in records:
            paths.update(p for p in store.locate(record.image_id, record.index) if p is not None)
    return sorted(paths)


def extract_features(
    dataset: Dataset,
    cache: ImageFeatureCache,
    max_crops: int,
    process: int = 0,
    processes: int = 1,
    progress: bool = True,
) -> ExtractionReport:
    """Encode this process's share (every ``processes``-th file) of the dataset's images into the cache."""
    files = dataset_image_files(dataset, max_crops)
    share = files[process::processes]
    cache.features(share, progress=progress)
    return ExtractionReport(len(files), len(share), cache.counts)
