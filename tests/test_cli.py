"""The mmib command line, run in-process with typer's runner and once as a real console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmib.cli import app

from .conftest import shared_path

runner = CliRunner()


def test_help_lists_data_commands():
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("stats", "check", "synth"):
        assert command in result.output


def test_console_script_is_installed():
    beside_python = Path(sys.executable).parent / "mmib"
    executable = str(beside_python) if beside_python.exists() else shutil.which("mmib")
    assert executable, "pip install -e . should put the mmib console script on PATH"
    output = subprocess.run([executable, "--help"], capture_output=True, text=True, check=True).stdout
    assert "data" in output and "quickstart" in output


def test_stats_json_shape_ner(synth_ner):
    result = runner.invoke(app, ["data", "stats", str(synth_ner), "--format", "json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["dataset"] == synth_ner.name
    train = stats["splits"]["train"]
    assert train["posts"] == 400 and set(train["entities"]) == {"PER", "LOC", "ORG", "MISC"}


def test_stats_json_shape_mre(synth_re):
    result = runner.invoke(app, ["data", "stats", str(synth_re), "--format", "json"])
    stats = json.loads(result.output)
    train = stats["splits"]["train"]
    assert train["instances"] == 400 and train["images"] == 400 and "None" in train["relations"]


def test_stats_on_real_twitter2017_json():
    path = shared_path("data/twitter2017")
    stats = json.loads(runner.invoke(app, ["data", "stats", str(path), "--format", "json"]).output)
    assert stats["splits"]["test"]["entities"] == {"LOC": 178, "MISC": 157, "ORG": 395, "PER": 621}


def test_check_ok_and_reports_masked_images(synth_ner):
    result = runner.invoke(app, ["data", "check", str(synth_ner)])
    assert result.exit_code == 0, result.output
    assert "ok: every record is well-formed" in result.output
    assert "absent on disk; the model sees them as masked" in result.output


def test_check_fails_with_file_and_line(tmp_path):
    (tmp_path / "train.txt").write_text("IMGID:1\nJohn\tB-PERSON\n")
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'train.txt'}:2: unknown entity type" in result.output


def test_check_lenient_reports_skips_and_exits_one(tmp_path):
    (tmp_path / "train.txt").write_text("IMGID:1\nJohn\tB-PER\n\nIMGID:2\nbad\n")
    result = runner.invoke(app, ["data", "check", str(tmp_path), "--lenient"])
    assert result.exit_code == 1
    assert "skipped 1 malformed record(s)" in result.output
    assert "train.txt:5: no tab" in result.output


def test_check_mnre_sample_real_images():
    result = runner.invoke(app, ["data", "check", str(shared_path("images/mnre-sample"))])
    assert result.exit_code == 0, result.output
    assert "crops listed absent" in result.output


def test_synth_command(tmp_path):
    result = runner.invoke(
        app, ["data", "synth", "--task", "re", "--out", str(tmp_path / "re"), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "text-only oracle F1" in result.output
    assert (tmp_path / "re" / "mre_dev_dict.pth").exists() and (tmp_path / "re" / "img_org" / "val").is_dir()


@pytest.mark.slow
def test_train_resume_and_evaluate_commands(tiny_encoder, synth_ner, tmp_path, monkeypatch):
    monkeypatch.setenv("MMIB_HOME", str(tmp_path / "home"))  # feature cache goes here
    run = tmp_path / "run"
    common = ["--text-encoder", tiny_encoder, "--image-encoder", "random-cnn", "--max-train-samples", "32"]
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(synth_ner),
            "--out",
            str(run),
            "--epochs",
            "2",
            "--stop-after-epochs",
            "1",
            "--model.beta1",
            "0.25",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["epochs_completed"] == 1
    assert json.loads((run / "train_config.json").read_text())["model"]["beta1"] == 0.25
    assert json.loads((run / "model_config.json").read_text())["beta1"] == 0.25
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output and '"epochs_completed": 2' in result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    result = runner.invoke(app, ["evaluate", str(run), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "micro" in result.output and "PER" in result.output
    assert (run / "predictions" / "test.conll").exists()


def test_train_reports_bad_data_cleanly(tmp_path):
    (tmp_path / "train.txt").write_text("IMGID:1\nJohn B-PER\n")
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "train.txt:2: no tab" in result.output


def test_train_refuses_an_unknown_setting_in_one_line(synth_ner, tmp_path):
    result = runner.invoke(
        app, ["train", "--data", str(synth_ner), "--out", str(tmp_path / "r"), "--model.bet1", "2"]
    )
    assert result.exit_code == 2 and "model.bet1" in result.output and "Traceback" not in result.output


def test_help_lists_every_command():
    output = runner.invoke(app, ["--help"]).output
    for command in ("data", "train", "evaluate", "predict", "serve", "analyze", "quickstart", "models"):
        assert command in output


def test_importing_the_cli_loads_no_torch():
    """Commands that predict set OMP_WAIT_POLICY before torch loads; that needs a torch-free CLI import."""
    code = "import sys, mmib.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_setting_of_the_configs_is_a_train_option_with_its_type_and_default():
    """The options are derived from TrainConfig's and MMIBConfig's fields: a new field is a new option."""
    from dataclasses import fields

    from typer.main import get_command

    from mmib.model import MMIBConfig
    from mmib.training import TrainConfig
    from mmib.training.cli import FROM_THE_RUN

    train = get_command(app).commands["train"]
    options = {name for parameter in train.params for name in parameter.opts}
    for field in fields(TrainConfig):
        if field.name != "model":
            assert f"--{field.name.replace('_', '-')}" in options and f"--{field.name}" in options, field.name
    for field in fields(MMIBConfig):
        if field.name not in FROM_THE_RUN:
            assert f"--model.{field.name}" in options, field.name
    by_name = {opt: parameter for parameter in train.params for opt in parameter.opts}
    assert "default 0.1" in by_name["--model.beta1"].help and by_name["--model.beta1"].metavar == "FLOAT"
    assert by_name["--beta1"] is by_name["--model.beta1"]  # a model key no training setting shadows
    assert by_name["--max-train-samples"].metavar == "INT|NULL"


def test_derived_options_reach_the_run_and_wrong_kinds_are_one_line(synth_ner, tmp_path):
    from mmib.training.cli import _base, assignments

    chosen = assignments(
        {"model__num_heads": "2", "warmup_ratio": "0.2", "model__beta1": "3e-5", "seed": None}
    )
    settings = _base(None, None).with_dotted(chosen)
    assert (settings.model.num_heads, settings.warmup_ratio, settings.model.beta1) == (2, 0.2, 3e-5)
    result = runner.invoke(
        app, ["train", "--data", str(synth_ner), "--out", str(tmp_path / "r"), "--epochs", "true"]
    )
    assert result.exit_code == 2 and "epochs must be a whole number, not True" in result.output
    assert "Traceback" not in result.output


def test_a_user_mistake_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch):
    """Only mmib's own user-error types (and OS file errors) become `error:` lines; a ValueError from
    anywhere else is a bug, and the command shows it as one."""
    import mmib.training.evaluate_run as evaluate_run
    from mmib.errors import SettingError

    def mistaken(*_args, **_kwargs):
        raise SettingError("runs/x: no such split 'tset'")

    monkeypatch.setattr(evaluate_run, "evaluate_run", mistaken)
    result = runner.invoke(app, ["evaluate", "runs/x", "--split", "tset"])
    assert result.exit_code == 2 and "error: runs/x: no such split 'tset'" in result.output

    def buggy(*_args, **_kwargs):
        raise ValueError("too many values to unpack")

    monkeypatch.setattr(evaluate_run, "evaluate_run", buggy)
    result = runner.invoke(app, ["evaluate", "runs/x"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


def test_features_from_a_training_config_fill_the_cache_training_reads(synth_ner, tmp_path):
    """`mmib features CONFIG` takes the encoder, crops and cache from the config, so the two cannot disagree."""
    config = tmp_path / "run.yaml"
    cache = tmp_path / "cache"
    config.write_text(
        f"data: {synth_ner}\nfeature_cache: {cache}\nmodel:\n  image_encoder: random-cnn\n  max_crops: 1\n"
    )
    result = runner.invoke(app, ["features", str(config), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert [folder.name.split("--")[0] for folder in cache.iterdir()] == ["random-cnn"]  # name--weights
    assert "computed" in result.output
