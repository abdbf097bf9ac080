"""Regression tests from the abuse and first-use review: contained file access, no silent loss, one-line
errors, common file names, resumable from any point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from mmib.data import load_dataset
from mmib.data.errors import DataFormatError
from mmib.data.images import NOT_FOUND, ImageStore, inside, load_crop_mapping
from mmib.data.readers import read_conll
from mmib.data.stats import check_images
from mmib.predict import Extractor
from mmib.predict.batch import DuplicateIds, predict_file
from tests.conftest import REPO_ROOT

GOOD = "IMGID:1\nKobe\tB-PER\nwins\tO\n\n"


# ---- 1. one containment rule ------------------------------------------------------------------------


def test_inside_refuses_parents_absolute_names_and_symlinks_out(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "outside.jpg", folder / "link.jpg")
    assert inside(folder, "ok.jpg") == folder / "ok.jpg"
    for name in ("../outside.jpg", str(tmp_path / "outside.jpg"), "/etc/passwd", "link.jpg", "", " ", "."):
        assert inside(folder, name) is None, name


def test_dataset_image_ids_and_crop_names_cannot_leave_the_image_folder(tmp_path, sample_image):
    root = tmp_path / "data"
    (root / "twitter2017_images").mkdir(parents=True)
    crops = root / "twitter2017_aux_images" / "train" / "crops"
    crops.mkdir(parents=True)
    (tmp_path / "evil.jpg").write_bytes(sample_image.read_bytes())  # a real image two levels up
    (root / "twitter2017_images" / "good.jpg").write_bytes(sample_image.read_bytes())
    (root / "train.txt").write_text("IMGID:good\nA\tO\n\nIMGID:../../evil\nB\tO\n\nIMGID:absent\nC\tO\n\n")
    (root / "twitter2017_train_dict.json").write_text(json.dumps({"good.jpg": ["../../../evil.jpg"]}))
    dataset = load_dataset(root)
    counts = check_images(dataset, "train", progress=False)
    assert counts.images_found == 1 and counts.images_missing == 2 and counts.crops_found == 0
    assert counts.crops_missing == 1
    # outside and missing read the same: the reason never tells whether an outside file exists
    reasons = {problem.split(": ", 1)[1] for problem in counts.problems}
    assert reasons == {NOT_FOUND}
    store = ImageStore.discover(root, "train")
    assert all(path is None or str(path).startswith(str(root)) for path in store.locate("../../evil", 1))


@pytest.fixture(scope="module")
def ner_extractor(tiny_ner_run):
    return Extractor.load(tiny_ner_run, detector=None)


def _posts(tmp_path, rows: list) -> object:
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_predict_images_outside_the_folder_are_absent_and_named(ner_extractor, tmp_path, sample_image):
    images = tmp_path / "images"
    images.mkdir()
    (images / "in.jpg").write_bytes(sample_image.read_bytes())
    (tmp_path / "out.jpg").write_bytes(sample_image.read_bytes())
    rows = [
        {"id": 1, "text": "inside", "image": "in.jpg"},
        {"id": 2, "text": "parent", "image": "../out.jpg"},
        {"id": 3, "text": "absolute", "image": "/etc/passwd"},
        {"id": 4, "text": "missing", "image": "nothing.jpg"},
        {"id": 5, "text": "empty name", "image": ""},
    ]
    output = tmp_path / "out.jsonl"
    counts = predict_file(ner_extractor, _posts(tmp_path, rows), output, images, progress=False)
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["image_used"] for r in results] == [True, False, False, False, False]
    assert counts.image_missing == 4 and len(counts.image_absent) == 4
    assert [a.split(": ", 1)[0].rsplit(":", 1)[1] for a in counts.image_absent] == ["2", "3", "4", "5"]
    assert all(NOT_FOUND in a for a in counts.image_absent)  # one wording for outside and missing


# ---- 2. entity types with hyphens ---------------------------------------------------------------------


def test_hyphenated_entity_types_are_read(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("The\tO\nMona\tB-work-of-art\nLisa\tI-work-of-art\n\n")
    post = read_conll(path).records[0]
    assert post.tags == ["O", "B-work-of-art", "I-work-of-art"]


# ---- 3. no silent loss in mmib predict ----------------------------------------------------------------


def test_duplicate_ids_are_an_error_naming_both_lines_or_deduped_on_request(ner_extractor, tmp_path):
    path = _posts(
        tmp_path, [{"id": "a", "text": "one"}, {"id": 3, "text": "two"}, {"id": "a", "text": "three"}]
    )
    with pytest.raises(DuplicateIds, match=r"posts\.jsonl:3: id \"a\" repeats the id of .*posts\.jsonl:1"):
        predict_file(ner_extractor, path, tmp_path / "o.jsonl", progress=False)
    assert not (tmp_path / "o.jsonl").exists() or not (tmp_path / "o.jsonl").read_text()
    counts = predict_file(ner_extractor, path, tmp_path / "o.jsonl", progress=False, dedupe=True)
    assert counts.written == 2 and "skipped (--dedupe)" in counts.skipped[0]


def test_ids_keep_their_json_type(ner_extractor, tmp_path):
    path = _posts(tmp_path, [{"id": 3, "text": "number"}, {"id": "3", "text": "string"}])
    counts = predict_file(ner_extractor, path, tmp_path / "o.jsonl", progress=False)
    ids = [json.loads(line)["id"] for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert counts.written == 2 and ids == [3, "3"]
    again = predict_file(ner_extractor, path, tmp_path / "o.jsonl", progress=False)
    assert again.already_done == 2 and again.written == 0


# ---- 4 and 5. resume from any point; empty splits -----------------------------------------------------


def _settings(tiny_encoder, data, out, **extra):
    from mmib.training import TrainConfig

    return TrainConfig.create(
        data=str(data),
        output_dir=str(out),
        text_encoder=tiny_encoder,
        text_only=True,
        epochs=1,
        batch_size=16,
        max_train_samples=32,
        patience=0,
        **extra,
    )


def test_resume_before_the_first_epoch_ends_restarts_the_run(tiny_encoder, synth_ner, tmp_path, capsys):
    from mmib.training import Trainer

    settings = _settings(tiny_encoder, synth_ner, tmp_path / "run", stop_after_epochs=0)
    Trainer(settings, progress=False).fit()  # stopped before any epoch finished: no last.pt
    assert not (tmp_path / "run" / "last.pt").exists()
    summary = Trainer(replace(settings, stop_after_epochs=None), progress=False).fit(resume=True)
    assert "no epoch had finished before the stop; starting the run again" in capsys.readouterr().out
    assert summary["epochs_completed"] == 1 and (tmp_path / "run" / "last.pt").exists()
    fresh = Trainer(_settings(tiny_encoder, synth_ner, tmp_path / "fresh"), progress=False).fit()
    assert fresh["best_dev_f1"] == summary["best_dev_f1"]


def test_training_logs_progress_lines_without_a_terminal(tiny_encoder, synth_ner, tmp_path, capsys):
    from mmib.training import Trainer

    Trainer(_settings(tiny_encoder, synth_ner, tmp_path / "run", log_every=1), progress=False).fit()
    lines = [line for line in capsys.readouterr().out.splitlines() if " step " in line]
    assert lines[0].startswith("epoch 1 step 1/2: loss ") and lines[-1].startswith("epoch 1 step 2/2")


def test_empty_training_split_is_refused(tiny_encoder, tmp_path):
    from mmib.training import Trainer

    (tmp_path / "train.txt").write_text("\n")
    (tmp_path / "dev.txt").write_text(GOOD)
    with pytest.raises(ValueError, match=r"train\.txt: no train records"):
        Trainer(_settings(tiny_encoder, tmp_path, tmp_path / "run"), progress=False).fit()
    checked = run_mmib("data", "check", str(tmp_path))
    assert checked.returncode == 1 and "train.txt holds no records" in checked.stderr


# ---- 6. one-line errors -------------------------------------------------------------------------------


def run_mmib(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmib.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )


@pytest.mark.slow
def test_evaluate_mistakes_end_in_one_error_line(tiny_ner_run, tmp_path):
    missing = run_mmib("evaluate", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing'}: not a run folder (no model_config.json / train_config.json)"
    ]
    bogus = run_mmib("evaluate", str(tiny_ner_run), "--split", "bogus")
    assert bogus.returncode == 2 and len(bogus.stderr.strip().splitlines()) == 1
    assert "has no 'bogus' split" in bogus.stderr
    debug = run_mmib("evaluate", str(tmp_path / "nothing"), "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    scored = run_mmib("evaluate", str(tiny_ner_run), "--split", "dev")  # loads the model: no loading bar
    assert scored.returncode == 0 and "Loading weights" not in scored.stderr + scored.stdout


class Custom:
    """Not a type that weights_only loading accepts."""


def test_crop_mapping_refused_by_weights_only_is_one_clear_error(tmp_path):
    path = tmp_path / "twitter2017_train_dict.pth"
    torch.save({"1.jpg": Custom()}, path)
    with pytest.raises(
        ValueError, match=r"twitter2017_train_dict\.pth: not a crop mapping that loads safely"
    ) as raised:
        load_crop_mapping(path)
    assert "\n" not in str(raised.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(GOOD.encode() + b"caf\xe9\tO\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:5: invalid UTF-8 \(byte 0xe9 at column 4\)"):
        read_conll(path)


# ---- 9. first use: file names, BOM, columns ------------------------------------------------------------


@pytest.mark.parametrize(
    "names", [("train.conll", "dev.conll", "test.conll"), ("train.bio", "val.tsv", "test.tsv")]
)
def test_split_files_under_common_names(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text(GOOD)
    assert sorted(load_dataset(tmp_path).splits) == ["dev", "test", "train"]


def test_utf8_bom_is_accepted_and_three_columns_are_refused(tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert read_conll(bom).records[0].image_id == "1"
    three = tmp_path / "three.txt"
    three.write_text("Kobe\tNNP\tB-PER\n\n")
    with pytest.raises(DataFormatError, match=r"three\.txt:1: 3 tab-separated columns"):
        read_conll(three)


def test_resume_keeps_the_runs_own_thread_count(tiny_encoder, synth_ner, tmp_path):
    from typer.testing import CliRunner

    from mmib.cli import app
    from mmib.training import Trainer

    before = torch.get_num_threads()
    try:
        settings = _settings(tiny_encoder, synth_ner, tmp_path / "run", stop_after_epochs=0, threads=1)
        Trainer(settings, progress=False).fit()
        torch.set_num_threads(2)
        result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run")])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1  # the run's --threads, not the process default
        assert json.loads((tmp_path / "run" / "train_config.json").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_every_train_flag_has_help_text():
    from typer.main import get_command

    from mmib.cli import app

    train = get_command(app).commands["train"]
    missing = [p.name for p in train.params if getattr(p, "help", None) in (None, "") and p.name != "config"]
    assert missing == []
