"""Error analysis (Section V-E): the most frequent confusions of a run and a sample of wrong predictions,
with each post's image path, as markdown.

MNER errors are classified per span: a wrong type on the right words (``type GOLD -> PRED``), wrong
boundaries (``boundary GOLD``), a gold entity with no overlapping prediction (``missed GOLD``), and a
prediction overlapping no gold entity (``spurious PRED``). MRE errors are (gold, predicted) relation pairs.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from mmib.data.discover import load_dataset
from mmib.data.images import ImageStore
from mmib.metrics import extract_spans
from mmib.model.config import MMIBConfig
from mmib.model.run_folder import RunFolder
from mmib.processing.task import NerTask, task_for
from mmib.spans import Span
from mmib.training.config import TrainConfig


def read_conll_predictions(path: Path) -> list[dict]:
    """Posts of a predictions file written by ``mmib evaluate``: image id, tokens, gold and predicted tags."""
    posts, current = [], {"image_id": None, "tokens": [], "gold": [], "pred": []}
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("IMGID:"):
            current["image_id"] = line[6:].strip()
        elif line.strip():
            token, gold, pred = line.split("\t")
            current["tokens"].append(token)
            current["gold"].append(gold)
            current["pred"].append(pred)
        elif current["tokens"]:
            posts.append(current)
            current = {"image_id": None, "tokens": [], "gold": [], "pred": []}
    return posts


def _overlaps(a: Span, b: Span) -> bool:
    return a.first < b.last and b.first < a.last


def span_errors(gold_tags: list[str], pred_tags: list[str]) -> list[str]:
    gold, pred = set(extract_spans(gold_tags)), set(extract_spans(pred_tags))
    errors = []
    for span in sorted(gold - pred, key=lambda s: s.first):
        same_words = [p for p in pred if p.words == span.words]
        if same_words:
            errors.append(f"type {span.type} -> {same_words[0].type}")
        elif any(_overlaps(span, p) for p in pred):
            errors.append(f"boundary {span.type}")
        else:
            errors.append(f"missed {span.type}")
    for span in sorted(pred - gold, key=lambda s: s.first):
        if not any(_overlaps(span, g) for g in gold):
            errors.append(f"spurious {span.type}")
    return errors


def _markup(tokens: list[str], tags: list[str]) -> str:
    words = list(tokens)
    for span in extract_spans(tags):
        words[span.first] = "[" + words[span.first]
        words[span.last - 1] = words[span.last - 1] + f"]{span.type}"
    return " ".join(words)


def _span_errors(predictions: Path, image_of, sample: int, seed: int, top: int) -> list[str]:
    """MNER: the most frequent span errors, then a sample of wrong posts."""
    posts = read_conll_predictions(predictions)
    per_post = [span_errors(p["gold"], p["pred"]) for p in posts]
    counts = Counter(e for errors in per_post for e in errors)
    gold_total = sum(len(extract_spans(p["gold"])) for p in posts)
    lines = [
        f"{len(posts)} posts, {gold_total} gold entities, {sum(counts.values())} span errors "
        f"in {sum(bool(e) for e in per_post)} posts.",
        "",
        "| error | count |",
        "|---|---|",
        *[f"| {kind} | {n} |" for kind, n in counts.most_common(top)],
        "",
    ]
    if sample:
        lines += [f"### A sample of {sample} wrong posts (seed {seed})", ""]
    wrong = [i for i, e in enumerate(per_post) if e]
    for i in sorted(random.Random(seed).sample(wrong, min(sample, len(wrong)))):
        post = posts[i]
        lines += [
            f"- **gold**: {_markup(post['tokens'], post['gold'])}  ",
            f"  **predicted**: {_markup(post['tokens'], post['pred'])}  ",
            f"  errors: {', '.join(per_post[i])}; image: `{image_of(post['image_id'])}`",
        ]
    return lines


def _relation_errors(predictions: Path, image_of, sample: int, seed: int, top: int) -> list[str]:
    """MRE: the most frequent (gold, predicted) confusions, then a sample of wrong instances."""
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    counts = Counter((r["relation"], r["predicted"]) for r in rows if r["relation"] != r["predicted"])
    lines = [
        f"{len(rows)} instances, {sum(counts.values())} wrong.",
        "",
        "| gold | predicted | count |",
        "|---|---|---|",
        *[f"| {gold} | {pred} | {n} |" for (gold, pred), n in counts.most_common(top)],
        "",
    ]
    if sample:
        lines += [f"### A sample of {sample} wrong instances (seed {seed})", ""]
    wrong = [r for r in rows if r["relation"] != r["predicted"]]
    for row in random.Random(seed).sample(wrong, min(sample, len(wrong))):
        tokens = row["token"]
        head = " ".join(tokens[row["h"][0] : row["h"][1]])
        tail = " ".join(tokens[row["t"][0] : row["t"][1]])
        lines.append(
            f"- {' '.join(tokens)}  \n  ({head}, {tail}): gold **{row['relation']}**, predicted "
            f"**{row['predicted']}**; image: `{image_of(row['img_id'])}`"
        )
    return lines


def error_report(run_dir: Path, split: str = "test", sample: int = 15, seed: int = 0, top: int = 15) -> str:
    run_dir = Path(run_dir)
    run = RunFolder(run_dir).require(training_config=True)
    train = TrainConfig.from_dict(run.read_train_config())
    task = task_for(MMIBConfig.load(run.model_config))
    predictions = run.predictions(split, task)
    if not predictions.exists():
        from mmib.training.evaluate_run import evaluate_run

        evaluate_run(run_dir, split, progress=False)
    dataset = load_dataset(train.data, image_root=train.images)
    store = ImageStore.discover(dataset.image_root, split, max_crops=0) if dataset.image_root else None

    def image_of(image_id: str | None) -> str:
        path = store.image_path(image_id) if store is not None and image_id else None
        if path is None or not path.exists():
            return "(no image)"
        return (
            str(path.resolve().relative_to(Path.cwd()))
            if path.resolve().is_relative_to(Path.cwd())
            else str(path)
        )

    lines = [f"## Errors of `{run_dir}` on {split}", ""]
    report = _span_errors if isinstance(task, NerTask) else _relation_errors
    lines += report(predictions, image_of, sample, seed, top)
    return "\n".join(lines) + "\n"
