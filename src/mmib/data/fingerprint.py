"""A dataset's version as content hashes: what a result file records beside its seed and hardware, so that a
rerun can tell "the code changed" from "the data changed" (a synthetic benchmark regenerated under another
Pillow version draws and compresses its images differently; a benchmark file may be re-downloaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmib.data.discover import Dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _digest(named: list[tuple[str, Path]]) -> str:
    """sha256 over each file's name and bytes, in name order (independent of where the folder lies)."""
    total = hashlib.sha256()
    for name, path in sorted(named):
        total.update(name.encode())
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def dataset_fingerprint(dataset: Dataset) -> dict[str, str | int]:
    """sha256 of the split files (by split name), and of the image files under the dataset's image root
    (by path relative to it) when it has one."""
    found: dict[str, str | int] = {
        "text_sha256": _digest([(split, path) for split, path in dataset.files.items()]),
        "text_files": len(dataset.files),
    }
    if dataset.image_root is not None:
        root = Path(dataset.image_root)
        images = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        found["images_sha256"] = _digest([(str(p.relative_to(root)), p) for p in images])
        found["image_files"] = len(images)
    return found
