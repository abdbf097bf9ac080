"""The dev-only learning-rate grid: which encoder learning rate a real-benchmark recipe uses.

    python benchmarks/lr_grid.py twitter2017-text-only            # table of the grid points, then the choice
    python benchmarks/lr_grid.py twitter2017-text-only --choice   # the chosen learning rate alone

Each grid point is a result file ``benchmarks/results/grid-<NAME>-lr<LR>.json`` written by
``train_eval.py --dev-only`` (dev figures only: test is never scored on a grid point). The choice is the
point with the best mean dev F1; its run folder is then scored on test once, by ``train_eval.py`` with the
same settings (see benchmarks/real_captions.sh).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# The grids a script runs point by point across sessions (benchmarks/mpnet.sh reads its list from here): until
# every planned point is recorded the table says "best so far" and --choice refuses, so no row is trained on a
# rate chosen from part of its grid.
PLANNED = {"twitter2017-mpnet-text-only": ("2e-5", "3e-5", "5e-5")}


def grid_points(name: str) -> dict[str, dict]:
    points = {}
    for path in sorted(RESULTS.glob(f"grid-{name}-lr*.json")):
        result = json.loads(path.read_text())
        points[path.stem.rsplit("-lr", 1)[1]] = result
    if not points:
        raise SystemExit(f"no grid points for {name} in {RESULTS} (grid-{name}-lr*.json)")
    return points


def missing(name: str, points: dict[str, dict]) -> list[str]:
    """The planned learning rates with no recorded grid point yet (none for grids without a plan)."""
    return [lr for lr in PLANNED.get(name, ()) if lr not in points]


def choose(points: dict[str, dict]) -> str:
    return max(points, key=lambda lr: points[lr]["dev_mean"])


def table(name: str, points: dict[str, dict]) -> str:
    not_run = missing(name, points)
    status = f"; incomplete, not yet run: {', '.join(not_run)}" if not_run else ""
    lines = [
        f"Grid for {name} (dev only; test never scored on a grid point{status}):",
        "",
        "| encoder lr | head lr | seeds | dev F1 | best epoch / epochs run | chosen |",
        "|---|---|---|---|---|---|",
    ]
    chosen = choose(points)
    mark = "best so far" if not_run else "yes"
    for lr, result in sorted(points.items(), key=lambda kv: float(kv[0])):
        seeds = [str(s) for s in result["seeds"]]
        epochs = ", ".join(f"{result['best_epoch'][s]}/{result['epochs_completed'][s]}" for s in seeds)
        if any(result["best_epoch"][s] == result["epochs_completed"][s] for s in seeds):
            epochs += " (last: dev still rising)"
        lines.append(
            f"| {lr} | {result['hyperparameters']['head_learning_rate']} | {len(seeds)} | "
            f"{100 * result['dev_mean']:.2f} | {epochs} | {mark if lr == chosen else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="e.g. twitter2017-text-only")
    parser.add_argument("--choice", action="store_true", help="print the chosen learning rate only")
    parser.add_argument("--planned", action="store_true", help="print the planned learning rates only")
    args = parser.parse_args()
    if args.planned:
        print(" ".join(PLANNED[args.name]))
        return
    points = grid_points(args.name)
    if args.choice and missing(args.name, points):
        raise SystemExit(
            f"{args.name}: grid incomplete, not yet run: {', '.join(missing(args.name, points))}"
        )
    print(choose(points) if args.choice else table(args.name, points))


if __name__ == "__main__":
    main()
