"""Captions as the image side (issue: real benchmarks with captions) and the caption-pair baseline."""

from __future__ import annotations

import pytest
import torch

from mmib.data import load_dataset
from mmib.data.captions import CaptionCounts, CaptionSet, is_repeated_word_list
from mmib.data.errors import DataFormatError
from tests.conftest import shared_path


def write_captions(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_caption_file_marks_shared_and_repeated_word_captions_degenerate(tmp_path):
    lines = [f"{i}.jpg :a man is standing on a skateboard in the snow" for i in range(5)]
    lines += ["10.jpg :person, person, person, person", "11.jpg :the chicago bears play the packers"]
    captions = CaptionSet.read(write_captions(tmp_path / "c.txt", lines), shared_limit=5)
    counts = CaptionCounts()
    found = [captions.lookup(image_id, counts) for image_id in ("0", "10", "11", "12", None)]
    assert found == [None, None, "the chicago bears play the packers", None, None]
    assert (counts.used, counts.degenerate, counts.missing) == (1, 2, 2)
    assert counts.line("test") == (
        "captions (test): 1 used, 2 degenerate (treated as absent: 1 shared, 1 repeated word list), 2 missing"
    )
    # below the limit a shared caption is an honest repeat and stays
    assert CaptionSet.read(tmp_path / "c.txt", shared_limit=6).lookup("0") is not None
    assert is_repeated_word_list("dog, dog, dog") and not is_repeated_word_list("dog, cat, dog")


def test_caption_file_errors_name_file_and_line(tmp_path):
    path = write_captions(tmp_path / "bad.txt", ["1.jpg :a dog", "2.jpg a cat without separator"])
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: no caption separator"):
        CaptionSet.read(path)
    with pytest.raises(FileNotFoundError, match="no such caption file"):
        CaptionSet.read(tmp_path / "absent.txt")


def test_real_twitter2017_captions_degenerate_counts():
    """The Twitter-2017 placeholder caption (358 images) and the repeated-word lists are treated as absent."""
    captions = CaptionSet.read(shared_path("data/image-captions/blip2/twitter2017.txt"))
    placeholder = [
        k for k, c in captions.captions.items() if c == "a man is standing on a skateboard in the snow"
    ]
    assert len(placeholder) == 358 and set(placeholder) <= captions.degenerate
    dataset = load_dataset(shared_path("data/twitter2017"))
    totals = CaptionCounts()
    for records in dataset.splits.values():
        for post in records:
            captions.lookup(post.image_id, totals)
    assert totals.missing == 0 and totals.used + totals.degenerate == 3373 + 723 + 723
    assert 358 + 10 <= totals.degenerate < 500


def test_pair_segment_leaves_word_positions_and_labels_alone(tiny_encoder):
    from transformers import AutoTokenizer

    from mmib.encoders.text import WordTokenizer

    tokenizer = WordTokenizer(AutoTokenizer.from_pretrained(tiny_encoder), max_length=24)
    words = [["kobe", "at", "staples"], ["a"] * 30]
    alone = tokenizer(words)
    paired = tokenizer(words, ["a man with a ball", "long caption " * 10])
    assert torch.equal(alone.gather, paired.gather) and torch.equal(alone.mask, paired.mask)
    flat_alone, flat_pair = alone.input_ids.flatten(), paired.input_ids.reshape(len(paired.input_ids), -1)
    width = paired.input_ids.size(1)
    for row in range(len(words)):  # every gathered position holds the same sub-word with or without a caption
        picked = alone.gather[row][alone.mask[row]]
        rows, cols = picked // alone.input_ids.size(1), picked % alone.input_ids.size(1)
        assert torch.equal(flat_alone[picked], flat_pair[rows, cols])
    assert paired.input_ids.size(1) <= 24 and width <= 24
    assert (
        paired.token_type_ids[0].tolist().count(1)
        == len(tokenizer.tokenizer("a man with a ball")["input_ids"]) - 1
    )
    assert alone.token_type_ids is None


@pytest.fixture(scope="module")
def synth_captions(synth_ner, tmp_path_factory):
    """A caption per synthetic post: the decisive object's category for half, a placeholder for the rest."""
    dataset = load_dataset(synth_ner)
    lines = []
    for split in dataset.splits.values():
        for number, post in enumerate(split):
            caption = "a man is holding a trophy" if number % 2 else "a city at night"
            lines.append(f"{post.image_id}.jpg :{caption}")
    return write_captions(tmp_path_factory.mktemp("captions") / "captions.txt", sorted(set(lines)))


@pytest.mark.parametrize("variant", ["mmib-captions", "text-caption-pair"])
def test_caption_runs_train_evaluate_and_predict_with_caption(
    variant, tiny_encoder, synth_ner, synth_captions, tmp_path
):
    from mmib.predict import Extractor
    from mmib.processing import PostInput
    from mmib.training import TrainConfig, Trainer
    from mmib.training.evaluate_run import evaluate_run

    pair = variant == "text-caption-pair"
    settings = TrainConfig.create(
        data=str(synth_ner),
        output_dir=str(tmp_path / "run"),
        text_encoder=tiny_encoder,
        caption_encoder=tiny_encoder,
        captions=str(synth_captions),
        image_source="pixels" if pair else "captions",
        text_only=pair,
        caption_pair=pair,
        feature_cache=str(tmp_path / "features"),
        epochs=1,
        batch_size=16,
        max_train_samples=32,
        patience=0,
        logvar_head="linear",
    )
    summary = Trainer(settings, progress=False).fit()
    assert summary["captions"]["train"].startswith("captions (train): ")
    result = evaluate_run(settings.output_dir, "dev", progress=False)
    assert result["variant"] == variant and "used" in result["captions"]

    extractor = Extractor.load(settings.output_dir, detector=None)
    text = "kobe bryant at staples center"
    with_caption = extractor.analyze(text, caption="a man is holding a trophy")
    without = extractor.analyze(text)
    assert with_caption.image_used is (not pair) and without.image_used is False
    # the caption reaches the network: the CRF marginals differ with and without it
    caption = "a man is holding a trophy"
    words = [t.text for t in with_caption.tokens]
    batch_with = extractor.batch(
        [PostInput(words, caption)], *extractor.image_side.inputs([None], None, [caption])[:2]
    )
    batch_without = extractor.batch(
        [PostInput(words)], *extractor.image_side.inputs([None], None, [None])[:2]
    )
    with torch.no_grad():
        fused_with = extractor.model.encode(batch_with).fused
        fused_without = extractor.model.encode(batch_without).fused
    assert not torch.allclose(fused_with, fused_without)


def test_caption_states_in_prediction_equal_the_training_cache(tiny_encoder, tmp_path):
    from mmib.encoders.captions import CaptionEncoder, CaptionFeatureCache

    encoder = CaptionEncoder(tiny_encoder)
    cache = CaptionFeatureCache(encoder, tmp_path)
    first = cache.features(["a dog on a beach", "two men"], progress=False)
    again = CaptionFeatureCache(encoder, tmp_path)
    reread = again.features(["two men", "a dog on a beach"], progress=False)
    assert again.from_cache == 2 and again.computed == 0
    fresh = encoder(["a dog on a beach"])[0].to(torch.float16).float()
    assert torch.equal(first["a dog on a beach"], reread["a dog on a beach"])
    assert torch.equal(fresh, reread["a dog on a beach"])


def test_caption_categories_split_posts_by_whether_the_caption_names_a_gold_entity():
    from mmib.analysis.image_use import caption_categories
    from mmib.data.records import NerPost
    from mmib.training.batching import PreparedSplit

    posts = [
        NerPost(index=0, tokens=["Kobe", "Bryant", "scores"], tags=["B-PER", "I-PER", "O"], image_id="1"),
        NerPost(index=1, tokens=["Lakers", "win"], tags=["B-ORG", "O"], image_id="2"),
        NerPost(index=2, tokens=["Paris"], tags=["B-LOC"], image_id="3"),
    ]
    captions = ["kobe bryant dunks a ball", "a crowd in an arena", None]
    prepared = PreparedSplit(
        "test",
        posts,
        [0, 1, 2],
        [[0], [1], [2]],
        torch.zeros(3, 1, 4),
        torch.ones(3, 1, dtype=torch.bool),
        captions,
    )
    assert caption_categories(prepared) == {0: "names", 1: "silent", 2: "absent"}
