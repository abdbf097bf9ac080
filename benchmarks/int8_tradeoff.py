"""What int8 would buy: torch's dynamic int8 quantisation of every linear layer (text encoder, MMIB layers,
heads), measured for speed and F1 against fp32 in one run. Decides whether `--quantize int8` is offered.

    python benchmarks/int8_tradeoff.py --speed-run RUN --data SYNTH --f1-runs RUN1 RUN2 ...

Speed: `Extractor.analyze_many` posts/s on the first `--posts` test posts of SYNTH (whole image, no detector),
fp32 then int8, the same posts. F1: each run's test split scored by the training evaluation path with the
fp32 model and with its int8 copy. Convolutions are not quantised by this method, so the CNN's share of the
time stays as it is. Writes benchmarks/results/int8_tradeoff.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_eval import git_commit, hardware

from mmib.data import load_dataset
from mmib.predict import Extractor
from mmib.training.evaluate_run import open_run_split
from mmib.training.evaluation import predict_split, score

ROOT = Path(__file__).resolve().parents[1]


def int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # torch marks its quantised tensors deprecated (still shipped in 2.13)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def posts_per_second(extractor: Extractor, posts: list) -> float:
    extractor.analyze_many(posts[:16])  # warm-up
    start = time.perf_counter()
    extractor.analyze_many(posts)
    return len(posts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speed-run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--f1-runs", type=Path, nargs="+", required=True)
    args = parser.parse_args()

    records = load_dataset(args.data).splits["test"][: args.posts]
    folder = args.data / "synth_images"
    posts = [(" ".join(r.tokens), folder / f"{r.image_id}.jpg" if r.image_id else None) for r in records]
    posts = [(text, image if image is not None and image.exists() else None) for text, image in posts]
    extractor = Extractor.load(args.speed_run, detector=None)
    speed = {"fp32_posts_per_second": round(posts_per_second(extractor, posts), 2)}
    extractor.model = int8(extractor.model)
    speed["int8_posts_per_second"] = round(posts_per_second(extractor, posts), 2)
    speed["speedup"] = round(speed["int8_posts_per_second"] / speed["fp32_posts_per_second"], 3)
    print("speed", speed, flush=True)

    f1 = {}
    for run in args.f1_runs:
        opened = open_run_split(run, "test", progress=False)
        batch = opened.train.eval_batch_size
        fp32 = score(
            opened.model.config.task,
            opened.prepared.records,
            predict_split(opened.model, opened.collator, opened.prepared, batch),
        )["f1"]
        quantised = score(
            opened.model.config.task,
            opened.prepared.records,
            predict_split(int8(opened.model), opened.collator, opened.prepared, batch),
        )["f1"]
        f1[str(run)] = {
            "fp32": round(100 * fp32, 2),
            "int8": round(100 * quantised, 2),
            "cost": round(100 * (fp32 - quantised), 2),
            "data": opened.train.data,
        }
        print(run, f1[str(run)], flush=True)
    result = {
        "method": "torch.ao.quantization.quantize_dynamic on every nn.Linear (qint8); convolutions stay fp32",
        "speed_run": str(args.speed_run),
        "posts": len(posts),
        **speed,
        "f1": f1,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    out = ROOT / "benchmarks" / "results" / "int8_tradeoff.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
