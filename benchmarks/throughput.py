"""Training throughput (samples/s) and peak memory per text encoder and variant, on 2 CPU cores.

Each configuration runs in its own process (so peak RSS is its own): it trains `--steps` optimiser
steps at `--batch-size` on the small synthetic NER benchmark, after 2 warm-up steps, with image
features already cached. Writes benchmarks/results/throughput.json.

    python benchmarks/throughput.py [--steps 20] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    (encoder, variant)
    for encoder in ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
    for variant in ("text-only", "mmib")
]


def measure(encoder: str, variant: str, steps: int, batch_size: int, data: str) -> dict:
    import torch

    from mmib.data import load_dataset
    from mmib.encoders.image import ImageFeatureCache, build_image_encoder
    from mmib.encoders.text import WordTokenizer
    from mmib.model.mmib import build_model
    from mmib.processing.image_side import CachedPixels, NoImage, default_cache_dir
    from mmib.training.batching import Collator, epoch_batches, prepare_split
    from mmib.training.config import TrainConfig
    from mmib.training.trainer import make_optimizer, model_config_for, peak_rss_mb

    torch.manual_seed(0)
    settings = TrainConfig.create(
        data=data, text_encoder=encoder, text_only=variant == "text-only", batch_size=batch_size
    )
    dataset = load_dataset(data)
    image_encoder = build_image_encoder(settings.model.image_encoder)
    config = model_config_for(settings, dataset, image_encoder.feature_dim)
    model, tokenizer = build_model(config)
    if settings.model.text_only:
        side = NoImage(config)
    else:
        side = CachedPixels(config, ImageFeatureCache(image_encoder, default_cache_dir()))
    split = prepare_split(dataset, "train", side, progress=False)
    collator = Collator.for_model(WordTokenizer(tokenizer, config.max_length), config)
    optimizer = make_optimizer(model, settings)
    batches = epoch_batches(split, batch_size, seed=0)
    model.train()
    samples, elapsed = 0, 0.0
    for step, posts in enumerate(batches[: steps + 2]):
        start = time.perf_counter()
        loss = model(collator(split, posts)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            elapsed += time.perf_counter() - start
            samples += len(posts)
    return {
        "text_encoder": encoder,
        "variant": variant,
        "batch_size": batch_size,
        "steps": steps,
        "train_samples_per_second": round(samples / elapsed, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--one", nargs=2, metavar=("ENCODER", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = ROOT / "runs" / "data" / "synth-ner-small-seed13"
    if not (data / "synth_summary.json").exists():
        from mmib.data.synth import SynthConfig, generate

        generate(SynthConfig(task="ner", size="small", seed=13), data, progress=False)
    if args.one:
        print(json.dumps(measure(*args.one, args.steps, args.batch_size, str(data))))
        return
    rows = []
    for encoder, variant in CONFIGS:
        command = [
            sys.executable,
            __file__,
            "--one",
            encoder,
            variant,
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    from train_eval import git_commit, hardware

    result = {
        "rows": rows,
        "data": "synthetic ner:small (seed 13)",
        "hardware": hardware(),
        "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        "git_commit": git_commit(),
    }
    (ROOT / "benchmarks" / "results" / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
