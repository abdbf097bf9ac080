"""Prediction speed of a trained run on new posts: single-post latency (p50, p95) and batched throughput,
with and without the object detector, beside the bare networks on the same posts (their sum is the bound
the end-to-end figures are measured against), for each runtime (PyTorch, and ONNX Runtime running the
encoders exported by `mmib export --format onnx`; the run is exported first where it has no export).
Writes benchmarks/results/prediction_latency.json.

    python benchmarks/prediction_latency.py runs/bench/synth-ner-small-mmib/seed-1 \
        --data runs/data/synth-ner-small-seed13 --posts 100 --runtimes torch onnx

Posts are the test split of a dataset folder (words joined with spaces, re-tokenised as raw text), each
with its image file. Timing covers the whole call: image decoding, detection, CNN features, text encoder,
MMIB layers and CRF decoding. Run it on an idle machine; the hardware is written beside the numbers.
OpenMP workers sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE), as in `mmib predict`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# as `mmib predict` and `mmib serve` run (mmib.cli.passive_openmp): set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_eval import git_commit, hardware

from mmib.data import load_dataset
from mmib.data.images import ImageStore
from mmib.model.run_folder import RunFolder
from mmib.predict import Extractor
from mmib.predict.detector import load_default_detector
from mmib.predict.onnx_runtime import RUNTIMES, export_run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(extractor: Extractor, posts: list[tuple[str, Path | None]], batch_size: int) -> tuple[dict, list]:
    """Latency and throughput figures, and the batched pass's predictions (compared across runtimes)."""
    extractor.analyze(*posts[0])  # warm-up: first calls allocate and pick kernels
    single = []
    for text, image in posts:
        start = time.perf_counter()
        extractor.analyze(text, image)
        single.append(1000 * (time.perf_counter() - start))
    extractor.batch_size = batch_size
    start = time.perf_counter()
    predictions = extractor.analyze_many(posts)
    batched = time.perf_counter() - start
    return {
        "single_post_ms_p50": round(percentile(single, 0.5), 1),
        "single_post_ms_p95": round(percentile(single, 0.95), 1),
        "single_post_ms_mean": round(statistics.fmean(single), 1),
        "batched_posts_per_second": round(len(posts) / batched, 2),
        "batch_size": batch_size,
    }, predictions


@torch.inference_mode()
def bare_networks(
    extractor: Extractor, posts: list[tuple[str, Path | None]], batch_size: int, detector
) -> dict:
    """The networks alone on the same posts, inputs prepared beforehand: the text encoder on the tokenised
    batches, the CNN on the preprocessed whole images (batched as prediction batches them), the detector
    on the decoded images. What the end-to-end figures add on top is decoding, resizing, tokenising,
    collation, the MMIB layers and CRF decoding."""
    from mmib.data.images import decode_image
    from mmib.predict.tokenize import tokenize_post

    words = [[t.text for t in tokenize_post(text)] for text, _ in posts]
    batches = [extractor.tokenizer(words[i : i + batch_size]) for i in range(0, len(words), batch_size)]
    from mmib.predict.detector import crop_regions

    encoder, crops = extractor.image_encoder, extractor.config.max_crops
    # the CNN's inputs per prediction batch (as Extractor.visual_inputs builds them): whole images, and whole
    # images with their detector crops
    whole, with_crops = [], []
    for begin in range(0, len(posts), batch_size):
        pictures = [
            decode_image(image) for _, image in posts[begin : begin + batch_size] if image is not None
        ]
        regions = [r for p in pictures for r in [p, *crop_regions(p, detector.detect(p)[:crops], crops)]]
        whole.append([encoder.preprocess(p) for p in pictures])
        with_crops.append([encoder.preprocess(r) for r in regions])
    pictures = [decode_image(image) for _, image in posts if image is not None]

    def cnn(groups: list[list[torch.Tensor]]) -> None:
        for group in groups:
            for chunk in torch.stack(group).split(extractor.image_batch_size):
                encoder(chunk)

    extractor.model.text_encoder(batches[0])  # warm-up: the batch shapes of the timed passes
    cnn(whole[:1])
    cnn(with_crops[:1])
    timings = {}
    start = time.perf_counter()
    for batch in batches:
        extractor.model.text_encoder(batch)
    timings["text_encoder_s"] = time.perf_counter() - start
    start = time.perf_counter()
    cnn(whole)
    timings["cnn_s"] = time.perf_counter() - start
    start = time.perf_counter()
    cnn(with_crops)
    timings["cnn_with_crops_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for picture in pictures:
        detector.detect(picture)
    timings["detector_s"] = time.perf_counter() - start
    # Not part of the bound (the bound is the three networks): the MMIB layers and the CRF on the same
    # batches, image features computed beforehand, so that the end-to-end gap can be read off.
    images = [decode_image(image) if image is not None else None for _, image in posts]
    full = []
    for begin in range(0, len(posts), batch_size):
        features, mask, _ = extractor.visual_inputs(images[begin : begin + batch_size])
        full.append(extractor.make_batch(words[begin : begin + batch_size], features, mask))
    start = time.perf_counter()
    for batch in full:
        fused = extractor.model.encode(batch, losses=False).fused
        extractor.model.head.decode(fused, batch.word_mask)
        extractor.model.head.marginals(fused, batch.word_mask)
    timings["mmib_layers_and_crf_s"] = time.perf_counter() - start - timings["text_encoder_s"]
    without = timings["text_encoder_s"] + timings["cnn_s"]
    result = {k: round(v, 3) for k, v in timings.items()}
    result["posts_per_second_without_detector"] = round(len(posts) / without, 2)
    with_detector = timings["text_encoder_s"] + timings["cnn_with_crops_s"] + timings["detector_s"]
    result["posts_per_second_with_detector"] = round(len(posts) / with_detector, 2)
    result["regions_with_detector"] = sum(len(group) for group in with_crops)
    return result


def agreement(expected: dict, found: dict) -> dict:
    """Per detector setting: posts whose entities (text, type, offsets) are identical, and the largest
    confidence difference over the entities both runtimes found."""
    report = {}
    for name in expected:
        same, largest = 0, 0.0
        for a, b in zip(expected[name], found[name], strict=True):
            keys_a = [(e.text, e.type, e.start, e.end) for e in a.entities]
            keys_b = [(e.text, e.type, e.start, e.end) for e in b.entities]
            same += keys_a == keys_b
            if keys_a == keys_b:
                for x, y in zip(a.entities, b.entities, strict=True):
                    largest = max(largest, abs(x.confidence - y.confidence))
        report[name] = {
            "posts_with_identical_entities": same,
            "posts": len(expected[name]),
            "largest_confidence_difference": float(f"{largest:.2e}"),
        }
    return report


def measure_runtime(run_dir: Path, runtime: str, posts: list, batch_size: int, detector) -> dict:
    """End to end with and without the detector, then the bare networks, all under one runtime."""
    measured, predictions = {}, {}
    for name, chosen in (("with_detector", detector), ("without_detector", None)):
        extractor = Extractor.load(run_dir, detector=chosen, runtime=runtime)
        measured[name], predictions[name] = measure(extractor, posts, batch_size)
        print(runtime, name, measured[name], flush=True)
    measured["predictions"] = predictions
    measured["bare_networks"] = bare_networks(extractor, posts, batch_size, detector)
    for name in ("with_detector", "without_detector"):
        bound = measured["bare_networks"][f"posts_per_second_{name}"]
        measured[name]["share_of_bare_networks"] = round(
            measured[name]["batched_posts_per_second"] / bound, 3
        )
    print(runtime, "bare networks", measured["bare_networks"], flush=True)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
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
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    result["runtimes"] = {}
    for runtime in args.runtimes:
        if runtime == "onnx" and not RunFolder(args.run_dir).onnx_text_encoder.is_file():
            export_run(args.run_dir)
        result["runtimes"][runtime] = measure_runtime(args.run_dir, runtime, posts, args.batch_size, detector)
    predictions = {runtime: measured.pop("predictions") for runtime, measured in result["runtimes"].items()}
    if {"torch", "onnx"} <= set(predictions):
        result["onnx_against_torch"] = agreement(predictions["torch"], predictions["onnx"])
        print("onnx against torch", result["onnx_against_torch"], flush=True)
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
