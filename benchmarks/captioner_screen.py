"""Which captioner MNRE reads by default, chosen on dev only: the text + caption pair baseline (entity
markers, seed 1, a shortened 2-epoch budget) trained once per captioner.

    python benchmarks/captioner_screen.py            # table of the screened captioners, then the choice
    python benchmarks/captioner_screen.py --choice   # the chosen captioner's caption file alone

Each screen point is ``benchmarks/results/screen-mnre-pair-<CAPTIONER>.json``, written by
``train_eval.py --dev-only`` (test is never scored on a screen point; benchmarks/mnre_captions.sh).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CAPTIONERS = ("blip2", "instructblip", "qwen", "cogvlm")


def screen_points() -> dict[str, dict]:
    points = {}
    for captioner in CAPTIONERS:
        path = RESULTS / f"screen-mnre-pair-{captioner}.json"
        if path.exists():
            points[captioner] = json.loads(path.read_text())
    if not points:
        raise SystemExit(f"no screen points in {RESULTS} (screen-mnre-pair-*.json)")
    return points


def choose(points: dict[str, dict]) -> str:
    return max(points, key=lambda captioner: points[captioner]["dev_mean"])


def table(points: dict[str, dict]) -> str:
    chosen = choose(points)
    lines = [
        "MNRE captioner screen (text + caption pair, entity markers, seed 1, 2 epochs; dev only):",
        "",
        "| captioner | dev F1 | best epoch / epochs run | captions used / absent (train) | samples/s | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for captioner, result in points.items():
        seed = str(result["seeds"][0])
        counts = result["captions_counts"][seed]["train"]
        lines.append(
            f"| {captioner} | {100 * result['dev_mean']:.2f} | {result['best_epoch'][seed]}/"
            f"{result['epochs_completed'][seed]} | {counts.split(': ', 1)[1]} | "
            f"{result['train_samples_per_second'][seed]} | {'yes' if captioner == chosen else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--choice", action="store_true", help="print the chosen caption file only")
    args = parser.parse_args()
    points = screen_points()
    print(points[choose(points)]["captions"] if args.choice else table(points))


if __name__ == "__main__":
    main()
