"""Prediction speed of a trained run on new posts: single-post latency (p50, p95) and batched throughput,
with and without the object detector. Writes benchmarks/results/prediction_latency.json.

    python benchmarks/prediction_latency.py runs/bench/synth-ner-small-mmib/seed-1 \
        --data runs/data/synth-ner-small-seed13 --posts 100

Posts are the test split of a dataset folder (words joined with spaces, re-tokenised as raw text), each
with its image file. Timing covers the whole call: image decoding, detection, CNN features, text encoder,
MMIB layers and CRF decoding. Run it on an idle machine; the hardware is written beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_eval import git_commit, hardware

from mmib.data import load_dataset
from mmib.data.images import ImageStore
from mmib.predict import Extractor
from mmib.predict.detector import load_default_detector


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(extractor: Extractor, posts: list[tuple[str, Path | None]], batch_size: int) -> dict:
    extractor.analyze(*posts[0])  # warm-up: first calls allocate and pick kernels
    single = []
    for text, image in posts:
        start = time.perf_counter()
        extractor.analyze(text, image)
        single.append(1000 * (time.perf_counter() - start))
    extractor.batch_size = batch_size
    start = time.perf_counter()
    extractor.analyze_many(posts)
    batched = time.perf_counter() - start
    return {
        "single_post_ms_p50": round(percentile(single, 0.5), 1),
        "single_post_ms_p95": round(percentile(single, 0.95), 1),
        "single_post_ms_mean": round(statistics.fmean(single), 1),
        "batched_posts_per_second": round(len(posts) / batched, 2),
        "batch_size": batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "prediction_latency.json"
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    dataset = load_dataset(args.data)
    records = dataset.splits["test"][: args.posts]
    store = ImageStore.discover(dataset.image_root, "test", max_crops=0) if dataset.image_root else None
    images = [store.locate(r.image_id, r.index)[0] if store else None for r in records]
    posts = [
        (" ".join(r.tokens), image if image is not None and image.exists() else None)
        for r, image in zip(records, images, strict=True)
    ]
    detector = load_default_detector()
    if detector is None:
        raise SystemExit(
            "fetch the detector first (mmib models fetch-detector; pip install ai-edge-litert==2.3.0)"
        )
    result = {
        "run": str(args.run_dir),
        "data": str(args.data),
        "posts": len(posts),
        "posts_with_image": sum(image is not None for _, image in posts),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    for name, chosen in (("with_detector", detector), ("without_detector", None)):
        extractor = Extractor.load(args.run_dir, detector=chosen)
        result[name] = measure(extractor, posts, args.batch_size)
        print(name, result[name], flush=True)
    detector_ms = []
    for _, image in posts:
        if image is not None:
            from mmib.data.images import decode_image

            picture = decode_image(image)
            start = time.perf_counter()
            detector.detect(picture)
            detector_ms.append(1000 * (time.perf_counter() - start))
    result["detector_only_ms_p50"] = round(percentile(detector_ms, 0.5), 1) if detector_ms else None
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
