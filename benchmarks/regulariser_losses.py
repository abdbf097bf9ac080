"""The regularisers' loss parts per epoch, beside the data's L_ar ceiling, for benchmark rows.

    python benchmarks/regulariser_losses.py synth-ner-full-bilinear synth-ner-full-first-pooling \
        --run-root ~/mmib-runs/bench

For each result name, every seed run under <run-root>/<name>/seed-*/ that its result file records as finished
is read (a seed still training is skipped, and said so) (`mmib analyze curves` reads
the same `metrics.jsonl`): the training L_ar (unweighted binary cross-entropy of eq. 25, comparable with
ln 2 and with the ceiling) and the weighted refinement KL (eqs. 20-21) per epoch, and, for synthetic data,
the lowest L_ar any discriminator can reach on it (`mmib.data.synth.ceiling`). Merges into
benchmarks/results/regulariser_losses.json (one entry per name, with its command and commit) and prints a
markdown table. The result files of train_eval.py keep F1 only; this is where the loss parts are recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from train_eval import git_commit

from mmib.analysis.training_curves import read_curve
from mmib.data.synth.ceiling import DEFAULT_POSTS

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "benchmarks" / "results" / "regulariser_losses.json"


def seed_losses(run_dir: Path, ceiling_posts: int) -> tuple[dict, float | None]:
    """One seed's loss parts by epoch (None where the run has no such part) and its data's L_ar ceiling."""
    curve = read_curve(run_dir, ceiling_posts)

    def by_epoch(part: str) -> list[float] | None:
        values = curve.losses.get(part)
        return None if values is None else [round(v, 6) for v in values]

    losses = {
        "epochs": curve.epochs,
        "alignment_by_epoch": by_epoch("alignment"),
        "refinement_by_epoch": by_epoch("refinement"),
    }
    return losses, curve.alignment_ceiling


def finished_seeds(name: str) -> set[str] | None:
    """The seeds benchmarks/results/<name>.json holds (trained and scored); None without a result file."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    return None if not path.exists() else {str(seed) for seed in json.loads(path.read_text()).get("dev", {})}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+")
    parser.add_argument(
        "--run-root", type=Path, default=ROOT / "runs" / "bench", help="folder of <name>/seed-*"
    )
    parser.add_argument("--ceiling-posts", type=int, default=DEFAULT_POSTS)
    args = parser.parse_args()
    stored = json.loads(TARGET.read_text()) if TARGET.exists() else {}
    print("| result | seed | L_ar by epoch | L_ar ceiling | last above ceiling | refinement KL by epoch |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        runs = sorted((args.run_root / name).glob("seed-*"))
        finished = finished_seeds(name)
        if finished is not None:
            unfinished = [run.name for run in runs if run.name.removeprefix("seed-") not in finished]
            if unfinished:
                print(f"{name}: skipped {', '.join(unfinished)}, not in its result file yet", file=sys.stderr)
            runs = [run for run in runs if run.name.removeprefix("seed-") in finished]
        if not runs:
            raise SystemExit(
                f"no finished runs under {args.run_root / name}: run benchmarks/train_eval.py first"
            )
        seeds, ceilings = {}, set()
        for run in runs:
            seeds[run.name.removeprefix("seed-")], ceiling = seed_losses(run, args.ceiling_posts)
            ceilings.add(ceiling)
        ceiling = ceilings.pop() if len(ceilings) == 1 else None  # one dataset per result name
        stored[name] = {
            "alignment_ceiling": None if ceiling is None else round(ceiling, 6),
            "ln2": round(math.log(2), 6),
            "seeds": seeds,
            "command": "python " + " ".join(sys.argv),
            "git_commit": git_commit(),
        }
        for seed, losses in seeds.items():
            alignment = losses["alignment_by_epoch"]
            above = "" if not alignment or ceiling is None else f"{alignment[-1] - ceiling:+.4f}"
            print(
                f"| {name} | {seed} | {_join(alignment)} | {'' if ceiling is None else f'{ceiling:.4f}'} | "
                f"{above} | {_join(losses['refinement_by_epoch'])} |"
            )
    TARGET.write_text(json.dumps(stored, indent=2) + "\n")


def _join(values: list[float] | None) -> str:
    return "" if not values else ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
