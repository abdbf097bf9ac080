"""Train one variant on one dataset for several seeds, evaluate each best-dev checkpoint once on test,
and write benchmarks/results/<name>.json (the shape the README's result tables are built from).

    python benchmarks/train_eval.py --name synth-ner-small-mmib --synth ner:small --variant mmib --seeds 1 2 3
    python benchmarks/train_eval.py --name twitter2017-text-only --data ../shared/data/twitter2017 \
        --variant text-only --seeds 1 2 3 --epochs 5

Model selection uses dev only; test is scored once per seed, after training, on the selected checkpoint.
Results accumulate: seeds already in the result file are kept and skipped, so a matrix can grow across
sessions (each seed records the commit it ran at).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

# This checkout's own src first: a venv's editable install may point at another checkout (a frozen worktree
# of this repository run with the main checkout's venv would otherwise train the main checkout's live code
# while recording the worktree's commit).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mmib.data import load_dataset
from mmib.data.fingerprint import dataset_fingerprint
from mmib.data.synth import SynthConfig, generate
from mmib.model.run_folder import RunFolder
from mmib.training import TrainConfig, Trainer
from mmib.training.config import parse_dotted
from mmib.training.evaluate_run import evaluate_run
from mmib.training.trainer import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "mmib": {},
    "text-only": {"text_only": True},
    "no-rr": {"use_refinement": False},
    "no-ar": {"use_alignment": False},
    "no-rr-no-ar": {"use_refinement": False, "use_alignment": False},
    "text-caption-pair": {"text_only": True, "caption_pair": True},
}


# What a result file keeps per seed (seeds accumulate across runs of this script)
PER_SEED = (
    "dev",
    "test",
    "best_epoch",
    "epochs_completed",
    "captions_counts",
    "train_seconds",
    "train_samples_per_second",
    "image_features",
    "seed_commit",
    "seed_hardware",
    "seed_data",
    "peak_rss_mb_per_seed",
    "protocol_gap",
    "dev_curve",
    "seed_timing_note",  # added by hand after a seed ends (what shared the cores); kept when seeds are added
)


def per_seed_entries(previous: dict) -> dict[str, dict[int, object]]:
    """The per-seed entries of an earlier result file (seed keys as ints), so new seeds add to them and none
    of the recorded seeds' entries is lost when the file is rewritten."""
    return {key: {int(seed): value for seed, value in previous.get(key, {}).items()} for key in PER_SEED}


def captioner_of(captions: str | None) -> str | None:
    """The captioning model of a caption file of ../shared: ``mnre/cogvlm.txt`` -> cogvlm,
    ``blip2/twitter2017.txt`` -> blip2 (files elsewhere: their name)."""
    if not captions:
        return None
    path = Path(captions)
    return path.parent.name if path.parent.name == "blip2" else path.stem


def dev_curve(metrics: list[dict]) -> list[float]:
    """Dev F1 after each epoch (metrics.jsonl, one line per epoch): the curve behind a best epoch."""
    return [line["dev"]["f1"] for line in metrics]


def protocol_gap(metrics: list[dict], best_epoch: int) -> dict | None:
    """From a run that scored test after every epoch (score_test_each_epoch): the dev-selected epoch's test
    F1 beside the best test F1 over the epochs, what selecting on test (as the released MNER code does)
    would report instead. None for runs without the per-epoch test scores."""
    curve = [line["test_each_epoch"]["f1"] for line in metrics if "test_each_epoch" in line]
    if len(curve) != len(metrics):
        return None
    best_test_epoch = max(range(len(curve)), key=lambda e: curve[e]) + 1
    return {
        "test_f1_by_epoch": curve,
        "dev_f1_by_epoch": dev_curve(metrics),
        "dev_selected_epoch": best_epoch,
        "dev_selected_test_f1": curve[best_epoch - 1],
        "best_test_epoch": best_test_epoch,
        "best_test_f1": curve[best_test_epoch - 1],
    }


def legacy_hardware(settings: TrainConfig) -> dict:
    return {
        "device": "cpu",
        "precision": "no",
        "processes": 1,
        "grad_accum": 1,
        "effective_batch": settings.batch_size,
    }


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def hardware() -> dict:
    """What the figures were measured on. Clock and vector extensions are recorded because two VMs that both
    report "AMD EPYC, 2 cores" ran this project's timings 1.5x apart."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name", platform.processor()),
        "cpu_mhz": round(float(info["cpu MHz"])) if "cpu MHz" in info else None,
        "cpu_vector_extensions": sorted(
            flags & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"}
        ),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # versions that change numbers: the encoders' code, image decoding and drawing, the ONNX runtime
        "packages": {
            name: package_version(name)
            for name in ("transformers", "tokenizers", "pillow", "numpy", "onnxruntime")
        },
    }


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    return result.stdout.strip() + ("-dirty" if dirty.strip() else "")


def prepare_data(args) -> str:
    if args.data:
        return args.data
    task, size = args.synth.split(":")
    folder = ROOT / "runs" / "data" / f"synth-{task}-{size}-seed{args.data_seed}"
    if not (folder / "synth_summary.json").exists():
        generate(SynthConfig(task=task, size=size, seed=args.data_seed), folder, progress=False)
    return str(folder)


def unfinished_run(settings: TrainConfig) -> bool:
    """True when the seed's folder holds an interrupted run (an epoch checkpoint, not finished) with exactly
    these settings: it is continued (`Trainer.fit(resume=True)`), so a run can span several sessions."""
    folder = RunFolder(settings.output_dir)
    try:
        recorded = folder.read_train_config()
    except FileNotFoundError:
        return False
    if not folder.last_state.exists():
        return False
    if folder.summary.exists() and json.loads(folder.summary.read_text()).get("finished"):
        return False
    # stop_after_epochs ends a process, not a run: it is left out of the comparison
    recorded_settings = replace(TrainConfig.from_dict(recorded), stop_after_epochs=None)
    same = (
        recorded_settings.with_absolute_paths().to_dict()
        == replace(settings, stop_after_epochs=None).with_absolute_paths().to_dict()
    )
    if same:
        print(f"{folder}: interrupted run with the same settings, continued from its last epoch", flush=True)
    return same


def finished_run(settings: TrainConfig) -> dict | None:
    """The summary of a finished run with exactly these settings (a dev-selected grid point), else None:
    such a run is scored on test as it is, not trained again."""
    folder = RunFolder(settings.output_dir)
    try:
        summary = json.loads(folder.summary.read_text())
        recorded = folder.read_train_config()
    except FileNotFoundError:
        return None
    # a setting added since the run was recorded counts as its default (what the run trained with)
    # runs record absolute paths (older runs the paths as given): compared with both sides made absolute
    same = (
        TrainConfig.from_dict(recorded).with_absolute_paths().to_dict()
        == settings.with_absolute_paths().to_dict()
    )
    if summary.get("finished") and same:
        print(f"{folder}: finished run with the same settings, scored as it is", flush=True)
        return summary
    return None


def write_result(result: dict, previous: dict, target: Path) -> None:
    """Summaries over the finished seeds, written after every seed so a killed matrix keeps its work."""
    result["seeds"] = sorted(result["test"])
    if "hyperparameters" not in result:
        result["hyperparameters"] = previous.get("hyperparameters", {})
    if all(result["test"][s] is not None for s in result["seeds"]):
        f1s = [result["test"][s]["f1"] for s in result["seeds"]]
        result["test_mean"] = statistics.mean(f1s)
        result["test_std"] = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
    else:  # a grid point: dev only
        dev = [result["dev"][s]["f1"] for s in result["seeds"]]
        result["dev_mean"] = statistics.mean(dev)
    result["peak_rss_mb"] = max(previous.get("peak_rss_mb", 0.0), round(peak_rss_mb(), 1))
    result["hardware"] = hardware()
    result["command"] = "python benchmarks/train_eval.py " + " ".join(sys.argv[1:])
    result["git_commit"] = git_commit()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset folder")
    source.add_argument("--synth", help="synthetic benchmark TASK:SIZE, e.g. ner:full (generated if absent)")
    parser.add_argument("--data-seed", type=int, default=13, help="seed of the synthetic benchmark")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="mmib")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--text-encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--image-encoder", default="efficientnet-lite0")
    parser.add_argument("--beta1", type=float, default=0.1)
    parser.add_argument("--beta2", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-5, help="learning rate of the pretrained text encoder")
    parser.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the new layers")
    parser.add_argument("--final-lr-ratio", type=float, default=0.0, help="the decay ends at this x the peak")
    parser.add_argument(
        "--captions",
        help="caption file: MMIB variants read it as their image side, text-caption-pair as text",
    )
    # apenc stays this script's default although the library's is linear: every recorded command before the
    # change omits the flag, and benchmarks/reproduce.py reruns recorded commands as they were.
    parser.add_argument("--logvar-head", choices=["apenc", "linear"], default="apenc")
    parser.add_argument("--initial-logvar", type=float, default=-4.0)
    parser.add_argument(
        "--kl-warmup", type=float, default=0.0, help="share of the steps over which beta ramps up"
    )
    parser.add_argument(
        "--entity-markers", action="store_true", help="MRE: mark head and tail in the text (not the paper's)"
    )
    parser.add_argument(
        "--caption-max-tokens",
        type=int,
        default=32,
        help="sub-words of a caption read (the caption encoder's cut; the pair's own room beyond the text)",
    )
    parser.add_argument(
        "--score-test-each-epoch",
        action="store_true",
        help="also score test after every epoch (never for selection): the protocol-gap measurement",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training or model setting after the rest (model.discriminator=bilinear, warmup_ratio=0.03)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimiser step")
    parser.add_argument("--run-root", help="folder of the seed runs (default runs/bench/NAME)")
    parser.add_argument(
        "--dev-only",
        action="store_true",
        help="a grid point: train and record dev, never score test (benchmarks/lr_grid.py)",
    )
    args = parser.parse_args()
    if args.variant == "text-caption-pair" and not args.captions:
        parser.error("--variant text-caption-pair needs --captions FILE")

    data = prepare_data(args)
    dataset = load_dataset(data)
    runs_dir = Path(args.run_root) if args.run_root else ROOT / "runs" / "bench" / args.name
    target = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    previous = json.loads(target.read_text()) if target.exists() else {}
    result: dict = {
        "task": dataset.task,
        "dataset": f"synthetic {args.synth} (mmib data synth, seed {args.data_seed})" if args.synth else data,
        "split_sizes": {split: len(records) for split, records in dataset.splits.items()},
        "text_encoder": args.text_encoder,
        "image_encoder": None if args.variant.startswith("text") or args.captions else args.image_encoder,
        "image_source": "captions"
        if args.captions
        else ("none" if args.variant == "text-only" else "pixels"),
        "captions": args.captions,
        "captioner": captioner_of(args.captions),
        "variant": args.variant,
        "seeds": args.seeds,
        **{key: {} for key in PER_SEED},
    }
    done = {int(seed) for seed in previous.get("test", {})}
    if previous and set(args.seeds) <= done:
        # Nothing to train: leave the file as it is, so that its command and commit stay those of the runs.
        print(f"{args.name}: seeds {args.seeds} already in {target.name}, nothing to train", flush=True)
        return
    result.update(per_seed_entries(previous))
    fingerprint = dataset_fingerprint(dataset)  # the data version each new seed trained on
    for seed in args.seeds:
        if seed in done:
            print(f"{args.name} seed {seed}: already in {target.name}, kept", flush=True)
            continue
        settings = TrainConfig.create(
            data=data,
            output_dir=str(runs_dir / f"seed-{seed}"),
            text_encoder=args.text_encoder,
            image_encoder=args.image_encoder,
            epochs=args.epochs,
            batch_size=args.batch_size,
            patience=args.patience,
            seed=seed,
            beta1=args.beta1,
            beta2=args.beta2,
            learning_rate=args.lr,
            head_learning_rate=args.head_lr,
            final_lr_ratio=args.final_lr_ratio,
            captions=args.captions,
            image_source="captions" if args.captions and not args.variant.startswith("text") else "pixels",
            logvar_head=args.logvar_head,
            initial_logvar=args.initial_logvar,
            kl_warmup_ratio=args.kl_warmup,
            entity_markers=args.entity_markers,
            caption_max_tokens=args.caption_max_tokens,
            score_test_each_epoch=args.score_test_each_epoch,
            threads=args.threads,
            device=args.device,
            precision=args.precision,
            grad_accum=args.grad_accum,
        ).with_overrides(**VARIANTS[args.variant])
        settings = settings.with_dotted(parse_dotted([f"--{setting}" for setting in args.settings]))
        result["hyperparameters"] = {
            k: v
            for k, v in settings.to_dict().items()
            if k not in ("data", "output_dir", "seed", "feature_cache")
        }
        start = time.perf_counter()
        # a seed stopped after an epoch continues from it; any other unfinished seed starts again
        # (the run folder is this script's)
        resume = unfinished_run(settings)
        summary = finished_run(settings) or Trainer(settings, progress=False, overwrite=True).fit(
            resume=resume
        )
        metrics = RunFolder(settings.output_dir).read_metrics()
        dev_line = metrics[summary["best_epoch"] - 1]
        result["dev"][seed] = dev_line["dev"]
        result["dev_curve"][seed] = dev_curve(metrics)
        gap = protocol_gap(metrics, summary["best_epoch"])
        if gap is not None:
            result["protocol_gap"][seed] = gap
        if args.dev_only:
            result["test"][seed] = None
        else:
            test = evaluate_run(settings.output_dir, "test", progress=False)
            result["test"][seed] = {k: test["scores"][k] for k in ("precision", "recall", "f1")}
            if summary.get("captions") and test.get("captions"):
                summary["captions"] = {**summary["captions"], "test": test["captions"]}
            if "per_type" in test["scores"]:
                per_type = test["scores"]["per_type"]
                result["test"][seed]["per_type_f1"] = {t: s["f1"] for t, s in per_type.items()}
        result["best_epoch"][seed] = summary["best_epoch"]
        result["epochs_completed"][seed] = summary["epochs_completed"]
        result["captions_counts"][seed] = summary.get("captions")
        result["train_seconds"][seed] = summary["train_seconds"]
        result["train_samples_per_second"][seed] = summary["train_samples_per_second"]
        result["peak_rss_mb_per_seed"][seed] = summary["peak_rss_mb"]
        result["image_features"][seed] = summary.get("image_features")
        result["seed_commit"][seed] = git_commit()
        result["seed_data"][seed] = fingerprint
        # device, precision, processes and effective batch of the run (runs before they were recorded:
        # one CPU process, fp32, the recipe's batch)
        result["seed_hardware"][seed] = {**hardware(), **summary.get("hardware", legacy_hardware(settings))}
        test_f1 = "not scored (grid point)" if args.dev_only else f"{result['test'][seed]['f1']:.4f}"
        print(
            f"{args.name} seed {seed}: dev F1 {summary['best_dev_f1']:.4f} test F1 {test_f1} "
            f"({time.perf_counter() - start:.0f}s)",
            flush=True,
        )
        write_result(result, previous, target)
    write_result(result, previous, target)
    if "test_mean" in result:
        print(f"{args.name}: test F1 {result['test_mean']:.4f} +- {result['test_std']:.4f} -> {target}")
    else:
        print(f"{args.name}: dev F1 {result['dev_mean']:.4f} (grid point, test not scored) -> {target}")


if __name__ == "__main__":
    main()
