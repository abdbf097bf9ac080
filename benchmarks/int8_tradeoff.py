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
from mmib.training.evaluation import predict_split

ROOT = Path(__file__).resolve().parents[1]


SCOPES = ("text-encoder", "all")


def int8(model: nn.Module, scope: str) -> nn.Module:
    """A copy with the linear layers of the text encoder (``text-encoder``) or of the whole model (``all``:
    also W_v, the APEnc encoders, fusion, discriminator and head) in dynamic int8."""
    quantised = copy.deepcopy(model)
    with warnings.catch_warnings():  # torch marks its quantised tensors deprecated (still shipped in 2.13)
        warnings.simplefilter("ignore")
        if scope == "all":
            return torch.ao.quantization.quantize_dynamic(quantised, {nn.Linear}, dtype=torch.qint8)
        quantised.text_encoder = torch.ao.quantization.quantize_dynamic(
            quantised.text_encoder, {nn.Linear}, dtype=torch.qint8
        )
    return quantised


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
    fp32_model = extractor.model
    posts_per_second(extractor, posts)  # a first full pass: allocations and kernel choices settle
    speed = {"fp32_posts_per_second": round(posts_per_second(extractor, posts), 2)}
    for scope in SCOPES:
        extractor.model = int8(fp32_model, scope)
        speed[f"int8_{scope}_posts_per_second"] = round(posts_per_second(extractor, posts), 2)
        speed[f"int8_{scope}_speedup"] = round(
            speed[f"int8_{scope}_posts_per_second"] / speed["fp32_posts_per_second"], 3
        )
    print("speed", speed, flush=True)

    f1 = {}
    for run in args.f1_runs:
        opened = open_run_split(run, "test", progress=False)
        batch = opened.train.eval_batch_size
        task, records = opened.collator.task, opened.prepared.records

        def f1_of(model, opened=opened, task=task, records=records, batch=batch) -> float:
            predictions = predict_split(model, opened.collator, opened.prepared, batch)
            return 100 * task.score(records, predictions)["f1"]

        fp32 = f1_of(opened.model)
        f1[str(run)] = {"data": opened.train.data, "fp32": round(fp32, 2)}
        for scope in SCOPES:
            quantised = f1_of(int8(opened.model, scope))
            f1[str(run)][f"int8_{scope}"] = round(quantised, 2)
            f1[str(run)][f"int8_{scope}_cost"] = round(fp32 - quantised, 2)
        print(run, f1[str(run)], flush=True)
    result = {
        "method": "torch.ao.quantization.quantize_dynamic of nn.Linear layers (qint8): the text encoder's, or "
        "all the model's; convolutions stay fp32",
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
