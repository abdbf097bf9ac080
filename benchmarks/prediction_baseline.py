"""Prediction speed against an earlier commit's, on the same machine in the same run: batched posts/s of
``Extractor.analyze_many`` at commit ``--baseline`` and at this checkout (PyTorch and ONNX Runtime), with and
without the object detector, on the same run folder and posts. Writes
benchmarks/results/prediction_baseline.json.

    python benchmarks/prediction_baseline.py runs/bench/_reproduce-synth-ner-small-mmib/seed-1 \
        --data runs/data/synth-ner-small-seed13 --baseline 16fa3c4 --rounds 2 --repeats 3

Why: a speed-up quoted against figures measured on another day's machine mixes the code's gain with the
machine's; timings on these VMs differ by half between days. The baseline runs from a git worktree at its
commit, each side in its own process, the sides alternating ``--rounds`` times so a slow spell falls on all
of them; every figure is the median of the passes. The baseline side runs as its commit ran (no OpenMP wait
policy set); this checkout runs as ``mmib predict`` does (``OMP_WAIT_POLICY=PASSIVE``). Where the baseline's
model config lacks a setting this checkout saved (``logvar_head``...), the run is copied for it without that
setting, and only when the saved value is what the baseline always did.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"with_detector": "default", "without_detector": None}
# settings saved by later commits, with the value that reproduces what earlier code always did
EARLIER_BEHAVIOUR = {
    "image_source": "pixels",
    "caption_encoder": None,  # unused by pixel runs
    "caption_pair": False,
    "logvar_head": "apenc",
    "initial_logvar": None,  # unused by the apenc head
    "entity_markers": False,
}


def worker(run: str, posts_file: str, runtime: str, repeats: int) -> None:
    """In the side's own process (its PYTHONPATH picks the code): prints the posts/s of each timed pass."""
    import time

    from mmib.predict import Extractor

    posts = [(text, image) for text, image in json.loads(Path(posts_file).read_text())]
    timings = {}
    for name, detector in SETTINGS.items():
        options = {"runtime": runtime} if runtime != "torch" else {}  # the baseline has no runtime option
        extractor = Extractor.load(run, detector=detector, batch_size=16, **options)
        extractor.analyze_many(posts[:16])  # warm-up: first calls allocate and pick kernels
        timings[name] = []
        for _ in range(repeats):
            start = time.perf_counter()
            extractor.analyze_many(posts)
            timings[name].append(len(posts) / (time.perf_counter() - start))
    print(json.dumps(timings))


def compatible_run(run: Path, baseline_src: Path, scratch: Path) -> Path:
    """``run`` itself, or a copy whose model config holds only the settings the baseline's MMIBConfig has."""
    probe = "import dataclasses, json; from mmib.model.config import MMIBConfig; "
    probe += "print(json.dumps([f.name for f in dataclasses.fields(MMIBConfig)]))"
    environment = os.environ | {"PYTHONPATH": str(baseline_src)}
    known = set(json.loads(subprocess.check_output([sys.executable, "-c", probe], env=environment)))
    from mmib.model.run_folder import RunFolder  # this checkout's; the baseline names the file alike

    config_path = RunFolder(run).model_config
    config = json.loads(config_path.read_text())
    extra = {key: value for key, value in config.items() if key not in known}
    if not extra:
        return run
    changed = {
        key: value
        for key, value in extra.items()
        if key not in EARLIER_BEHAVIOUR
        or (EARLIER_BEHAVIOUR[key] is not None and value != EARLIER_BEHAVIOUR[key])
    }
    if changed:
        raise SystemExit(f"{run}: the baseline cannot run this model, it was saved with {changed}")
    copy = scratch / "run"
    copy.mkdir()
    for item in run.iterdir():
        if item != config_path:
            (copy / item.name).symlink_to(item.resolve())
    kept = {key: value for key, value in config.items() if key in known}
    RunFolder(copy).model_config.write_text(json.dumps(kept, indent=2))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--baseline", default="16fa3c4", help="the commit to compare with")
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="times each side runs, alternating")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per side and round")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "prediction_baseline.json"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from prediction_latency import test_posts
    from train_eval import git_commit, hardware

    from mmib.model.run_folder import RunFolder
    from mmib.predict.onnx_runtime import export_run

    if not RunFolder(args.run_dir).onnx_text_encoder.is_file():
        export_run(args.run_dir)
    baseline = subprocess.check_output(["git", "rev-parse", args.baseline], cwd=ROOT, text=True).strip()
    with tempfile.TemporaryDirectory(prefix="mmib-baseline-") as scratch:
        scratch = Path(scratch)
        tree = scratch / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), baseline], cwd=ROOT, check=True)
        try:
            posts_file = scratch / "posts.json"
            posts = [(text, image and str(image)) for text, image in test_posts(args.data, args.posts)]
            posts_file.write_text(json.dumps(posts))
            baseline_run = compatible_run(args.run_dir.resolve(), tree / "src", scratch)
            plain = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            current = plain | {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT / "src")}
            sides = {
                f"baseline {baseline[:7]} (torch)": (
                    baseline_run,
                    "torch",
                    plain | {"PYTHONPATH": str(tree / "src")},
                ),
                "this checkout (torch)": (args.run_dir.resolve(), "torch", current),
                "this checkout (onnx)": (args.run_dir.resolve(), "onnx", current),
            }
            passes = {side: {name: [] for name in SETTINGS} for side in sides}
            for round_number in range(args.rounds):
                for side, (run, runtime, environment) in sides.items():
                    command = [sys.executable, __file__, "--worker", str(run), str(posts_file), runtime]
                    output = subprocess.check_output(
                        [*command, str(args.repeats)], env=environment, text=True, cwd=scratch
                    )
                    measured = json.loads(output.strip().splitlines()[-1])
                    for name in SETTINGS:
                        passes[side][name] += measured[name]
                    print(f"round {round_number + 1}: {side}: {measured}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
            shutil.rmtree(tree, ignore_errors=True)
    base = next(iter(sides))
    result = {
        "run": str(args.run_dir),
        "data": str(args.data),
        "posts": args.posts,
        "baseline_commit": baseline,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "posts_per_second": {
            side: {name: round(statistics.median(values), 2) for name, values in found.items()}
            for side, found in passes.items()
        },
        "passes": {
            side: {name: [round(v, 2) for v in values] for name, values in found.items()}
            for side, found in passes.items()
        },
        "command": " ".join(["python", *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    result["speedup_over_baseline"] = {
        side: {
            name: round(result["posts_per_second"][side][name] / result["posts_per_second"][base][name], 2)
            for name in SETTINGS
        }
        for side in sides
        if side != base
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["posts_per_second"], indent=2), json.dumps(result["speedup_over_baseline"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
