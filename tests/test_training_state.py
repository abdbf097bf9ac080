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
