"""The beta sweep of Section V-C (Fig. 4) on the synthetic NER benchmark: three series over the grid
{0, 0.01, 0.1, 0.5, 1.0, 1.5, 2.0}: beta1 = 1 with beta2 swept, beta2 = 1 with beta1 swept, and both equal.

    python benchmarks/beta_sweep.py --size small --seeds 1          # train the missing points, then plot
    python benchmarks/beta_sweep.py --size small --plot-only        # plot what exists

Each (beta1, beta2) point is one result file, benchmarks/results/beta-<size>-b1_<x>-b2_<y>.json, written by
train_eval.py (finished seeds are kept, so the sweep resumes across sessions). Points shared by two series
(e.g. beta1 = beta2 = 1) are trained once. Model selection is on dev; the plot shows test F1 of the selected
checkpoints, like the paper's figure, and the dev F1 is in the JSON beside it.
Writes benchmarks/results/beta_sweep_<size>.json and reports/beta_sweep_<size>.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GRID = [0.0, 0.01, 0.1, 0.5, 1.0, 1.5, 2.0]
SERIES = {
    "beta1 = 1, beta2 swept": lambda b: (1.0, b),
    "beta2 = 1, beta1 swept": lambda b: (b, 1.0),
    "beta1 = beta2": lambda b: (b, b),
}
EPOCHS = {"small": 8, "full": 2}
BATCH = {"small": 8, "full": 16}


def point_name(size: str, beta1: float, beta2: float) -> str:
    return f"beta-{size}-b1_{beta1:g}-b2_{beta2:g}"


def train_points(size: str, seeds: list[int]) -> None:
    points = sorted({make(b) for make in SERIES.values() for b in GRID})
    for number, (beta1, beta2) in enumerate(points, start=1):
        name = point_name(size, beta1, beta2)
        print(f"[{number}/{len(points)}] {name}", flush=True)
        command = [
            sys.executable, "benchmarks/train_eval.py", "--name", name, "--synth", f"ner:{size}",
            "--variant", "mmib", "--beta1", str(beta1), "--beta2", str(beta2), "--seeds", *map(str, seeds),
            "--epochs", str(EPOCHS[size]), "--batch-size", str(BATCH[size]),
        ]  # fmt: skip
        subprocess.run(command, cwd=ROOT, check=True)


def collect(size: str) -> dict:
    table: dict = {}
    for series, make in SERIES.items():
        table[series] = []
        for b in GRID:
            beta1, beta2 = make(b)
            path = RESULTS / f"{point_name(size, beta1, beta2)}.json"
            if not path.exists():
                continue
            result = json.loads(path.read_text())
            seeds = [str(s) for s in result["seeds"]]
            table[series].append(
                {
                    "swept": b,
                    "beta1": beta1,
                    "beta2": beta2,
                    "seeds": len(seeds),
                    "test_f1": 100 * result["test_mean"],
                    "test_std": 100 * result["test_std"],
                    "dev_f1": 100 * statistics.mean(result["dev"][s]["f1"] for s in seeds),
                }
            )
    return table


def references(size: str) -> dict:
    """The default MMIB (beta1 = beta2 = 0.1) and text-only rows of the ablation, when they exist: their seed
    spread shows how much of a single-seed point's movement is noise."""
    found = {}
    for variant in ("mmib", "text-only"):
        path = RESULTS / f"synth-ner-{size}-{variant}.json"
        if path.exists():
            result = json.loads(path.read_text())
            found[variant] = {
                "seeds": len(result["seeds"]),
                "test_f1": 100 * result["test_mean"],
                "test_std": 100 * result["test_std"],
            }
    return found


def plot(table: dict, size: str, path: Path, reference: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.4, 4.2))
    colours = ["#ff7f0e", "#2ca02c", "#1f77b4"]  # the paper's orange, green, blue
    for (series, points), colour in zip(table.items(), colours, strict=True):
        if not points:
            continue
        positions = [GRID.index(p["swept"]) for p in points]
        axis.errorbar(
            positions, [p["test_f1"] for p in points], yerr=[p["test_std"] for p in points],
            marker="o", color=colour, label=series, capsize=3,
        )  # fmt: skip
    if "mmib" in reference:  # the default's mean +- std over seeds: the noise band of a 1-seed point
        mmib = reference["mmib"]
        axis.axhspan(
            mmib["test_f1"] - mmib["test_std"], mmib["test_f1"] + mmib["test_std"], color="grey", alpha=0.2,
            label=f"MMIB default (0.1, 0.1), {mmib['seeds']} seeds: mean +- std",
        )  # fmt: skip
    if "text-only" in reference:
        axis.axhline(
            reference["text-only"]["test_f1"], color="black", linestyle="--", linewidth=1,
            label="text-only (no image branch)",
        )  # fmt: skip
    axis.set_xticks(range(len(GRID)), [f"{b:g}" for b in GRID])
    axis.set_xlabel("swept beta value (evenly spaced grid points)")
    axis.set_ylabel("test F1 (%)")
    axis.set_title(f"MMIB on the synthetic NER benchmark ({size}): F1 against beta1, beta2", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(EPOCHS), default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    if not args.plot_only:
        train_points(args.size, args.seeds)
    table = collect(args.size)
    reference = references(args.size)
    summary = {"series": table, "reference": reference}
    (RESULTS / f"beta_sweep_{args.size}.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(table, args.size, ROOT / "reports" / f"beta_sweep_{args.size}.png", reference)
    print(markdown(table))


def markdown(table: dict) -> str:
    """Test F1 (dev F1 in brackets) per series and swept value, one row per series."""
    lines = ["| series | " + " | ".join(f"{b:g}" for b in GRID) + " | mean |", "|---" * (len(GRID) + 2) + "|"]
    for series, points in table.items():
        by_value = {p["swept"]: p for p in points}
        cells = [
            f"{by_value[b]['test_f1']:.2f} ({by_value[b]['dev_f1']:.2f})" if b in by_value else ""
            for b in GRID
        ]
        mean = f"{statistics.mean(p['test_f1'] for p in points):.2f}" if points else ""
        lines.append(f"| {series} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
