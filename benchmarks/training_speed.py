"""Training and evaluation speed against an earlier commit's, on the same machine in the same run: training
samples/s (``Trainer.fit`` on the first ``--train-records`` records, one epoch) and the seconds of one dev
evaluation (the run's best checkpoint over the whole dev split), at commit ``--baseline`` and at this
checkout, for each workload below. Writes benchmarks/results/training_speed.json.

    python benchmarks/training_speed.py --baseline f171dbe --rounds 2
    python benchmarks/training_speed.py --profile          # where one step and one evaluation spend time

Workloads (the MMIB-captions runs of the MNRE and Twitter-2017 work; BLIP-2 captions, MiniLM, batch 16):
``mnre``: MNRE with entity markers; ``twitter2017``: Twitter-2017 MNER. Both sides compute the same model
(the caption cut of 32 sub-words that the baseline hard-codes), so the difference is the code's.

Why a same-run A/B: timings on these VMs differ by half between days. Each side runs in its own process from
a git worktree at its commit, the sides alternating ``--rounds`` times; every figure is the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORKLOADS = {
    "mnre": {
        "data": str(SHARED / "mnre"),
        "captions": str(SHARED / "image-captions" / "mnre" / "blip2.txt"),
        "entity_markers": True,
        "train_records": 800,
    },
    "twitter2017": {
        "data": str(SHARED / "twitter2017"),
        "captions": str(SHARED / "image-captions" / "blip2" / "twitter2017.txt"),
        "entity_markers": False,
        "train_records": 480,
    },
}


def settings(name: str, out: Path, train_records: int):
    from mmib.training import TrainConfig

    workload = WORKLOADS[name]
    return TrainConfig.create(
        data=workload["data"],
        output_dir=str(out),
        captions=workload["captions"],
        image_source="captions",
        entity_markers=workload["entity_markers"],
        logvar_head="linear",
        max_train_samples=train_records,
        epochs=1,
        batch_size=16,
        learning_rate=5e-5,
        seed=1,
        threads=2,
    )


def worker(name: str, out: str, train_records: int) -> None:
    """In the side's own process (its PYTHONPATH picks the code): one epoch's samples/s, one dev evaluation."""
    from mmib.training import Trainer
    from mmib.training.evaluate_run import open_run_split
    from mmib.training.evaluation import predict_split

    config = settings(name, Path(out), train_records)
    summary = Trainer(config, progress=False).fit()
    opened = open_run_split(out, "dev", progress=False)
    start = time.perf_counter()
    predict_split(opened.model, opened.collator, opened.prepared, opened.train.eval_batch_size)
    evaluation = time.perf_counter() - start
    print(
        json.dumps(
            {
                "train_samples_per_second": summary["train_samples_per_second"],
                "dev_eval_seconds": round(evaluation, 2),
                "dev_records": len(opened.prepared.records),
            }
        )
    )


def profile(name: str, steps: int) -> dict:
    """Seconds per training step in collation, forward, backward and optimiser step, and one dev
    evaluation's collation against its model time (this checkout's code)."""
    import torch

    from mmib.data.discover import load_dataset
    from mmib.model.mmib import build_model
    from mmib.processing import cached_image_side, feature_width
    from mmib.training.batching import Collator, epoch_batches, prepare_split
    from mmib.training.evaluation import predict_split
    from mmib.training.trainer import make_optimizer, model_config_for, set_seed

    torch.set_num_threads(2)
    config = settings(name, Path(tempfile.mkdtemp()), steps * 16)
    dataset = load_dataset(config.data)
    dataset.splits["train"] = dataset.splits["train"][: steps * 16]
    model_config = model_config_for(config, dataset, feature_width(config.model))
    set_seed(1)
    model, tokenizer = build_model(model_config)
    from mmib.encoders.text import WordTokenizer

    collator = Collator.for_model(WordTokenizer.for_model(tokenizer, model_config), model_config)
    side = cached_image_side(model_config, config.captions, None)
    prepared = {s: prepare_split(dataset, s, side, False) for s in ("train", "dev")}
    optimizer = make_optimizer(model, config)
    parts = dict.fromkeys(("collate", "forward", "backward", "optimizer"), 0.0)
    model.train()
    batches = epoch_batches(prepared["train"], 16, seed=1, **_bucketing(collator, prepared["train"]))
    for posts in batches:
        start = time.perf_counter()
        batch = collator(prepared["train"], posts)
        collated = time.perf_counter()
        output = model(batch)
        forward = time.perf_counter()
        output.loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = time.perf_counter()
        for key, seconds in zip(
            parts, (collated - start, forward - collated, backward - forward, done - backward), strict=True
        ):
            parts[key] += seconds
    per_step = {key: round(value / len(batches), 4) for key, value in parts.items()}
    dev = prepared["dev"]
    start = time.perf_counter()
    for posts in epoch_batches(dev, config.eval_batch_size, seed=None, **_bucketing(collator, dev)):
        collator(dev, posts)
    collate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predict_split(model, collator, dev, config.eval_batch_size)
    return {
        "steps": len(batches),
        "seconds_per_step": per_step,
        "dev_records": len(dev.records),
        "dev_eval_seconds": round(time.perf_counter() - start, 2),
        "dev_collate_seconds": round(collate_seconds, 2),
    }


def _bucketing(collator, split) -> dict:
    """This checkout's length-bucketing arguments of ``epoch_batches`` (empty on code without them)."""
    import inspect

    from mmib.training.batching import epoch_batches

    if "lengths" in inspect.signature(epoch_batches).parameters:
        return {"lengths": collator.lengths(split)}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="f171dbe", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2, help="times each side runs, alternating")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument(
        "--profile", action="store_true", help="print where time goes (this checkout), no A/B"
    )
    parser.add_argument("--steps", type=int, default=20, help="training steps profiled")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "training_speed.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_eval import git_commit, hardware

    if args.profile:
        for name in args.workloads:
            print(name, json.dumps(profile(name, args.steps)), flush=True)
        return
    baseline = subprocess.check_output(["git", "rev-parse", args.baseline], cwd=ROOT, text=True).strip()
    runs: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="mmib-speed-") as scratch:
        scratch = Path(scratch)
        tree = scratch / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), baseline], cwd=ROOT, check=True)
        sides = {f"baseline {baseline[:7]}": tree / "src", "this checkout": ROOT / "src"}
        try:
            for round_number in range(args.rounds):
                for name in args.workloads:
                    for side, source in sides.items():
                        out = scratch / f"{name}-{side.split()[0]}-{round_number}"
                        command = [sys.executable, __file__, "--worker", name, str(out)]
                        command.append(str(WORKLOADS[name]["train_records"]))
                        environment = os.environ | {"PYTHONPATH": str(source)}
                        output = subprocess.check_output(command, env=environment, text=True, cwd=scratch)
                        measured = json.loads(output.strip().splitlines()[-1])
                        runs.setdefault(name, {}).setdefault(side, []).append(measured)
                        print(f"round {round_number + 1}: {name}: {side}: {measured}", flush=True)
                        shutil.rmtree(out, ignore_errors=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    medians = {
        name: {
            side: {
                key: round(statistics.median(m[key] for m in measured), 2)
                for key in ("train_samples_per_second", "dev_eval_seconds")
            }
            for side, measured in found.items()
        }
        for name, found in runs.items()
    }
    base, current = list(sides)
    result = {
        "baseline_commit": baseline,
        "rounds": args.rounds,
        "workloads": {name: {k: v for k, v in WORKLOADS[name].items()} for name in args.workloads},
        "median": medians,
        "speedup": {
            name: {
                "train": round(
                    m[current]["train_samples_per_second"] / m[base]["train_samples_per_second"], 2
                ),
                "dev_eval": round(m[base]["dev_eval_seconds"] / m[current]["dev_eval_seconds"], 2),
            }
            for name, m in medians.items()
        },
        "passes": runs,
        "command": " ".join(["python", *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median"], indent=2), json.dumps(result["speedup"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
