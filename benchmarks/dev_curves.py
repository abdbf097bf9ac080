"""Add each seed's dev F1 per epoch (``dev_curve``) to a result file written before train_eval.py recorded it.

    python benchmarks/dev_curves.py grid-twitter2017-mpnet-text-only-lr3e-5 \
        --run-root ~/mmib-runs/grid/twitter2017-mpnet-text-only-lr3e-5

Reads ``RUN_ROOT/seed-N/metrics.jsonl`` for every seed of ``benchmarks/results/NAME.json`` (the run folders the
result was made from) and refuses a folder that cannot be that seed's run: another epoch count, or a dev F1 at
the recorded best epoch other than the recorded one. Nothing else in the file changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from train_eval import dev_curve

from mmib.model.run_folder import RunFolder

RESULTS = Path(__file__).resolve().parent / "results"


def seed_curve(result: dict, seed: str, run_dir: Path) -> list[float]:
    """The seed's dev curve from its run folder, checked against what the result file recorded."""
    folder = RunFolder(run_dir)
    curve = dev_curve(folder.read_metrics())
    epochs, best = result["epochs_completed"][seed], result["best_epoch"][seed]
    if len(curve) != epochs:
        raise SystemExit(f"{folder.metrics}: {len(curve)} epochs, the result file says {epochs}")
    if abs(curve[best - 1] - result["dev"][seed]["f1"]) > 1e-9:
        raise SystemExit(
            f"{run_dir}: dev F1 {curve[best - 1]:.4f} at epoch {best}, the result file says "
            f"{result['dev'][seed]['f1']:.4f} (not this seed's run)"
        )
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="result file name without .json")
    parser.add_argument("--run-root", type=Path, required=True, help="folder holding seed-N/ of each seed")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    if not path.exists():
        raise SystemExit(f"{path}: no such result file")
    result = json.loads(path.read_text())
    seeds = [str(seed) for seed in result["seeds"]]
    result["dev_curve"] = {seed: seed_curve(result, seed, args.run_root / f"seed-{seed}") for seed in seeds}
    path.write_text(json.dumps(result, indent=2) + "\n")
    for seed, curve in result["dev_curve"].items():
        print(f"{args.name} seed {seed}: dev F1 " + " ".join(f"{100 * f:.2f}" for f in curve))


if __name__ == "__main__":
    main()
