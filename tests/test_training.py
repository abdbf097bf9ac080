"""Training loop: checkpoints, metrics.jsonl, resume after an interruption, evaluation files."""

from __future__ import annotations

import json

import pytest

from mmib.data import load_dataset
from mmib.encoders.image import ImageFeatureCache, build_image_encoder
from mmib.model.mmib import from_pretrained
from mmib.training import TrainConfig, Trainer
from mmib.training.batching import prepare_split
from mmib.training.evaluate_run import evaluate_run
from tests.conftest import image_side_of


def _config(tiny_encoder, data, out, cache, **overrides) -> TrainConfig:
    values = dict(
        data=str(data),
        output_dir=str(out),
        text_encoder=tiny_encoder,
        image_encoder="random-cnn",
        feature_cache=str(cache),
        epochs=3,
        batch_size=16,
        max_train_samples=64,
        seed=5,
        patience=0,
        head_learning_rate=3e-3,
        learning_rate=1e-3,
    )
    values.update(overrides)
    return TrainConfig.create(**values)


def _dev_f1s(run_dir) -> list[float]:
    return [json.loads(line)["dev"]["f1"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ner", "re"])
def test_resume_gives_the_same_run(tiny_encoder, synth_ner, synth_re, tmp_path, task):
    data = synth_ner if task == "ner" else synth_re
    whole = tmp_path / "whole"
    Trainer(_config(tiny_encoder, data, whole, tmp_path / "cache"), progress=False).fit()
    interrupted = tmp_path / "interrupted"
    first = Trainer(
        _config(tiny_encoder, data, interrupted, tmp_path / "cache", stop_after_epochs=1), progress=False
    )
    assert first.fit()["epochs_completed"] == 1
    resumed = Trainer(_config(tiny_encoder, data, interrupted, tmp_path / "cache"), progress=False).fit(
        resume=True
    )
    assert resumed["epochs_completed"] == 3
    assert _dev_f1s(interrupted) == _dev_f1s(whole)
    assert len(_dev_f1s(whole)) == 3
    model_whole, _ = from_pretrained(whole, "last")
    model_resumed, _ = from_pretrained(interrupted, "last")
    for (name, a), (_, b) in zip(
        model_whole.state_dict().items(), model_resumed.state_dict().items(), strict=True
    ):
        assert a.equal(b), name


def test_run_folder_reloads_and_evaluates(tiny_encoder, synth_ner, tmp_path):
    run = tmp_path / "run"
    summary = Trainer(
        _config(tiny_encoder, synth_ner, run, tmp_path / "cache", epochs=1), progress=False
    ).fit()
    assert summary["epochs_completed"] == 1 and summary["train_samples_per_second"] > 0
    for name in (
        "model_config.json",
        "train_config.json",
        "best/model.safetensors",
        "last.pt",
        "text_encoder/config.json",
        "text_encoder/tokenizer.json",
    ):
        assert (run / name).exists(), name
    result = evaluate_run(run, "test", progress=False)
    assert set(result["scores"]) >= {"precision", "recall", "f1", "per_type"}
    lines = (run / "predictions" / "test.conll").read_text().splitlines()
    assert lines[0].startswith("IMGID:") and len(lines[1].split("\t")) == 3
    assert "computed" in result["image_features"]


def test_image_features_are_computed_once(tiny_encoder, synth_ner, tmp_path):
    first = Trainer(
        _config(tiny_encoder, synth_ner, tmp_path / "a", tmp_path / "cache", epochs=1), progress=False
    )
    first.fit()
    computed = first.image_side_report["image_features"]
    assert computed.computed > 0 and computed.from_cache == 0
    second = Trainer(
        _config(tiny_encoder, synth_ner, tmp_path / "b", tmp_path / "cache", epochs=1), progress=False
    )
    second.fit()
    read = second.image_side_report["image_features"]
    assert read.computed == 0 and read.from_cache == computed.computed


def test_a_dataset_without_image_folder_is_said(synth_ner, tmp_path):
    dataset = load_dataset(synth_ner)
    dataset.image_root = None  # as for the text-only benchmark releases
    cache = ImageFeatureCache(build_image_encoder("random-cnn"), tmp_path)
    prepared = prepare_split(dataset, "dev", image_side_of(cache, cache.encoder.feature_dim), progress=False)
    assert cache.counts.without_image_folder == prepared.num_posts > 0
    assert not prepared.image_mask.any()
    assert f"{prepared.num_posts} posts image-absent" in str(cache.counts)


def test_shipped_configs_parse_and_unknown_keys_fail(tmp_path):
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
        assert TrainConfig.from_yaml(path).data
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown keys \\['learning_rat'\\]"):
        TrainConfig.from_yaml(bad)


@pytest.mark.parametrize(("name", "crops"), [("twitter2017", 4), ("mnre", 3)])
def test_released_code_configs_hold_its_effective_settings(name, crops):
    """Facts of ../shared/paper/RELEASED-CODE.md: KL and L_ar weights 1.0, the additive discriminator on the
    first position, one learning rate of 3e-5, warm-up 0.03, 30 epochs, batch 8; selection kept on dev."""
    from pathlib import Path

    from mmib.training.config import parse_dotted

    path = Path(__file__).resolve().parents[1] / "configs" / f"released-code-{name}.yaml"
    config = TrainConfig.from_yaml(path)
    model = config.model
    assert (model.beta1, model.beta2, model.alignment_weight) == (1.0, 1.0, 2.0)
    assert (model.discriminator, model.discriminator_pooling, model.logvar_head) == (
        "additive",
        "first",
        "apenc",
    )
    assert model.max_crops == crops
    assert config.learning_rate == config.head_learning_rate == 3e-5
    assert (config.warmup_ratio, config.epochs, config.batch_size, config.patience) == (0.03, 30, 8, 0)
    assert "what it cannot mirror" in path.read_text().lower()
    # the measurement rows swap one setting from the command line
    swapped = config.with_overrides(**parse_dotted(["--model.discriminator", "bilinear"]))
    assert swapped.model.discriminator == "bilinear" and swapped.model.discriminator_pooling == "first"


def test_nested_yaml_flat_keywords_and_legacy_run_configs_agree(tmp_path):
    nested = tmp_path / "nested.yaml"
    nested.write_text("data: x\nepochs: 3\nmodel:\n  beta1: 0.2\n  text_only: true\n")
    from_yaml = TrainConfig.from_yaml(nested)
    assert from_yaml.model.beta1 == 0.2 and from_yaml.model.text_only and from_yaml.epochs == 3
    assert TrainConfig.create(data="x", epochs=3, beta1=0.2, text_only=True) == from_yaml
    legacy = {**TrainConfig().to_dict(), "data": "x", "epochs": 3}  # train_config.json before the nesting
    legacy.pop("model")
    legacy.update(beta1=0.2, text_only=True, text_encoder="all-MiniLM-L6-v2", task=None, max_length=None)
    assert TrainConfig.from_dict(legacy) == from_yaml
    assert from_yaml.to_dict()["model"]["beta1"] == 0.2  # what a run folder records: nested


def test_dotted_overrides_reach_nested_settings_and_unknown_keys_fail():
    from mmib.training.config import parse_dotted

    assignments = parse_dotted(
        ["--model.beta1", "0.3", "--model.logvar_head=linear", "--warmup-ratio", "0.2"]
    )
    assert assignments == {"model.beta1": 0.3, "model.logvar_head": "linear", "warmup_ratio": 0.2}
    settings = TrainConfig().with_dotted(assignments)
    assert (settings.model.beta1, settings.model.logvar_head, settings.warmup_ratio) == (0.3, "linear", 0.2)
    with pytest.raises(ValueError, match=r"model\.beta3"):
        TrainConfig().with_dotted({"model.beta3": 1.0})
    with pytest.raises(ValueError, match="needs a value"):
        parse_dotted(["--model.beta1"])


def test_schedule_floor_ends_at_the_final_ratio_and_zero_floor_is_transformers_schedule():
    import torch

    from mmib.training.trainer import make_scheduler

    def rates(final_ratio: float) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = make_scheduler(optimizer, total_steps=100, warmup_ratio=0.1, final_lr_ratio=final_ratio)
        seen = []
        for _ in range(100):
            optimizer.step()
            scheduler.step()
            seen.append(optimizer.param_groups[0]["lr"])
        return seen

    floored, plain = rates(0.1), rates(0.0)
    assert abs(floored[-1] - 0.1) < 1e-9 and plain[-1] == 0.0
    assert max(floored) == max(plain) == 1.0 and floored[5] == plain[5] == 0.6


def test_the_benchmark_harness_continues_an_interrupted_seed_with_the_same_settings(
    tiny_encoder, synth_ner, tmp_path
):
    """A seed killed at a session's end resumes from its last epoch instead of starting again."""
    from dataclasses import replace

    from tests.conftest import benchmark

    unfinished_run = benchmark("train_eval").unfinished_run
    settings = _config(tiny_encoder, synth_ner, tmp_path / "run", tmp_path / "cache", epochs=2)
    assert not unfinished_run(settings)  # no folder yet
    Trainer(replace(settings, stop_after_epochs=1), progress=False).fit()
    assert unfinished_run(settings)
    assert not unfinished_run(replace(settings, learning_rate=2e-3))  # other settings: not this run
    Trainer(settings, progress=False).fit(resume=True)
    assert not unfinished_run(settings)  # finished: scored as it is, not continued


def test_the_benchmark_harness_keeps_every_recorded_seed_s_entries_when_it_adds_a_seed():
    """A result file's hand-written timing notes and per-seed figures survive the rewrite that adds a seed."""
    from tests.conftest import benchmark

    train_eval = benchmark("train_eval")
    PER_SEED, per_seed_entries = train_eval.PER_SEED, train_eval.per_seed_entries
    previous = {"test": {"1": {"f1": 0.88}}, "seed_timing_note": {"1": "alone"}, "command": "old"}
    kept = per_seed_entries(previous)
    assert set(kept) == set(PER_SEED)
    assert kept["seed_timing_note"] == {1: "alone"} and kept["test"] == {1: {"f1": 0.88}}
    assert kept["dev"] == {}
