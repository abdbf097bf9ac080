"""Captions for MRE (MNRE-style data): both caption modes with entity markers, the caption room of the pair,
refusals and empty captions counted as absent, and prediction with a caption."""

from __future__ import annotations

import json

import pytest
import torch

from mmib.data import load_dataset
from mmib.data.captions import CaptionCounts, CaptionSet
from tests.conftest import shared_path


def write_captions(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_empty_and_refusing_captions_are_absent_and_counted_by_reason(tmp_path):
    lines = [
        "a.jpg :",
        "b.jpg :The paragraph is not provided. Please provide the paragraph for summarization.",
        "c.jpg :Sorry, I cannot summarize the paragraph as there is no paragraph provided.",
        "d.jpg :A lamp provides warm light beside two men on a balcony.",  # 'provides' is not a refusal
        "e.jpg :person, person, person",
    ]
    captions = CaptionSet.read(write_captions(tmp_path / "c.txt", lines))
    counts = CaptionCounts()
    found = [captions.lookup(key, counts) for key in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg")]
    assert found == [None, None, None, lines[3].split(" :", 1)[1], None, None]
    assert counts.line("val") == (
        "captions (val): 1 used, 4 degenerate (treated as absent: 1 empty, 2 refusal, 1 repeated word list), "
        "1 missing"
    )


def test_real_mnre_captions_cover_every_instance_and_their_defects_are_absent():
    """Every MNRE instance's img_id (extension included) has a caption in each of the four files; BLIP-2's
    35 empty captions and Qwen-VL's refusals are treated as absent."""
    dataset = load_dataset(shared_path("data/mnre"))
    expected = {"blip2": ("empty", 35), "qwen": ("refusal", 19)}
    for name in ("blip2", "instructblip", "qwen", "cogvlm"):
        captions = CaptionSet.read(shared_path(f"data/image-captions/mnre/{name}.txt"))
        counts = CaptionCounts()
        for records in dataset.splits.values():
            for instance in records:
                captions.lookup(instance.image_id, counts)
        assert counts.missing == 0, name
        if name in expected:
            reason, at_least = expected[name]
            keys = [k for k, r in captions.reasons.items() if r == reason]
            assert len(keys) >= at_least, (name, reason, len(keys))


def test_pair_caption_gets_its_own_room_and_never_cuts_the_marked_text(tiny_encoder):
    """With a caption room, a text that fills its window keeps every word (and both entity markers) and
    the caption still gets its sub-words; without one (runs saved before the setting) it gets none."""
    from transformers import AutoTokenizer

    from mmib.encoders.entity_markers import mark_entities
    from mmib.encoders.text import WordTokenizer

    hf = AutoTokenizer.from_pretrained(tiny_encoder)
    marked, _, _ = mark_entities(["kobe", "at", "the", "staples", "center", "tonight"], (0, 1), (3, 5))
    window = WordTokenizer(hf, max_length=512)([marked]).attention_mask.sum().item()  # the text's own length
    caption = "a man holds a ball " * 5
    shared = WordTokenizer(hf, max_length=window)
    roomy = WordTokenizer(hf, max_length=window, caption_room=10)
    alone, cut, kept = shared([marked]), shared([marked], [caption]), roomy([marked], [caption])
    assert len(alone.input_ids) == 1  # the marked text fills one window exactly
    for batch in (cut, kept):
        assert torch.equal(batch.gather, alone.gather) and torch.equal(batch.mask, alone.mask)
        assert torch.equal(batch.input_ids[0, :window], alone.input_ids[0])
    assert cut.token_type_ids[0].sum() == 0  # no room left in the shared window
    assert (
        kept.token_type_ids[0].sum() == 11 and kept.input_ids.size(1) == window + 11
    )  # 10 sub-words + [SEP]


@pytest.fixture(scope="module")
def synth_re_captions(synth_re, tmp_path_factory):
    dataset = load_dataset(synth_re)
    lines = sorted(
        {
            f"{instance.image_id} :{'two people with a heart' if n % 2 else 'a house on a hill'}"
            for records in dataset.splits.values()
            for n, instance in enumerate(records)
            if instance.image_id
        }
    )
    return write_captions(tmp_path_factory.mktemp("re-captions") / "captions.txt", lines)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mmib-captions", "text-caption-pair"])
def test_mre_caption_runs_with_markers_train_evaluate_and_predict(
    variant, tiny_encoder, synth_re, synth_re_captions, tmp_path
):
    from mmib.predict import Extractor
    from mmib.predict.batch import predict_file
    from mmib.training import TrainConfig, Trainer
    from mmib.training.evaluate_run import evaluate_run

    pair = variant == "text-caption-pair"
    settings = TrainConfig.create(
        data=str(synth_re),
        output_dir=str(tmp_path / "run"),
        text_encoder=tiny_encoder,
        caption_encoder=tiny_encoder,
        captions=str(synth_re_captions),
        image_source="pixels" if pair else "captions",
        text_only=pair,
        caption_pair=pair,
        entity_markers=True,
        caption_max_tokens=12,
        feature_cache=str(tmp_path / "features"),
        epochs=1,
        batch_size=16,
        max_train_samples=48,
        patience=0,
        score_test_each_epoch=True,
    )
    summary = Trainer(settings, progress=False).fit()
    assert summary["captions"]["train"].startswith("captions (train): ")
    assert set(summary["captions"]) == {"train", "dev", "test"}
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert set(metrics[0]["test_each_epoch"]) == {"precision", "recall", "f1"}
    result = evaluate_run(settings.output_dir, "dev", progress=False)
    assert result["variant"] == variant
    # the per-epoch test score of the selected epoch is what scoring the selected checkpoint once gives
    test = evaluate_run(settings.output_dir, "test", progress=False)
    assert test["scores"]["f1"] == metrics[summary["best_epoch"] - 1]["test_each_epoch"]["f1"]

    # caption use: shuffled and removed captions, overall and per relation
    from mmib.analysis.image_use import CONDITIONS, run_image_use

    report = run_image_use(settings.output_dir, "test", progress=False)
    assert set(report) == set(CONDITIONS) and report["true"]["all"]["per_type_support"]

    extractor = Extractor.load(settings.output_dir, detector=None)
    assert extractor.config.entity_markers and extractor.config.caption_max_tokens == 12
    text = "Fezai met Tifeele Restor at the river"
    with_caption = extractor.relations(
        text, None, "Fezai", "Tifeele Restor", True, caption="two people with a heart"
    )
    without = extractor.relations(text, None, "Fezai", "Tifeele Restor", True)
    assert len(with_caption) == len(without) == 1
    assert with_caption[0].confidence != without[0].confidence  # the caption reaches the classifier

    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        json.dumps(
            {"id": "p1", "text": text, "head": "Fezai", "tail": "Tifeele Restor", "caption": "a house"}
        )
        + "\n"
    )
    output = tmp_path / "out.jsonl"
    predict_file(extractor, posts, output)
    written = json.loads(output.read_text().splitlines()[0])
    assert written["id"] == "p1" and written["relations"]


def test_shuffled_and_removed_captions_move_the_caption_text_and_states():
    """Caption use: shuffled gives every captioned post another post's caption (its states and, for the
    pair, its text); removed leaves none; posts without a caption stay without."""
    from mmib.analysis.image_use import removed_images, shuffled_images
    from mmib.training.batching import PreparedSplit

    captions = ["a dog", None, "two men", "a house", "a ball"]
    features = torch.arange(5, dtype=torch.float).view(5, 1, 1).expand(5, 2, 1).clone()
    mask = torch.tensor([[c is not None] * 2 for c in captions])
    split = PreparedSplit(
        "test", [None] * 5, list(range(5)), [[i] for i in range(5)], features, mask, captions
    )
    shuffled = shuffled_images(split, seed=0)
    assert shuffled.captions[1] is None and not shuffled.image_mask[1].any()
    moved = [p for p in (0, 2, 3, 4) if shuffled.captions[p] != captions[p]]
    assert moved == [0, 2, 3, 4] and sorted(shuffled.captions[p] for p in moved) == sorted(
        captions[p] for p in moved
    )
    for post in moved:  # states travel with their caption
        assert shuffled.image_features[post, 0, 0] == captions.index(shuffled.captions[post])
    removed = removed_images(split)
    assert removed.captions == [None] * 5 and not removed.image_mask.any()
