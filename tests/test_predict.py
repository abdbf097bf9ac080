"""Prediction on new posts: the tweet tokenizer, the Extractor API, batch prediction files."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from mmib.cli import app
from mmib.data import load_dataset
from mmib.data.images import decode_image
from mmib.encoders.detector import Detection
from mmib.predict import Extractor, InputError, Span
from mmib.predict.batch import predict_file
from mmib.predict.decoding import classify_pairs
from mmib.predict.tokenize import tokenize_post
from tests.conftest import image_side_of

# ---- tokenizer ----------------------------------------------------------------------------------------


def test_tokenizer_keeps_tweet_units_whole():
    text = "RT @nasa_hq: Launch at 9:30 🚀👍🏽 #Artemis2 https://t.co/aB3x. L.A. 🇺🇸 don't"
    assert [t.text for t in tokenize_post(text)] == [
        "RT",
        "@nasa_hq",
        ":",
        "Launch",
        "at",
        "9:30",
        "🚀",
        "👍🏽",
        "#Artemis2",
        "https://t.co/aB3x",
        ".",
        "L.A.",
        "🇺🇸",
        "don't",
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"ab @#:/.,'-9 \t\né🚀👍🏽\u200d🇺🇸\u0301", "http://x.co/y", "www.q.org", "U.S."])
    ).map("".join)
)
def test_tokenizer_offsets_cover_every_visible_character(text):
    tokens = tokenize_post(text)
    covered = set()
    previous_end = 0
    for token in tokens:
        assert text[token.start : token.end] == token.text and token.start >= previous_end
        previous_end = token.end
        covered.update(range(token.start, token.end))
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())


# ---- Extractor: NER -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ner_extractor(tiny_ner_run):
    return Extractor.load(tiny_ner_run, detector=None)


def test_entities_carry_offsets_types_and_confidence(ner_extractor, synth_ner):
    posts = load_dataset(synth_ner).splits["test"][:20]
    labels = {label[2:] for label in ner_extractor.config.labels if label != "O"}
    found = 0
    for post in posts:
        text = " ".join(post.tokens)
        for entity in ner_extractor.predict(text):
            found += 1
            assert text[entity.start : entity.end] == entity.text
            assert entity.type in labels and 0.0 <= entity.confidence <= 1.0
    assert found > 0


def test_api_path_equals_the_evaluation_path(ner_extractor, tiny_ner_run, synth_ner):
    """Image-absent posts: Extractor.predict on the joined words gives the spans that evaluation decodes."""
    from mmib.metrics import extract_spans
    from mmib.training.batching import Collator, prepare_split
    from mmib.training.evaluation import predict_split

    dataset = load_dataset(synth_ner)
    split = prepare_split(dataset, "test", image_side_of(None, 32), progress=False)
    config = ner_extractor.config
    tags = predict_split(ner_extractor.model, Collator.for_model(ner_extractor.tokenizer, config), split, 8)
    compared = 0
    for post, predicted in zip(split.records[:40], tags[:40], strict=True):
        text = " ".join(post.tokens)
        if [t.text for t in tokenize_post(text)] != post.tokens:
            continue
        # one span type from the decoder to the API: the same words and type, the API adding the characters
        expected = [
            (s.type, s.words, " ".join(post.tokens[s.first : s.last])) for s in extract_spans(predicted)
        ]
        assert [(e.type, e.words, e.text) for e in ner_extractor.predict(text)] == expected
        compared += 1
    assert compared >= 20


def test_whole_image_features_equal_the_training_cache(ner_extractor, tiny_ner_run, synth_ner):
    from mmib.encoders.image import ImageFeatureCache

    path = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    cached = ImageFeatureCache(ner_extractor.image_side.encoder, tiny_ner_run.parent / "features")
    expected = cached.features([path], progress=False)[path]
    features, mask, _ = ner_extractor.image_side.inputs([decode_image(path)])
    assert mask[0].tolist() == [True, False, False, False]
    assert torch.equal(features[0, 0], expected)


def test_image_forms_agree(ner_extractor, synth_ner):
    path = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    text = "via Fezai tonight at the river"
    by_path = ner_extractor.predict(text, path)
    assert ner_extractor.predict(text, str(path)) == by_path
    assert ner_extractor.predict(text, path.read_bytes()) == by_path
    assert ner_extractor.predict(text, Image.open(path)) == by_path


class FakeDetector:
    name = "fake"

    def detect(self, image):
        w, h = image.size
        return [Detection("Person", 0.9, (0, 0, w / 2, h / 2)), Detection("Car", 0.8, (w / 2, h / 2, w, h))]


def test_a_plugged_detector_feeds_crops(tiny_ner_run, sample_image):
    extractor = Extractor.load(tiny_ner_run, detector=FakeDetector())
    result = extractor.analyze("a post about nothing", sample_image)
    assert [o.label for o in result.objects] == ["Person", "Car"] and result.image_used
    features, mask, _ = extractor.image_side.inputs([decode_image(sample_image)])
    assert mask[0].tolist() == [True, True, True, False]
    assert not torch.equal(features[0, 1], features[0, 0])


def test_missing_detector_is_said_once(tiny_ner_run, sample_image, caplog, monkeypatch):
    monkeypatch.setattr("mmib.predict.extractor.load_default_detector", lambda: None)
    with caplog.at_level(logging.WARNING, logger="mmib.predict.extractor"):
        extractor = Extractor.load(tiny_ner_run)  # the default detector, which is not installed here
        extractor.predict("first post", sample_image)
        extractor.predict("second post", sample_image)
        Extractor.load(tiny_ner_run, detector=None).predict("whole image by choice", sample_image)
    assert sum("no object detector" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("text", "image", "message"),
    [
        ("", None, "text is empty"),
        ("   \n\t ", None, "text is empty"),
        ("word " * 2000, None, "characters long; the limit is 5000"),
        ("fine text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "<bytes>"),
        ("fine text", b"plain words, not an image", "not an image Pillow can identify"),
        (None, None, "text must be a string"),
    ],
)
def test_bad_input_is_refused_clearly(ner_extractor, text, image, message):
    with pytest.raises(InputError, match=message):
        ner_extractor.predict(text, image)


def test_missing_image_file_is_refused(ner_extractor, tmp_path):
    with pytest.raises(InputError, match=r"nothing\.jpg: no such file"):
        ner_extractor.predict("a post", tmp_path / "nothing.jpg")


def test_long_posts_keep_every_word(ner_extractor):
    text = " ".join(f"word{i % 50}" for i in range(400))  # beyond the 128 sub-word window
    result = ner_extractor.analyze(text)
    assert len(result.tokens) == 400
    assert all(e.end <= len(text) for e in result.entities)


# ---- Extractor: MRE -----------------------------------------------------------------------------------


def test_relations_for_given_and_found_pairs(tiny_re_run, tiny_ner_run):
    extractor = Extractor.load(tiny_re_run, detector=None, ner=tiny_ner_run)
    text = "Fezai met Tifeele Restor at the river"
    given = extractor.relations(text, None, "Fezai", "Tifeele Restor", include_none=True)
    assert len(given) == 1 and given[0].relation in extractor.config.labels
    assert (given[0].head.start, given[0].tail.start) == (0, 10)
    by_span = extractor.relations(text, None, (0, 5), (10, 24), include_none=True)
    assert by_span[0].relation == given[0].relation and by_span[0].confidence == given[0].confidence
    every = extractor.relations(text, None, include_none=True)
    entities = extractor.ner.predict(text)
    assert len(every) == len(entities) * (len(entities) - 1)
    with pytest.raises(InputError, match="not a whole-word span"):
        extractor.relations(text, None, "Fez", "river")
    with pytest.raises(InputError, match="both head and tail"):
        extractor.relations(text, None, "Fezai")
    with pytest.raises(InputError, match="NER model"):
        extractor.ner.relations(text, None, "Fezai", "river")


def test_analyze_sees_each_image_once_for_entities_and_relations(
    tiny_re_run, tiny_ner_run, sample_image, monkeypatch
):
    class CountingDetector(FakeDetector):
        calls = 0

        def detect(self, image):
            CountingDetector.calls += 1
            return super().detect(image)

    # the tiny NER model's own entities are arbitrary: fix two, so that pairs are scored
    monkeypatch.setattr(
        "mmib.predict.results.extract_spans", lambda tags: [Span("PER", 0, 1), Span("PER", 2, 4)]
    )
    extractor = Extractor.load(tiny_re_run, detector=CountingDetector(), ner=tiny_ner_run)
    text = "Fezai met Tifeele Restor at the river"
    result = extractor.analyze(text, sample_image)
    assert [e.text for e in result.entities] == ["Fezai", "Tifeele Restor"]
    assert CountingDetector.calls == 1
    assert extractor.image_side.lock is extractor.ner.image_side.lock  # one detector, one lock
    # relations from the shared features equal those of a pass that computes its own
    image = decode_image(sample_image)
    pairs = [(result.entities[0], result.entities[1]), (result.entities[1], result.entities[0])]
    own = classify_pairs(extractor, text, result.tokens, image, pairs)
    shared = classify_pairs(
        extractor, text, result.tokens, image, pairs, extractor.image_side.inputs([image])[:2]
    )
    assert shared == own and len(own) == 2
    assert result.relations == sorted((r for r in own if r.relation != "None"), key=lambda r: -r.confidence)


# ---- batch prediction files ---------------------------------------------------------------------------


def _write_posts(tmp_path, sample_image):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "good.jpg").write_bytes(sample_image.read_bytes())
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not really a jpeg")
    lines = [
        json.dumps({"id": "a", "text": "Fezai won the cup", "image": "good.jpg"}),
        "{not json",
        json.dumps({"id": "b", "text": "", "image": None}),
        json.dumps({"id": "c", "text": "no picture here"}),
        json.dumps({"id": "d", "text": "picture is gone", "image": "missing.jpg"}),
        json.dumps({"id": "e", "text": "picture is broken", "image": "broken.jpg"}),
        json.dumps(["a list"]),
        json.dumps({"text": "no id given"}),
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_file_reports_bad_lines_and_resumes(ner_extractor, tmp_path, sample_image):
    posts = _write_posts(tmp_path, sample_image)
    output = tmp_path / "out.jsonl"
    counts = predict_file(ner_extractor, posts, output, tmp_path / "images", progress=False)
    assert counts.written == 4 and counts.image_missing == 1
    assert [s.split(": ", 1)[0] for s in counts.skipped] == [f"{posts}:{n}" for n in (2, 3, 6, 7)]
    assert "invalid JSON" in counts.skipped[0] and "text is empty" in counts.skipped[1]
    assert "not an image" in counts.skipped[2]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "c", "d", 8]  # ids keep their JSON type; default: the line number
    assert [r["image_used"] for r in rows] == [True, False, False, False]
    # a killed run leaves a cut line: it is removed and redone, nothing else is repeated
    output.write_text(output.read_text()[:-25])
    again = predict_file(ner_extractor, posts, output, tmp_path / "images", progress=False)
    assert again.already_done == 3 and again.written == 1
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["a", "c", "d", 8]


def test_predict_command_on_conll(tiny_ner_run, synth_ner, tmp_path):
    output = tmp_path / "out.jsonl"
    args = ["predict", str(tiny_ner_run), "--input", str(synth_ner / "test.txt"), "--output", str(output)]
    result = CliRunner().invoke(app, [*args, "--images", str(synth_ner / "synth_images"), "--no-detector"])
    assert result.exit_code == 0, result.output
    posts = load_dataset(synth_ner).splits["test"]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == len(posts) and rows[0]["id"] == posts[0].image_id
    assert f"{len(posts)} posts written" in result.output
    missing = sum(1 for p in posts if not (synth_ner / "synth_images" / f"{p.image_id}.jpg").exists())
    assert f"{missing} images not found" in result.output
    assert sum(r["image_used"] for r in rows) == len(posts) - missing


def test_predict_command_refuses_a_non_run(tmp_path):
    (tmp_path / "posts.jsonl").write_text('{"text": "x"}\n')
    args = [
        "predict",
        str(tmp_path),
        "--input",
        str(tmp_path / "posts.jsonl"),
        "--output",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "not a run folder" in result.output and "Traceback" not in result.output
