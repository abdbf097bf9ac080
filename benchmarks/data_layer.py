"""Figures behind the README's data tables: benchmark statistics and the synthetic benchmark's
generation time and oracle scores. Writes benchmarks/results/data_layer.json.

    python benchmarks/data_layer.py [--shared ../shared] [--seed 13]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmib.data import load_dataset
from mmib.data.stats import dataset_stats
from mmib.data.synth import SynthConfig, generate

ROOT = Path(__file__).resolve().parents[1]


def hardware() -> dict:
    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    results: dict = {
        "hardware": hardware(),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "benchmarks": {},
        "synthetic": {},
    }
    for name in ("twitter2015", "twitter2017", "mnre"):
        folder = args.shared / "data" / name
        if folder.is_dir():
            dataset = load_dataset(folder)
            stats = dataset_stats(dataset, progress=False)
            stats["sha256"] = {split: sha256(path) for split, path in dataset.files.items()}
            results["benchmarks"][name] = stats
    for task, size in (("ner", "full"), ("re", "full"), ("ner", "small"), ("re", "small")):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = generate(SynthConfig(task=task, size=size, seed=args.seed), out, progress=False)
            summary["generation_seconds"] = round(time.perf_counter() - start, 2)
        results["synthetic"][f"{task}-{size}"] = summary
        oracle = summary["oracles"]["test"]
        print(
            f"synth {task} {size}: {summary['generation_seconds']}s, test text-only oracle "
            f"{oracle['text_only_f1']:.4f}, multimodal oracle {oracle['multimodal_f1']:.4f}"
        )
    target = ROOT / "benchmarks" / "results" / "data_layer.json"
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
