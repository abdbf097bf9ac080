"""Check that a result file's command reproduces it: rerun one seed of its recorded command under a scratch
name and compare the dev F1 (tolerance 0.1 F1 points). Appends the check to
benchmarks/results/reproducibility.json.

    python benchmarks/reproduce.py synth-ner-small-mmib --seed 1
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_eval import git_commit, hardware

from mmib.model.config import SAVED_BEFORE_THE_SETTING, MMIBConfig
from mmib.model.run_folder import TRAIN_SAVED_BEFORE_THE_SETTING
from mmib.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def rerun_command(recorded: str, scratch: str, seed: int) -> list[str]:
    """The recorded train_eval.py command with another --name and only the one seed."""
    words = shlex.split(recorded)[2:]  # drop "python benchmarks/train_eval.py"
    out, index = [], 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--name":
            out += ["--name", scratch]
            index += 1
        elif word == "--seeds":
            out += ["--seeds", str(seed)]
            while index < len(words) and not words[index].startswith("--"):
                index += 1
        else:
            out.append(word)
    return [sys.executable, "benchmarks/train_eval.py", *out]


# Model settings the run fills in from the data and encoders: recorded, never set.
FILLED_BY_THE_RUN = {"task", "labels", "hidden_size", "image_feature_dim"}


def pinned_settings(original: dict) -> list[str]:
    """``--set KEY=VALUE`` for every setting the row recorded, so that a default changed since (length
    bucketing, the evaluation batch) does not change the rerun: settings added after the row was recorded take
    the value earlier runs had (``TRAIN_SAVED_BEFORE_THE_SETTING``). Code changes (an optimiser kernel) cannot
    be pinned. Rows recorded before hyperparameters were written get no pins."""
    recorded = original.get("hyperparameters") or {}
    if not recorded:
        return []
    known = set(TrainConfig.__dataclass_fields__) - {"model", "data", "output_dir", "seed", "feature_cache"}
    values = {key: value for key, value in recorded.items() if key in known}
    values.update({key: old for key, old in TRAIN_SAVED_BEFORE_THE_SETTING.items() if key not in recorded})
    model_known = set(MMIBConfig.__dataclass_fields__) - FILLED_BY_THE_RUN
    model = recorded.get("model") or {}
    values.update({f"model.{key}": value for key, value in model.items() if key in model_known})
    values.update({f"model.{key}": old for key, old in SAVED_BEFORE_THE_SETTING.items() if key not in model})
    pins = []
    for key, value in sorted(values.items()):
        if value is None or isinstance(value, bool | int | float | str):
            pins += ["--set", f"{key}={json.dumps(value)}"]
    return pins


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=0.1, help="F1 points")
    args = parser.parse_args()

    original = json.loads((RESULTS / f"{args.name}.json").read_text())
    scratch = f"_reproduce-{args.name}"
    scratch_file = RESULTS / f"{scratch}.json"
    scratch_file.unlink(missing_ok=True)
    command = rerun_command(original["command"], scratch, args.seed) + pinned_settings(original)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    rerun = json.loads(scratch_file.read_text())
    scratch_file.unlink()
    before = 100 * original["dev"][str(args.seed)]["f1"]
    after = 100 * rerun["dev"][str(args.seed)]["f1"]
    check = {
        "result": args.name,
        "seed": args.seed,
        "command": " ".join(command[1:]),
        "dev_f1_recorded": round(before, 4),
        "dev_f1_rerun": round(after, 4),
        "test_f1_recorded": round(100 * original["test"][str(args.seed)]["f1"], 4),
        "test_f1_rerun": round(100 * rerun["test"][str(args.seed)]["f1"], 4),
        "within_tolerance": abs(before - after) <= args.tolerance,
        "tolerance_f1_points": args.tolerance,
        # files written before train_eval.py recorded a commit per seed have only the file's commit
        "recorded_commit": original.get("seed_commit", {}).get(str(args.seed), original["git_commit"]),
        "rerun_commit": git_commit(),
        "rerun_seconds": round(time.perf_counter() - start, 1),
        # the data each run trained on (files recorded before fingerprints existed have none)
        "data_recorded": original.get("seed_data", {}).get(str(args.seed)),
        "data_rerun": rerun.get("seed_data", {}).get(str(args.seed)),
        "hardware": hardware(),
    }
    log = RESULTS / "reproducibility.json"
    checks = json.loads(log.read_text()) if log.exists() else []
    checks = [c for c in checks if (c["result"], c["seed"]) != (args.name, args.seed)] + [check]
    log.write_text(json.dumps(checks, indent=2) + "\n")
    print(json.dumps(check, indent=2))
    if not check["within_tolerance"]:
        raise SystemExit(f"{args.name} seed {args.seed}: dev F1 {after:.2f} != recorded {before:.2f}")


if __name__ == "__main__":
    main()
