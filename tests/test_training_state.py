"""Training state is never destroyed silently: a run in the --out folder is kept unless --overwrite, --resume
without a usable last.pt refuses, and a resumed run logs every epoch once."""

from __future__ import annotations

import json
import shutil

import pytest

from mmib.training import TrainConfig, Trainer


def _settings(tiny_encoder, data, out, cache, **overrides) -> TrainConfig:
    values = dict(
        data=str(data),
        output_dir=str(out),
        text_encoder=tiny_encoder,
        image_encoder="random-cnn",
        feature_cache=str(cache),
        epochs=3,
        batch_size=16,
        max_train_samples=32,
        seed=5,
        patience=0,
    )
    return TrainConfig.create(**{**values, **overrides})


def _epochs(run) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_finished_run_is_kept_unless_overwritten(tiny_encoder, synth_ner, tmp_path):
    run = tmp_path / "run"
    settings = _settings(tiny_encoder, synth_ner, run, tmp_path / "cache", epochs=1)
    Trainer(settings, progress=False).fit()
    before = (run / "best" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a training run; --resume continues it"):
        Trainer(settings.with_overrides(seed=6), progress=False).fit()
    assert (run / "best" / "model.safetensors").read_bytes() == before and _epochs(run) == [1]
    Trainer(settings.with_overrides(seed=6, stop_after_epochs=0), progress=False, overwrite=True).fit()
    assert (
        not (run / "last.pt").exists() and not (run / "best" / "model.safetensors").exists()
    )  # none of the old
    Trainer(settings.with_overrides(seed=6), progress=False, overwrite=True).fit()
    assert (run / "best" / "model.safetensors").read_bytes() != before and _epochs(run) == [1]


@pytest.mark.slow
def test_resume_without_a_checkpoint_refuses_and_keeps_the_log(tiny_encoder, synth_ner, tmp_path):
    run = tmp_path / "run"
    settings = _settings(tiny_encoder, synth_ner, run, tmp_path / "cache", stop_after_epochs=1)
    Trainer(settings, progress=False).fit()
    (run / "last.pt").unlink()
    best = (run / "best" / "model.safetensors").read_bytes()
    with pytest.raises(FileNotFoundError, match=r"last\.pt: missing, but metrics\.jsonl logs 1 epoch"):
        Trainer(settings, progress=False).fit(resume=True)
    assert _epochs(run) == [1] and (run / "best" / "model.safetensors").read_bytes() == best
    (run / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"last\.pt: cannot be read as an mmib checkpoint"):
        Trainer(settings, progress=False).fit(resume=True)


@pytest.mark.slow
def test_a_kill_between_the_log_and_the_checkpoint_logs_no_epoch_twice(tiny_encoder, synth_ner, tmp_path):
    run = tmp_path / "run"
    settings = _settings(tiny_encoder, synth_ner, run, tmp_path / "cache", stop_after_epochs=1)
    Trainer(settings, progress=False).fit()
    shutil.copy(run / "last.pt", tmp_path / "after-epoch-1.pt")
    Trainer(settings, progress=False).fit(resume=True)
    assert _epochs(run) == [1, 2]
    # as if the process died after logging epoch 2 but before its last.pt replaced epoch 1's
    shutil.copy(tmp_path / "after-epoch-1.pt", run / "last.pt")
    Trainer(settings.with_overrides(stop_after_epochs=5), progress=False).fit(resume=True)
    assert _epochs(run) == [1, 2, 3]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be at least 1, not 0"),
        ("epochs", -1, "epochs must be at least 1, not -1"),
        ("warmup_ratio", 1.5, "warmup_ratio must be in [0, 1), not 1.5"),
        ("model.num_heads", 0, "num_heads must be at least 1, not 0"),
    ],
)
def test_impossible_numbers_are_one_line_errors(key, value, message, tmp_path):
    from typer.testing import CliRunner

    from mmib.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), f"--{key}", str(value)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def finished_run(tiny_encoder, synth_ner, tmp_path_factory):
    """A one-epoch run trained with a relative --data, from the dataset's parent folder."""
    import os

    root = tmp_path_factory.mktemp("relative")
    here = os.getcwd()
    os.chdir(synth_ner.parent)
    try:
        settings = _settings(tiny_encoder, synth_ner.name, root / "run", root / "cache", epochs=1)
        Trainer(settings, progress=False).fit()
    finally:
        os.chdir(here)
    return root / "run"


@pytest.mark.slow
def test_a_run_trained_with_a_relative_data_path_evaluates_from_anywhere(finished_run, tmp_path, monkeypatch):
    from mmib.training.evaluate_run import evaluate_run

    recorded = json.loads((finished_run / "train_config.json").read_text())
    assert recorded["data"].startswith("/")
    monkeypatch.chdir(tmp_path)
    assert "f1" in evaluate_run(finished_run, "dev", progress=False)["scores"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda run: (run / "best" / "model.safetensors").write_bytes(b"\0" * 40),
            "not a readable safetensors",
        ),
        (
            lambda run: _edit_config(run, lambda c: {**c, "num_hedas": 4}),
            r"model_config\.json: unknown model settings \['num_hedas'\]",
        ),
        (lambda run: _edit_config(run, lambda c: {**c, "num_heads": 0}), "num_heads must be at least 1"),
        (lambda run: _edit_config(run, lambda c: {**c, "labels": c["labels"][:3]}), "the weights do not fit"),
    ],
)
def test_a_damaged_run_folder_is_a_one_line_error_naming_the_file(finished_run, tmp_path, damage, message):
    from mmib.model.mmib import from_pretrained

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    with pytest.raises((ValueError, FileNotFoundError), match=message) as caught:
        from_pretrained(run)
    assert len(str(caught.value).splitlines()) == 1 and str(run) in str(caught.value)


def _edit_config(run, change) -> None:
    path = run / "model_config.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
