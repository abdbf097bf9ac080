"""`mmib evaluate RUN_DIR --split test`: score the best checkpoint of a run once on a split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmib.data.discover import Dataset, load_dataset
from mmib.errors import SettingError
from mmib.model.mmib import MMIBModel, from_pretrained
from mmib.model.run_folder import RunFolder
from mmib.processing import ImageSide, cached_image_side
from mmib.training.batching import Collator, PreparedSplit, prepare_split
from mmib.training.config import TrainConfig
from mmib.training.evaluation import predict_split


@dataclass
class RunSplit:
    """A run's best model with one split of its dataset, prepared (image features fetched) for batching."""

    run_dir: Path
    model: MMIBModel
    train: TrainConfig
    dataset: Dataset
    prepared: PreparedSplit
    collator: Collator
    image_side: ImageSide


def open_run_split(
    run_dir: Path | str, split: str = "test", data: str | None = None, progress: bool = True
) -> RunSplit:
    run_dir = Path(run_dir)
    run = RunFolder(run_dir).require(training_config=True)
    train = TrainConfig.from_dict(run.read_train_config())
    dataset = load_dataset(data or train.data, image_root=train.images)
    if split not in dataset.splits:  # checked before the model loads: a typo costs no waiting
        raise SettingError(f"{dataset.path} has no {split!r} split (has {', '.join(dataset.splits)})")
    model, tokenizer = from_pretrained(run_dir)
    config = model.config
    side = cached_image_side(config, train.captions, train.feature_cache)
    prepared = prepare_split(dataset, split, side, progress)
    return RunSplit(run_dir, model, train, dataset, prepared, Collator.for_model(tokenizer, config), side)


def evaluate_run(
    run_dir: Path | str, split: str = "test", data: str | None = None, progress: bool = True
) -> dict:
    """Scores of the best checkpoint on ``split``; writes predictions and scores into the run folder."""
    opened = open_run_split(run_dir, split, data, progress)
    config, task = opened.model.config, opened.collator.task
    predictions = predict_split(opened.model, opened.collator, opened.prepared, opened.train.eval_batch_size)
    scores = task.score(opened.prepared.records, predictions)
    run = RunFolder(opened.run_dir)
    result = {"split": split, "variant": config.variant, "scores": scores}
    report = opened.image_side.report()
    if "image_features" in report:
        result["image_features"] = str(report["image_features"])
    if "captions" in report:
        result["captions"] = report["captions"][split]
    try:  # a read-only run folder (shared, archived) still gets its scores printed
        task.write_predictions(opened.prepared.records, predictions, run.predictions(split, task))
        run.write_json(run.scores(split), result)
    except OSError as error:
        result["not_saved"] = f"{run}: predictions and scores not saved ({error.strerror or error})"
    return result


def format_scores(result: dict) -> str:
    scores = result["scores"]
    lines = [
        f"{result['variant']} on {result['split']}",
        f"  {'':<10}{'P':>8}{'R':>8}{'F1':>8}{'support':>9}",
    ]
    support = scores.get("support", scores.get("gold", 0))
    lines.append(
        f"  {'micro':<10}{scores['precision']:>8.4f}{scores['recall']:>8.4f}{scores['f1']:>8.4f}{support:>9}"
    )
    for entity_type, figures in scores.get("per_type", {}).items():
        lines.append(
            f"  {entity_type:<10}{figures['precision']:>8.4f}{figures['recall']:>8.4f}"
            f"{figures['f1']:>8.4f}{figures['support']:>9}"
        )
    if "accuracy" in scores:
        lines.append(f"  accuracy {scores['accuracy']:.4f}")
    return "\n".join(lines)
