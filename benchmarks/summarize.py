"""Markdown table of every result file in benchmarks/results (the README's Results table).

python benchmarks/summarize.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Published test F1 for comparison (Cui et al. 2024, Tables III-IV; text-only NER rows: BERT-base CRF
# baselines as the model issue quotes them; text-only MRE: MTB, the BERT-based text-only RE row of Table IV).
PUBLISHED = {
    ("twitter2015", "text-only"): 71.81,
    ("twitter2017", "text-only"): 83.44,
    ("twitter2015", "mmib"): 76.02,
    ("twitter2017", "mmib"): 87.60,
    ("mnre", "text-only"): 60.86,
    ("mnre", "mmib"): 83.23,
}


def seed_mean(result: dict, part: str, key: str) -> float:
    seeds = [str(s) for s in result["seeds"]]
    return sum(result[part][s][key] for s in seeds) / len(seeds)


def rows() -> list[str]:
    lines = [
        "| result | task | variant | text encoder | seeds | test P | test R | test F1 (mean +- std) | dev F1 | "
        "published F1 | train samples/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        if "test_mean" not in result or path.stem.startswith("beta-"):  # the beta sweep has its own figure
            continue
        seeds = [str(s) for s in result["seeds"]]
        dataset = next((d for d in ("twitter2015", "twitter2017", "mnre") if d in result["dataset"]), None)
        published = PUBLISHED.get((dataset, result["variant"]), "")
        speed = sorted(result["train_samples_per_second"][s] for s in seeds)[-1]
        lines.append(
            f"| {path.stem} | {result['task']} | {result['variant']} | {result['text_encoder']} | {len(seeds)} | "
            f"{100 * seed_mean(result, 'test', 'precision'):.2f} | {100 * seed_mean(result, 'test', 'recall'):.2f} | "
            f"{100 * result['test_mean']:.2f} +- {100 * result['test_std']:.2f} | {100 * seed_mean(result, 'dev', 'f1'):.2f} | "
            f"{published} | {speed} | {result['peak_rss_mb']:.0f} |"
        )
    return lines


def throughput_rows() -> list[str]:
    path = RESULTS / "throughput.json"
    if not path.exists():
        return []
    lines = [
        "| text encoder | variant | parameters (M) | train samples/s (batch 8) | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for row in json.loads(path.read_text())["rows"]:
        lines.append(
            f"| {row['text_encoder']} | {row['variant']} | {row['parameters_millions']} | "
            f"{row['train_samples_per_second']} | {row['peak_rss_mb']:.0f} |"
        )
    return lines


def latency_rows() -> list[str]:
    path = RESULTS / "prediction_latency.json"
    if not path.exists():
        return []
    result = json.loads(path.read_text())
    lines = [
        f"Prediction on new posts (`benchmarks/prediction_latency.py`, run `{result['run']}`, {result['posts']} "
        f"test posts, {result['posts_with_image']} with an image; detector alone p50 {result['detector_only_ms_p50']} ms):",
        "",
        "| detector | single post p50 ms | single post p95 ms | batched posts/s (batch size) |",
        "|---|---|---|---|",
    ]
    for key, label in (("with_detector", "SSD-MobileNetV2"), ("without_detector", "none (whole image)")):
        row = result[key]
        lines.append(
            f"| {label} | {row['single_post_ms_p50']} | {row['single_post_ms_p95']} | "
            f"{row['batched_posts_per_second']} ({row['batch_size']}) |"
        )
    return lines


def reproducibility_rows() -> list[str]:
    """The latest check of each result file (benchmarks/reproduce.py appends one per rerun)."""
    path = RESULTS / "reproducibility.json"
    if not path.exists():
        return []
    latest = {check["result"]: check for check in json.loads(path.read_text())}
    lines = [
        "Reruns of a recorded command (`python benchmarks/reproduce.py RESULT --seed N`, same machine type):",
        "",
        "| result | seed | dev F1 recorded | dev F1 rerun | test F1 recorded | test F1 rerun | within 0.1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, check in sorted(latest.items()):
        lines.append(
            f"| {name} | {check['seed']} | {check['dev_f1_recorded']} | {check['dev_f1_rerun']} | "
            f"{check['test_f1_recorded']} | {check['test_f1_rerun']} | {'yes' if check['within_tolerance'] else 'NO'} |"
        )
    return lines


def main() -> None:
    parts = [rows(), throughput_rows(), latency_rows(), reproducibility_rows()]
    text = "\n\n".join("\n".join(part) for part in parts if part)
    if "--write-readme" in sys.argv:
        readme = RESULTS.parents[1] / "README.md"
        content = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        head, rest = content.split(start)
        _, tail = rest.split(end)
        readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")
    print(text)


if __name__ == "__main__":
    main()
