"""Locating the split files of a dataset folder and reading them with the right reader.

Accepted names per split (in ``PATH`` or ``PATH/txt``): ``train``; ``dev``, ``val`` or ``valid``; ``test``;
with the suffix ``.txt``, ``.conll``, ``.tsv`` or ``.bio``; each optionally prefixed ``ours_`` as in the MNRE
release. A single file is read as one split named ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmib.data.errors import SkippedRecord
from mmib.data.formats import FORMATS, DataFormat
from mmib.data.images import SPLIT_ALIASES
from mmib.data.readers import sniff_format
from mmib.data.records import LabelVocab, NerPost, ReInstance

SPLITS = ("train", "dev", "test")
SPLIT_SUFFIXES = (".txt", ".conll", ".tsv", ".bio")


@dataclass
class Dataset:
    """The splits of one dataset, its task (``ner`` or ``mre``) and what lenient reading skipped."""

    path: Path
    task: str
    splits: dict[str, list[NerPost] | list[ReInstance]]
    files: dict[str, Path]
    skipped: dict[str, list[SkippedRecord]] = field(default_factory=dict)
    image_root: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path.name != "txt" else self.path.parent.name

    @property
    def format(self) -> DataFormat:
        """What reading and summarising this dataset's files needs (:mod:`mmib.data.formats`)."""
        return FORMATS[self.task]

    def label_vocab(self) -> LabelVocab:
        """Labels of every split, sorted: deterministic for the same files."""
        return self.format.label_vocab([r for split in self.splits.values() for r in split])


def find_split_files(path: Path) -> dict[str, Path]:
    """Map split name -> file for a dataset folder (or a single file, as split ``all``)."""
    if path.is_file():
        return {"all": path}
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such dataset file or folder")
    files: dict[str, Path] = {}
    for split in SPLITS:
        for folder in (path, path / "txt"):
            for alias in SPLIT_ALIASES[split]:
                for prefix in ("", "ours_"):
                    for suffix in SPLIT_SUFFIXES:
                        candidate = folder / f"{prefix}{alias}{suffix}"
                        if split not in files and candidate.is_file():
                            files[split] = candidate
    if not files:
        raise FileNotFoundError(
            f"{path}: no split files found (expected train, dev/val/valid and test files ending in "
            ".txt, .conll, .tsv or .bio, optionally prefixed ours_, in the folder or its txt/ subfolder)"
        )
    return files


def _default_image_root(path: Path) -> Path | None:
    """The dataset folder itself (or its parent for ``txt/``) when it holds a known image layout."""
    for folder in (path, path.parent):
        if folder.is_dir() and ((folder / "img_org").is_dir() or any(folder.glob("*_images"))):
            return folder
    return None


def load_dataset(
    path: Path | str,
    *,
    lenient: bool = False,
    entity_types: set[str] | None = None,
    image_root: Path | str | None = None,
) -> Dataset:
    """Read every split of a Twitter-style, MNRE-style or plain CoNLL dataset.

    Files with ``IMGID:`` lines accept the Twitter entity types (PER, LOC, ORG, MISC, OTHER) unless
    ``entity_types`` says otherwise; plain CoNLL files accept any BIO type.
    """
    path = Path(path)
    files = find_split_files(path)
    task = sniff_format(next(iter(files.values())))
    splits: dict = {}
    skipped: dict[str, list[SkippedRecord]] = {}
    for split, file in files.items():
        result = FORMATS[task].read(file, lenient, entity_types)
        splits[split] = result.records
        skipped[split] = result.skipped
    root = (
        Path(image_root)
        if image_root is not None
        else _default_image_root(path if path.is_dir() else path.parent)
    )
    return Dataset(path, task, splits, files, skipped, root)
