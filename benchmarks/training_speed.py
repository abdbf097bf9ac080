"""Training and evaluation speed against an earlier commit's, or against a setting, on the same machine in
the same run: training samples/s (``Trainer.fit`` on the first ``--train-records`` records, one epoch) and the
seconds of one dev evaluation (the run's best checkpoint over the whole dev split), for each workload below.

    python benchmarks/training_speed.py --baseline f171dbe --rounds 2     # results/training_speed.json
    python benchmarks/training_speed.py --workloads twitter2017-mpnet --against precision=bf16 --rounds 2
    python benchmarks/training_speed.py --profile          # where one step and one evaluation spend time
    python benchmarks/training_speed.py --profile --workloads twitter2017-mpnet --against precision=bf16

Workloads (the MMIB-captions runs of the MNRE and Twitter-2017 work; BLIP-2 captions, batch 16):
``mnre``: MNRE with entity markers, MiniLM; ``twitter2017``: Twitter-2017 MNER, MiniLM; ``twitter2017-mpnet``:
the same at the paper's encoder size (all-mpnet-base-v2, 12 layers, 768-d; assembled by
``mmib models assemble-mpnet``). Against a commit, both sides compute the same model (the caption cut of 32
sub-words that the baseline hard-codes), so the difference is the code's. Against a setting (``--against
KEY=VALUE``, any training or model key), both sides are this checkout and round r trains with seed r on both,
so the dev F1 of a side at two seeds shows the seed noise beside the setting's effect; the result is
written to results/training_speed-<workload>-<setting>.json.

Why a same-run A/B: timings on these VMs differ by half between days. Each side runs in its own process from
a git worktree at its commit, the sides alternating ``--rounds`` times; every figure is the median.
"""

from __future__ import annotations

import argparse
import contextlib
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
RESULTS = Path(__file__).resolve().parent / "results"
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
    "twitter2017-mpnet": {
        "data": str(SHARED / "twitter2017"),
        "captions": str(SHARED / "image-captions" / "blip2" / "twitter2017.txt"),
        "entity_markers": False,
        "train_records": 960,
        "text_encoder": "all-mpnet-base-v2",
    },
}


def settings(name: str, out: Path, train_records: int, seed: int = 1, overrides: dict | None = None):
    """The workload's training settings; ``overrides`` in ``with_dotted``'s form (``{"model.beta1": 0.2}``)."""
    from mmib.training import TrainConfig

    workload = WORKLOADS[name]
    encoder = {"text_encoder": workload["text_encoder"]} if "text_encoder" in workload else {}
    values = dict(
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
        seed=seed,
        threads=2,
        **encoder,
    )
    return TrainConfig.create(**values).with_dotted(overrides or {})


def worker(name: str, out: str, train_records: int, overrides: dict, seed: int) -> None:
    """In the side's own process (its PYTHONPATH picks the code): one epoch's samples/s and dev F1, and one
    more dev evaluation in fp32 (both sides alike): its seconds and F1."""
    from mmib.training import Trainer
    from mmib.training.evaluate_run import open_run_split
    from mmib.training.evaluation import predict_split

    config = settings(name, Path(out), train_records, seed, overrides)
    summary = Trainer(config, progress=False).fit()
    opened = open_run_split(out, "dev", progress=False)
    start = time.perf_counter()
    predictions = predict_split(opened.model, opened.collator, opened.prepared, opened.train.eval_batch_size)
    evaluation = time.perf_counter() - start
    measured = {
        "train_samples_per_second": summary["train_samples_per_second"],
        "dev_eval_seconds": round(evaluation, 2),
        "dev_records": len(opened.prepared.records),
        "dev_f1": round(100 * summary["best_dev_f1"], 2),  # the trainer's own evaluation, at its precision
        "seed": seed,
    }
    if hasattr(opened.collator, "task"):  # code before the Task objects has no scorer here
        scores = opened.collator.task.score(opened.prepared.records, predictions)
        measured["dev_f1_fp32"] = round(100 * scores["f1"], 2)
    print(json.dumps(measured))


def profile(name: str, steps: int, overrides: dict | None = None, op_steps: int = 3) -> dict:
    """Seconds per training step in collation, forward, backward and optimiser step, one dev evaluation's
    collation against its model time, and the operators that take the time of ``op_steps`` more steps
    (torch.profiler, self CPU time) (this checkout's code, with ``overrides``; precision bf16 is the CPU
    autocast the trainer's Accelerator applies: the forward in bf16 autocast, the backward outside it)."""
    import torch

    from mmib.data.discover import load_dataset
    from mmib.model.mmib import build_model
    from mmib.processing import cached_image_side, feature_width
    from mmib.training.batching import Collator, epoch_batches, prepare_split
    from mmib.training.evaluation import predict_split
    from mmib.training.trainer import make_optimizer, model_config_for, set_seed

    torch.set_num_threads(2)
    total = steps + op_steps
    config = settings(name, Path(tempfile.mkdtemp()), total * 16, overrides=overrides)
    dataset = load_dataset(config.data)
    dataset.splits["train"] = dataset.splits["train"][: total * 16]
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
    bf16 = config.precision == "bf16"

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    batches = epoch_batches(prepared["train"], 16, seed=1, **_bucketing(collator, prepared["train"]))
    batches, profiled = batches[:steps], batches[steps:]
    for posts in batches:
        start = time.perf_counter()
        batch = collator(prepared["train"], posts)
        collated = time.perf_counter()
        with autocast():
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
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for posts in profiled:
            batch = collator(prepared["train"], posts)
            with autocast():
                output = model(batch)
            output.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    operators = top_operators(profiler.key_averages())
    dev = prepared["dev"]
    start = time.perf_counter()
    for posts in epoch_batches(dev, config.eval_batch_size, seed=None, **_bucketing(collator, dev)):
        collator(dev, posts)
    collate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predict_split(model, collator, dev, config.eval_batch_size)
    return {
        "settings": overrides or {},
        "text_encoder": config.model.text_encoder,
        "steps": len(batches),
        "profiled_steps": len(profiled),
        "seconds_per_step": per_step,
        "operators": operators,
        "dev_records": len(dev.records),
        "dev_eval_seconds": round(time.perf_counter() - start, 2),
        "dev_collate_seconds": round(collate_seconds, 2),
    }


# Operators grouped by what they compute, so that a 2-core step reads as "matrix products: 70%".
OPERATOR_GROUPS = {
    "matrix products": ("addmm", "aten::mm", "bmm", "matmul", "linear", "baddbmm", "_weight_int8", "onednn"),
    "attention softmax": ("softmax",),
    "layer norm": ("layer_norm",),
    "GELU": ("gelu",),
    "optimiser (fused AdamW)": ("adam",),
    "embedding gradient": ("embedding_dense_backward", "embedding_backward", "index_add", "index_put"),
    "copies and dtype casts": ("aten::to", "_to_copy", "copy_"),
}


def top_operators(averages, top: int = 12) -> dict:
    """Self CPU time of the profiled steps: the ``top`` operators and the groups above, as shares."""
    rows = [(event.key, event.self_cpu_time_total) for event in averages if event.self_cpu_time_total > 0]
    total = sum(time_us for _, time_us in rows) or 1.0
    groups = dict.fromkeys([*OPERATOR_GROUPS, "other"], 0.0)
    for key, time_us in rows:
        group = next(
            (g for g, parts in OPERATOR_GROUPS.items() if any(p in key.lower() for p in parts)), "other"
        )
        groups[group] += time_us
    rows.sort(key=lambda row: -row[1])
    return {
        "total_self_cpu_seconds": round(total / 1e6, 2),
        "groups": {group: round(time_us / total, 3) for group, time_us in groups.items()},
        "top": [{"operator": key, "share": round(time_us / total, 3)} for key, time_us in rows[:top]],
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
    parser.add_argument(
        "--against",
        nargs="+",
        metavar="KEY=VALUE",
        help="compare with this checkout under these settings instead",
    )
    parser.add_argument("--rounds", type=int, default=2, help="times each side runs, alternating")
    parser.add_argument("--workloads", nargs="+", default=["mnre", "twitter2017"], choices=list(WORKLOADS))
    parser.add_argument(
        "--profile", action="store_true", help="print where time goes (this checkout), no A/B"
    )
    parser.add_argument("--steps", type=int, default=20, help="training steps profiled")
    parser.add_argument("--out", type=Path, help="default: results/training_speed[-WORKLOAD-SETTINGS].json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_eval import git_commit, hardware

    from mmib.training.config import parse_dotted

    # the settings as train_eval.py's --set reads them: YAML values, model.KEY for the model's keys
    overrides = parse_dotted([f"--{assignment}" for assignment in args.against or []])
    label = ",".join(args.against or [])
    provenance = {
        "command": " ".join(["python", *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    if args.profile:
        for name in args.workloads:
            sides = {"default": {}, label: overrides} if overrides else {"this checkout": {}}
            measured = {side: profile(name, args.steps, settings) for side, settings in sides.items()}
            print(name, json.dumps(measured), flush=True)
            if overrides:
                out = RESULTS / f"training_profile-{name}-{_file_label(label)}.json"
                out.write_text(
                    json.dumps({"workload": name, "sides": measured, **provenance}, indent=2) + "\n"
                )
                print(f"wrote {out}")
        return
    runs, baseline = run_sides(args, overrides, label)
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
    base, current = list(next(iter(runs.values())))
    result = {
        **({"settings": overrides} if overrides else {"baseline_commit": baseline}),
        "rounds": args.rounds,
        "seeds": "round r trains with seed r" if overrides else "seed 1 every round",
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
        **provenance,
    }
    default_name = (
        f"training_speed-{'-'.join(args.workloads)}-{_file_label(label)}" if overrides else "training_speed"
    )
    out = args.out or RESULTS / f"{default_name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median"], indent=2), json.dumps(result["speedup"]))
    print(f"wrote {out}")


def run_sides(args, overrides: dict, label: str) -> tuple[dict, str | None]:
    """Every workload on both sides, alternating, ``args.rounds`` times, each pass in its own process; and
    the baseline commit's full hash (None against a setting)."""
    runs: dict = {}
    baseline = None
    with tempfile.TemporaryDirectory(prefix="mmib-speed-") as scratch, contextlib.ExitStack() as cleanup:
        scratch = Path(scratch)
        if overrides:
            sides = {"default": (ROOT / "src", {}), label: (ROOT / "src", overrides)}
        else:
            baseline = subprocess.check_output(
                ["git", "rev-parse", args.baseline], cwd=ROOT, text=True
            ).strip()
            tree = scratch / "tree"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), baseline], cwd=ROOT, check=True)
            cleanup.callback(
                subprocess.run, ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )
            sides = {f"baseline {baseline[:7]}": (tree / "src", {}), "this checkout": (ROOT / "src", {})}
        for round_number in range(args.rounds):
            seed = round_number + 1 if overrides else 1
            for name in args.workloads:
                for index, (side, (source, settings)) in enumerate(sides.items()):
                    out = scratch / f"{name}-{index}-{round_number}"
                    command = [sys.executable, __file__, "--worker", name, str(out)]
                    command += [str(WORKLOADS[name]["train_records"]), json.dumps(settings), str(seed)]
                    environment = os.environ | {"PYTHONPATH": str(source)}
                    output = subprocess.check_output(command, env=environment, text=True, cwd=scratch)
                    measured = json.loads(output.strip().splitlines()[-1])
                    runs.setdefault(name, {}).setdefault(side, []).append(measured)
                    print(f"round {round_number + 1}: {name}: {side}: {measured}", flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    return runs, baseline


def _file_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in label.replace("=", "-"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
