"""Does the model use the image? `mmib analyze image-use` over every seed of a benchmark's MMIB runs, averaged.

    python benchmarks/image_use.py synth-ner-small-mmib synth-ner-full-mmib

For each result name, the seed runs under runs/bench/<name>/seed-*/ are scored on test with true, shuffled
and removed images; writes benchmarks/results/image_use.json and prints a markdown table (mean +- std of F1
over seeds, per generator category).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mmib.analysis.image_use import CAPTION_CATEGORY_NAMES, CATEGORY_NAMES, CONDITIONS, run_image_use

ROOT = Path(__file__).resolve().parents[1]


def fmt(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    return f"{mean:.2f} +- {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+")
    parser.add_argument("--shuffle-seed", type=int, default=0)
    parser.add_argument(
        "--top-types", type=int, default=None, help="per-type rows for the N most frequent gold types only"
    )
    parser.add_argument(
        "--run-root", type=Path, default=ROOT / "runs" / "bench", help="folder of <name>/seed-*"
    )
    args = parser.parse_args()
    target = ROOT / "benchmarks" / "results" / "image_use.json"
    stored = json.loads(target.read_text()) if target.exists() else {}
    for name in args.names:
        runs = sorted((args.run_root / name).glob("seed-*"))
        if not runs:
            raise SystemExit(f"no runs under {args.run_root / name}: run benchmarks/train_eval.py first")
        reports = {run.name: run_image_use(run, "test", args.shuffle_seed, progress=False) for run in runs}
        stored[name] = {"shuffle_seed": args.shuffle_seed, "seeds": reports}
        seeds = f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
        print(f"### {name}: test F1 with true, shuffled and removed images ({seeds})\n")
        print("| instances | n | true images | shuffled | removed | drop shuffled | drop removed |")
        print("|---|---|---|---|---|---|---|")
        names = {**CATEGORY_NAMES, **CAPTION_CATEGORY_NAMES}
        first = next(iter(reports.values()))["true"]
        support = first["all"].get("per_type_support") or dict.fromkeys(
            first["all"].get("per_type_f1", {}), 0
        )
        types = sorted(support, key=lambda t: (-support[t], t))[: args.top_types]
        rows = [(c, names.get(c, "all"), None) for c in ("all", *names) if c in first]
        rows += [("all", f"type {t}", t) for t in types]  # per entity type, over all posts
        for category, label, entity_type in rows:

            def f1(report: dict, condition: str, category=category, entity_type=entity_type) -> float:
                part = report[condition][category]
                return part["f1"] if entity_type is None else part["per_type_f1"].get(entity_type, 0.0)

            values = {c: [f1(r, c) for r in reports.values()] for c in CONDITIONS}
            drops = {
                c: [t - o for t, o in zip(values["true"], values[c], strict=True)]
                for c in ("shuffled", "removed")
            }
            n = first[category]["instances"] if entity_type is None else "-"
            print(
                f"| {label} | {n} | {fmt(values['true'])} | {fmt(values['shuffled'])} | "
                f"{fmt(values['removed'])} | {fmt(drops['shuffled'])} | {fmt(drops['removed'])} |"
            )
        print()
    target.write_text(json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
