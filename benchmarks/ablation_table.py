"""Markdown ablation tables (the paper's Table V) from the result files that benchmarks/ablations.sh writes.

    python benchmarks/ablation_table.py > reports/ablations.md

Rows: full MMIB, w/o L_rr, w/o L_ar, w/o both, text-only; columns: test P, R, F1 (mean +- std over seeds),
delta F1 against full MMIB, and whether that delta exceeds the seed noise. The rule: |delta| greater than
twice its standard error, 2 * sqrt(s_full^2 / n_full + s_row^2 / n_row) (about a 95 % two-sided band for
the mean difference). A row with a single seed borrows MMIB's seed spread for itself (so "likely" or
"likely not"); with a single MMIB seed the noise is unknown and the row says so.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = [
    ("mmib", "MMIB"),
    ("no-rr", "w/o L_rr"),
    ("no-ar", "w/o L_ar"),
    ("no-rr-no-ar", "w/o L_rr and L_ar"),
    ("text-only", "text-only (no image branch)"),
]
GROUPS = [
    ("Synthetic NER, small (400 train posts)", "synth-ner-small-{}"),
    ("Synthetic NER, full (4000 train posts)", "synth-ner-full-{}"),
    ("Synthetic MRE, full (12247 train instances)", "synth-re-full-{}"),
    ("Twitter-2017 text (no images here)", "twitter2017-{}"),
]


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def seed_values(result: dict, key: str) -> list[float]:
    return [100 * result["test"][str(s)][key] for s in result["seeds"]]


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def table(title: str, pattern: str) -> list[str]:
    full = load(pattern.format("mmib"))
    present = [(variant, label, load(pattern.format(variant))) for variant, label in ROWS]
    present = [(v, label, r) for v, label, r in present if r is not None]
    if not present:
        return []
    lines = [
        f"### {title}",
        "",
        "| variant | seeds | P | R | F1 (mean +- std) | delta F1 vs MMIB | beyond seed noise? |",
        "|---|---|---|---|---|---|---|",
    ]
    full_f1 = seed_values(full, "f1") if full else []
    for variant, label, result in present:
        f1 = seed_values(result, "f1")
        cells = [
            label,
            str(len(f1)),
            f"{statistics.mean(seed_values(result, 'precision')):.2f}",
            f"{statistics.mean(seed_values(result, 'recall')):.2f}",
            f"{statistics.mean(f1):.2f} +- {spread(f1):.2f}" if len(f1) > 1 else f"{f1[0]:.2f}",
        ]
        if variant == "mmib" or not full_f1:
            cells += ["", ""]
        else:
            delta = statistics.mean(f1) - statistics.mean(full_f1)
            if len(f1) > 1 and len(full_f1) > 1:
                band = 2 * math.sqrt(spread(full_f1) ** 2 / len(full_f1) + spread(f1) ** 2 / len(f1))
                verdict = f"{'yes' if abs(delta) > band else 'no'} (band {band:.2f})"
            elif len(full_f1) > 1:  # one seed of the row: borrow MMIB's spread for it
                band = 2 * spread(full_f1) * math.sqrt(1 / len(full_f1) + 1)
                verdict = f"{'likely' if abs(delta) > band else 'likely not'} (1 seed; band {band:.2f})"
            else:
                verdict = "unknown (1 seed)"
            cells += [f"{delta:+.2f}", verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> None:
    print("## Ablations (Table V)\n")
    print(
        "Produced by `bash benchmarks/ablations.sh` then `python benchmarks/ablation_table.py`; test scores of"
    )
    print("the best-dev checkpoint per seed. " + __doc__.split("\n\n")[2].replace("\n", " ") + "\n")
    for title, pattern in GROUPS:
        for line in table(title, pattern):
            print(line)


if __name__ == "__main__":
    main()
