"""Analysis commands: image-use conditions, contribution scores, co-location numbers, error classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmib.analysis.alignment_tsne import colocation
from mmib.analysis.contributions import contribution_scores
from mmib.analysis.errors import span_errors
from mmib.analysis.image_use import image_use_scores, read_categories, removed_images, shuffled_images
from mmib.analysis.training_curves import read_curve
from mmib.cli import app
from mmib.training.evaluate_run import evaluate_run, open_run_split


def test_shuffle_gives_every_imaged_post_another_image(tiny_ner_run):
    prepared = open_run_split(tiny_ner_run, "test", progress=False).prepared
    shuffled = shuffled_images(prepared, seed=1)
    with_image = prepared.image_mask.any(1)
    assert torch.equal(shuffled.image_mask.any(1), with_image)  # image-less posts stay image-less
    for post in torch.nonzero(with_image).flatten().tolist():
        assert not torch.equal(shuffled.image_features[post], prepared.image_features[post])
    assert sorted(shuffled.image_features[with_image].sum((1, 2)).tolist()) == sorted(
        prepared.image_features[with_image].sum((1, 2)).tolist()
    )  # the same images, moved
    assert not removed_images(prepared).image_mask.any()


@pytest.mark.parametrize("task", ["ner", "re"])
def test_image_use_true_condition_equals_evaluation(task, request):
    run, data = request.getfixturevalue(f"tiny_{task}_run"), request.getfixturevalue(f"synth_{task}")
    opened = open_run_split(run, "test", progress=False)
    report = image_use_scores(opened, read_categories(data, "test"))
    assert set(report) == {"true", "shuffled", "removed"}
    assert report["true"]["all"]["f1"] == evaluate_run(run, "test", progress=False)["scores"]["f1"]
    assert {"text", "image", "noise"} <= set(report["true"])
    assert (
        sum(report["true"][c]["instances"] for c in ("text", "image", "noise"))
        == report["true"]["all"]["instances"]
    )


def test_contribution_scores_are_row_sums_of_x_z(tiny_ner_run):
    opened = open_run_split(tiny_ner_run, "test", progress=False)
    batch = opened.collator(opened.prepared, [0, 1, 2])
    text_scores, image_scores = contribution_scores(opened.model, batch)
    model = opened.model
    with torch.no_grad():
        x = model.text_encoder(batch.text)[1]
        z = model.text_variational(model.text_encoder(batch.text), batch.text.mask).z[1]
        length = int(batch.text.mask[1].sum())
        expected = (x[:length] @ z[:length].T).sum(1)
    assert torch.allclose(text_scores[1, :length], expected, rtol=1e-4, atol=1e-3)
    assert torch.all(text_scores[1, length:] == 0)
    assert torch.all(image_scores[~batch.image_mask] == 0)


def test_colocation_separates_aligned_from_apart():
    rng = np.random.default_rng(0)
    types = ["PER", "LOC", "ORG"] * 30
    centres = {t: rng.normal(size=16) * 5 for t in set(types)}
    text = np.stack([centres[t] + rng.normal(size=16) for t in types])
    aligned = colocation(text, np.stack([centres[t] + rng.normal(size=16) for t in types]), types)
    assert aligned["cross_knn"] == 1.0 and aligned["silhouette"] > 0.5
    apart = colocation(text, rng.normal(size=(90, 16)) + 20, types)
    assert apart["cross_knn"] < 0.6 and apart["silhouette"] < aligned["silhouette"]


def test_span_error_classes():
    gold = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O", "O"]
    pred = ["B-PER", "O", "O", "B-ORG", "O", "O", "O", "B-MISC"]
    assert span_errors(gold, pred) == ["boundary PER", "type LOC -> ORG", "missed ORG", "spurious MISC"]
    assert span_errors(gold, gold) == []


def test_analyze_commands_run(tiny_ner_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "errors", str(tiny_ner_run), "--out", str(tmp_path / "e.md")])
    assert result.exit_code == 0, result.output
    assert "| error | count |" in (tmp_path / "e.md").read_text()
    result = runner.invoke(app, ["analyze", "image-use", str(tiny_ner_run)])
    assert result.exit_code == 0 and "| image-decided |" in result.output
    out = tmp_path / "c.png"
    result = runner.invoke(
        app, ["analyze", "contributions", str(tiny_ner_run), "--post", "3", "--out", str(out), "--cue-share"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and "cue crop scores highest" in result.output
    out = tmp_path / "t.png"
    result = runner.invoke(app, ["analyze", "tsne", str(tiny_ner_run), "--pairs", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".json").exists()


def test_curves_read_every_epoch_and_plot(tiny_ner_run, tmp_path):
    # A second, hand-written run beside the tiny one: two epochs, the second without an L_ar part.
    other = tmp_path / "variant-b" / "seed-2"
    other.mkdir(parents=True)
    lines = [
        {"epoch": 1, "train": {"loss": 2.0, "task": 1.5, "refinement": 0.5}, "dev": {"f1": 0.25}},
        {"epoch": 2, "train": {"loss": 1.0, "task": 0.75, "refinement": 0.25}, "dev": {"f1": 0.75}},
    ]
    (other / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["analyze", "curves", str(tiny_ner_run), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    tiny_f1 = json.loads((tiny_ner_run / "metrics.jsonl").read_text().splitlines()[0])["dev"]["f1"]
    assert f"| {tiny_ner_run.parent.name}/run | {100 * tiny_f1:.2f} |  |" in result.output
    assert "| variant-b/seed-2 | 25.00 | 75.00 |" in result.output
    curve = read_curve(other)
    assert curve.losses == {"task": [1.5, 0.75], "refinement": [0.5, 0.25]}  # no all-NaN alignment part


def test_curves_name_file_and_line_of_a_bad_record(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "train": {}, "dev": {"f1": 0.5}}\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not an epoch record"):
        read_curve(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no metrics\.jsonl"):
        read_curve(tmp_path / "missing")
