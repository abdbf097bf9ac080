"""A user mistake is one line naming the file and line, never a traceback, never a lost record: bad bytes in
input files, a single split file, a read-only run folder."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from mmib.cli import app
from mmib.data.captions import CaptionSet
from mmib.data.errors import DataFormatError
from mmib.predict.batch import PredictCounts, read_posts
from mmib.training.config import TrainConfig, parse_dotted


def test_a_bad_utf8_byte_in_a_caption_file_names_its_line(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_bytes("1.jpg :a dog\n2.jpg :a caf\u00e9\n".encode() + b"3.jpg :bad \xff byte\n")
    with pytest.raises(DataFormatError, match=r"captions\.txt:3: invalid UTF-8 \(byte 0xff at column 12\)"):
        CaptionSet.read(path)


def test_a_bad_utf8_byte_in_a_conll_file_names_its_line(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"IMGID:1\nKobe\tB-PER\n\nIMGID:2\nLA\xffkers\tB-ORG\n")
    for split in ("dev", "test"):
        (tmp_path / f"{split}.txt").write_text("IMGID:3\nx\tO\n")
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 2 and "train.txt:5: invalid UTF-8" in result.output, result.output


def test_a_bad_utf8_line_in_predict_input_is_skipped_and_the_rest_read(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(
        b'{"id": 1, "text": "fine"}\n{"id": 2, "text": "bad \xc3"}\n{"id": 3, "text": "also fine"}\n'
    )
    counts = PredictCounts()
    posts = list(read_posts(path, counts))
    assert [p.post_id for p in posts] == [1, 3]
    assert counts.skipped == [f"{path}:2: invalid UTF-8 (byte 0xc3 at column 24)"]


def test_deeply_nested_and_huge_number_predict_lines_are_skipped(tmp_path):
    path = tmp_path / "posts.jsonl"
    nested = '{"id": 1, "text": ' + "[" * 5000 + "]" * 5000 + "}"
    path.write_text(nested + "\n" + '{"id": ' + "9" * 5000 + ', "text": "x"}\n{"id": 3, "text": "ok"}\n')
    counts = PredictCounts()
    assert [p.post_id for p in read_posts(path, counts)] == [3]
    assert [s.split(": ", 1)[0] for s in counts.skipped] == [f"{path}:1", f"{path}:2"]


def test_data_check_on_one_split_file_beside_images(synth_ner):
    result = CliRunner().invoke(app, ["data", "check", str(synth_ner / "test.txt")])
    assert result.exit_code in (0, 1) and "every record is well-formed" in result.output, result.output


@pytest.mark.slow
def test_evaluate_on_a_run_folder_it_cannot_write_still_prints_the_scores(tiny_ner_run, monkeypatch):
    from mmib.processing import NerTask

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(NerTask, "write_predictions", refuse)
    result = CliRunner().invoke(app, ["evaluate", str(tiny_ner_run), "--split", "dev"])
    assert result.exit_code == 0, result.output
    assert (
        " micro " in result.output and "predictions and scores not saved (Permission denied)" in result.output
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"0": 5}, "the crops of key 0 are int"),
        ({"0": "crop.png"}, "the crops of key 0 are str 'crop.png'"),
        (["a", "b"], "crop mapping is a list"),
    ],
)
def test_crop_maps_of_the_wrong_shape_say_so(tmp_path, mapping, message):
    from mmib.data.images import load_crop_mapping

    path = tmp_path / "mre_train_dict.json"
    path.write_text(json.dumps(mapping))
    with pytest.raises(ValueError, match=message):
        load_crop_mapping(path)


@pytest.mark.parametrize("line", ["{[1]: 2}", "{'token': " + "[" * 3000 + "]" * 3000 + "}"])
def test_mnre_literals_that_are_no_records_name_their_line(tmp_path, line):
    from mmib.data.readers import read_mnre

    path = tmp_path / "train.txt"
    path.write_text(line + "\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:1: not a Python dict literal"):
        read_mnre(path)


def test_numbers_in_yaml_1_1_exponent_form_are_read_as_numbers(tmp_path):
    """PyYAML reads 3e-5 (no dot) as text: in a config file and on the command line it is still a number."""
    config = tmp_path / "run.yaml"
    config.write_text("data: x\nlearning_rate: 3e-5\nmodel:\n  beta1: 1e-3\n")
    loaded = TrainConfig.from_yaml(config)
    assert (loaded.learning_rate, loaded.model.beta1) == (3e-5, 1e-3)
    dotted = loaded.with_dotted(parse_dotted(["--model.beta2", "2e-1", "--warmup-ratio=5e-2"]))
    assert (dotted.model.beta2, dotted.warmup_ratio) == (0.2, 0.05)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--epochs", "true"], "epochs must be a whole number, not True"),
        (["--epochs", "2.5"], "epochs must be a whole number, not 2.5"),
        (["--model.use_alignment", "maybe"], "model.use_alignment must be true or false, not 'maybe'"),
        (["--bucket-by-length", "nah"], "bucket_by_length must be true or false, not 'nah'"),
        (["--data", "null"], "data must be text, not None"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_not_taken(argument, message):
    """A bool is an int and any text is truthy: without the check these ran as 1 epoch and L_ar on."""
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(data="x").with_dotted(parse_dotted(argument))


def test_text_where_a_number_belongs_is_one_line(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("data: x\nepochs: many\n")
    with pytest.raises(ValueError, match=r"run\.yaml: epochs must be a whole number, not 'many'"):
        TrainConfig.from_yaml(config)
    config.write_text("data: x\nepochs: 2\n")
    result = CliRunner().invoke(app, ["train", str(config), "--model.beta1", "lots"])
    assert result.exit_code == 2
    assert "error: " in result.output and "model.beta1 must be a number, not 'lots'" in result.output
    assert "Traceback" not in result.output
