"""Prediction speed of a trained run on new posts: single-post latency (p50, p95) and batched throughput,
with and without the object detector, beside the bare networks on the same posts (their sum is the bound
the end-to-end figures are measured against), for each runtime (PyTorch, and ONNX Runtime running the
encoders exported by `mmib export --format onnx`; the run is exported first where it has no export), and
beside the single-thread ceiling: the CPU seconds of every part on one thread, spread over the cores, the
most posts/s any scheduling of this computation could reach here. Writes benchmarks/results/prediction_latency.json.

    python benchmarks/prediction_latency.py runs/bench/synth-ner-small-mmib/seed-1 \
        --data runs/data/synth-ner-small-seed13 --posts 100 --runtimes torch onnx --repeats 5

Posts are the test split of a dataset folder (words joined with spaces, re-tokenised as raw text), each
with its image file. Timing covers the whole call: image decoding, detection, CNN features, text encoder,
MMIB layers and CRF decoding. Run it on an idle machine; the hardware is written beside the numbers. Every
batched figure is the median of ``--repeats`` interleaved passes (timings on a shared VM wander by 10 % and
more between passes), and the file keeps each pass's figure.
OpenMP workers sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE), as in `mmib predict`.
"""

from __future__ import annotations

import argparse
import copy
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
from mmib.devices import RUNTIMES
from mmib.encoders.detector import SsdMobileNetDetector, load_default_detector
from mmib.model.run_folder import RunFolder
from mmib.predict import Extractor
from mmib.predict.onnx_runtime import export_run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_posts(data: Path, count: int) -> list[tuple[str, Path | None]]:
    """The first ``count`` test posts of a dataset folder as (raw text, absolute image path or None)."""
    dataset = load_dataset(data)
    store = ImageStore.discover(dataset.image_root, "test", max_crops=0) if dataset.image_root else None
    posts = []
    for record in dataset.splits["test"][:count]:
        image = store.locate(record.image_id, record.index)[0] if store else None
        present = image is not None and image.exists()
        posts.append((" ".join(record.tokens), image.resolve() if present else None))
    return posts


def single_post_latency(extractor: Extractor, posts: list[tuple[str, Path | None]]) -> dict:
    """One post per call, each post once: the latency a client of `mmib serve` without batching sees."""
    extractor.analyze(*posts[0])  # warm-up: first calls allocate and pick kernels
    single = []
    for text, image in posts:
        start = time.perf_counter()
        extractor.analyze(text, image)
        single.append(1000 * (time.perf_counter() - start))
    return {
        "single_post_ms_p50": round(percentile(single, 0.5), 1),
        "single_post_ms_p95": round(percentile(single, 0.95), 1),
        "single_post_ms_mean": round(statistics.fmean(single), 1),
    }


def batched_seconds(extractor: Extractor, posts: list[tuple[str, Path | None]]) -> tuple[float, list]:
    """Seconds of one batched pass over every post (from image paths: decoding included), and its output."""
    start = time.perf_counter()
    predictions = extractor.analyze_many(posts)
    return time.perf_counter() - start, predictions


class BareNetworks:
    """The networks alone on the same posts, inputs prepared beforehand: the text encoder on the tokenised
    batches, the CNN on the preprocessed whole images (batched as prediction batches them; and with the
    detector's crops), the detector on the decoded images. What the end-to-end figures add on top is
    decoding, resizing, tokenising, collation, the MMIB layers and CRF decoding; the last two are timed
    apart (:meth:`time_mmib_layers`) so that the gap can be read off."""

    def __init__(self, extractor: Extractor, posts: list, batch_size: int, detector) -> None:
        from mmib.data.images import decode_image
        from mmib.encoders.detector import crop_regions
        from mmib.predict.tokenize import tokenize_post
        from mmib.processing import PostInput

        self.extractor, self.detector, self.batch_size = extractor, detector, batch_size
        words = [[t.text for t in tokenize_post(text)] for text, _ in posts]
        self.text_batches = [
            extractor.tokenizer(words[i : i + batch_size]) for i in range(0, len(words), batch_size)
        ]
        encoder, crops = extractor.image_side.encoder, extractor.config.max_crops
        # the CNN's inputs per prediction batch (as LivePixels.inputs builds them): whole images, and whole
        # images with their detector crops
        self.whole, self.with_crops = [], []
        for begin in range(0, len(posts), batch_size):
            pictures = [
                decode_image(image) for _, image in posts[begin : begin + batch_size] if image is not None
            ]
            regions = [r for p in pictures for r in [p, *crop_regions(p, detector.detect(p)[:crops], crops)]]
            self.whole.append(torch.stack([encoder.preprocess(p) for p in pictures]))
            self.with_crops.append(torch.stack([encoder.preprocess(r) for r in regions]))
        self.pictures = [decode_image(image) for _, image in posts if image is not None]
        self.regions_with_detector = sum(len(group) for group in self.with_crops)
        images = [decode_image(image) if image is not None else None for _, image in posts]
        self.model_batches = []  # text and image features of each prediction batch, for the MMIB layers
        for begin in range(0, len(posts), batch_size):
            features, mask, _ = extractor.image_side.inputs(images[begin : begin + batch_size])
            posts_in = [
                PostInput(post, identity=row) for row, post in enumerate(words[begin : begin + batch_size])
            ]
            self.model_batches.append(extractor.batch(posts_in, features, mask))
        self.time()  # warm-up: the batch shapes of the timed passes

    def _cnn(self, groups: list[torch.Tensor]) -> None:
        for group in groups:
            for chunk in group.split(self.extractor.image_side.image_batch_size):
                self.extractor.image_side.encoder(chunk)

    @torch.inference_mode()
    def time(self) -> dict[str, float]:
        """Seconds of each network over all posts, and of the MMIB layers and of the CRF (outside the bound)."""
        model, timings = self.extractor.model, {}
        start = time.perf_counter()
        for batch in self.text_batches:
            model.text_encoder(batch)
        timings["text_encoder_s"] = time.perf_counter() - start
        start = time.perf_counter()
        self._cnn(self.whole)
        timings["cnn_s"] = time.perf_counter() - start
        start = time.perf_counter()
        self._cnn(self.with_crops)
        timings["cnn_with_crops_s"] = time.perf_counter() - start
        start = time.perf_counter()
        for picture in self.pictures:
            self.detector.detect(picture)
        timings["detector_s"] = time.perf_counter() - start
        # Not part of the bound (the three networks): the text encoder plus the MMIB layers on the same
        # batches, image features computed beforehand; then the CRF (Viterbi and marginals) on their output.
        fused, start = [], time.perf_counter()
        for batch in self.model_batches:
            fused.append(model.encode(batch, losses=False).fused)
        timings["mmib_layers_s"] = time.perf_counter() - start - timings["text_encoder_s"]
        start = time.perf_counter()
        for batch, states in zip(self.model_batches, fused, strict=True):
            model.head.decode(states, batch.word_mask)
            model.head.marginals(states, batch.word_mask)
        timings["crf_s"] = time.perf_counter() - start
        return timings


def single_thread_ceiling(bare: BareNetworks, run_dir: Path, runtime: str, posts: int, repeats: int) -> dict:
    """The most posts/s any scheduling of this run's computation could reach on this machine's cores.

    Every part the whole path cannot skip (text encoder, CNN with and without the crops, detector, MMIB
    layers, CRF) is timed on one thread: torch, ONNX Runtime and the detector's interpreter each with one
    thread, which spends the least CPU time per post (splitting one call across threads adds waiting and
    synchronisation; on these machines the detector takes 23 ms per image on one thread and 17 ms on two,
    34 ms of CPU). The sum is the CPU seconds the ``posts`` need at least; spread perfectly over the cores it
    gives the ceiling, which decoding, resizing, tokenising and collation only lower. ``bare``'s prepared
    inputs are reused with single-thread networks. Medians of ``repeats`` passes."""
    threads = torch.get_num_threads()
    one_thread = copy.copy(bare)
    one_thread.extractor = Extractor.load(
        run_dir, detector=None, runtime=runtime, batch_size=bare.batch_size, onnx_threads=1
    )
    one_thread.detector = SsdMobileNetDetector(threads=1)
    torch.set_num_threads(1)  # torch's own ops
    try:
        one_thread.time()  # warm-up: the new sessions' first calls
        parts = [one_thread.time() for _ in range(repeats)]
    finally:
        torch.set_num_threads(threads)
    single = {key: round(statistics.median(p[key] for p in parts), 3) for key in parts[0]}
    shared = single["text_encoder_s"] + single["mmib_layers_s"] + single["crf_s"]
    cpu_seconds = {
        "with_detector": shared + single["cnn_with_crops_s"] + single["detector_s"],
        "without_detector": shared + single["cnn_s"],
    }
    result = {"single_thread": single, "cores": threads, "repeats": repeats}
    for name, seconds in cpu_seconds.items():
        result[f"cpu_seconds_{name}"] = round(seconds, 3)
        result[f"ceiling_posts_per_second_{name}"] = round(posts * threads / seconds, 2)
    return result


def measure_runtime(
    run_dir: Path, runtime: str, posts: list, batch_size: int, detector, repeats: int
) -> tuple[dict, dict]:
    """End to end with and without the detector and the bare networks, all under one runtime, interleaved
    ``repeats`` times: each repeat times every part back to back, so a slow spell of a shared machine falls on
    the end-to-end pass and its bound alike. Figures are medians over the repeats; a share is the median of
    the per-repeat shares. Returns the figures and the first batched pass's predictions per setting."""
    settings = {"with_detector": detector, "without_detector": None}
    extractors = {
        name: Extractor.load(run_dir, detector=chosen, runtime=runtime, batch_size=batch_size)
        for name, chosen in settings.items()
    }
    measured = {name: single_post_latency(extractor, posts) for name, extractor in extractors.items()}
    # the bound: each network alone, as fast as it runs on all the cores (prediction itself runs them side
    # by side on fewer threads each)
    cores = torch.get_num_threads()
    alone = Extractor.load(run_dir, detector=None, runtime=runtime, batch_size=batch_size, onnx_threads=cores)
    bare = BareNetworks(alone, posts, batch_size, SsdMobileNetDetector(threads=cores))
    predictions, passes, parts = {}, {name: [] for name in settings}, []
    for _ in range(repeats):
        for name, extractor in extractors.items():
            seconds, output = batched_seconds(extractor, posts)
            passes[name].append(seconds)
            predictions.setdefault(name, output)
        parts.append(bare.time())
    bounds = {
        "without_detector": [p["text_encoder_s"] + p["cnn_s"] for p in parts],
        "with_detector": [p["text_encoder_s"] + p["cnn_with_crops_s"] + p["detector_s"] for p in parts],
    }
    with_layers = [p["text_encoder_s"] + p["cnn_s"] + p["mmib_layers_s"] for p in parts]
    for name in settings:
        measured[name] |= {
            "batched_posts_per_second": round(len(posts) / statistics.median(passes[name]), 2),
            "batched_posts_per_second_repeats": [round(len(posts) / s, 2) for s in passes[name]],
            "batch_size": batch_size,
            "share_of_bare_networks": round(
                statistics.median(b / s for b, s in zip(bounds[name], passes[name], strict=True)), 3
            ),
        }
    measured["without_detector"]["share_of_networks_with_mmib_layers"] = round(
        statistics.median(b / s for b, s in zip(with_layers, passes["without_detector"], strict=True)), 3
    )
    summary = {key: round(statistics.median(p[key] for p in parts), 3) for key in parts[0]}
    summary["repeats"] = repeats
    summary["regions_with_detector"] = bare.regions_with_detector
    for name, seconds in bounds.items():
        summary[f"posts_per_second_{name}"] = round(len(posts) / statistics.median(seconds), 2)
    measured["bare_networks"] = summary
    ceiling = single_thread_ceiling(bare, run_dir, runtime, len(posts), min(repeats, 3))
    for name in settings:
        measured[name]["share_of_single_thread_ceiling"] = round(
            measured[name]["batched_posts_per_second"] / ceiling[f"ceiling_posts_per_second_{name}"], 3
        )
    measured["single_thread_ceiling"] = ceiling
    print(runtime, "single-thread ceiling", ceiling, flush=True)
    for name in settings:
        print(runtime, name, measured[name], flush=True)
    print(runtime, "bare networks", summary, flush=True)
    return measured, predictions


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed passes; medians are kept")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "prediction_latency.json"
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    posts = test_posts(args.data, args.posts)
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
    result["runtimes"], predictions = {}, {}
    for runtime in args.runtimes:
        if runtime == "onnx" and not RunFolder(args.run_dir).onnx_text_encoder.is_file():
            export_run(args.run_dir)
        result["runtimes"][runtime], predictions[runtime] = measure_runtime(
            args.run_dir, runtime, posts, args.batch_size, detector, args.repeats
        )
    if {"torch", "onnx"} <= set(predictions):
        result["onnx_against_torch"] = agreement(predictions["torch"], predictions["onnx"])
        print("onnx against torch", result["onnx_against_torch"], flush=True)
    detector_ms, fastest = [], SsdMobileNetDetector(threads=torch.get_num_threads())  # one call, all cores
    for _, image in posts:
        if image is not None:
            from mmib.data.images import decode_image

            picture = decode_image(image)
            start = time.perf_counter()
            fastest.detect(picture)
            detector_ms.append(1000 * (time.perf_counter() - start))
    result["detector_only_ms_p50"] = round(percentile(detector_ms, 0.5), 1) if detector_ms else None
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
