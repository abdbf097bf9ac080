"""Entity-marker input for MRE: the marking itself, the training batch, and the same relation at
prediction time as in evaluation."""

from __future__ import annotations

import pytest

from mmib.data import load_dataset
from mmib.encoders.entity_markers import HEAD_MARKERS, TAIL_MARKERS, mark_entities
from tests.conftest import image_side_of


def test_markers_wrap_head_and_tail_and_point_at_the_openings():
    words = ["Obama", "met", "the", "Pope", "in", "Rome"]
    marked, head, tail = mark_entities(words, (3, 4), (0, 1))
    assert marked == ["<", "Obama", ">", "met", "the", "«", "Pope", "»", "in", "Rome"]
    assert marked[head[0]] == HEAD_MARKERS[0] and head == (5, 6)
    assert marked[tail[0]] == TAIL_MARKERS[0] and tail == (0, 1)


def test_nested_and_touching_spans_stay_well_formed():
    marked, head, tail = mark_entities(["New", "York", "City"], (0, 3), (0, 2))
    assert marked == ["«", "<", "New", "York", ">", "City", "»"]
    assert (head, tail) == ((0, 1), (1, 2))
    marked, _, _ = mark_entities(["a", "b"], (0, 1), (1, 2))
    assert marked == ["«", "a", "»", "<", "b", ">"]


def test_a_span_outside_the_words_is_refused():
    with pytest.raises(ValueError, match="tail span"):
        mark_entities(["a", "b"], (0, 1), (1, 3))


@pytest.fixture(scope="module")
def marked_run(make_tiny_run, synth_re, tmp_path_factory):
    out = tmp_path_factory.mktemp("markers") / "run"
    return make_tiny_run(synth_re, out, text_only=True, entity_markers=True)


def test_every_pair_is_its_own_marked_row(marked_run, synth_re):
    from mmib.model.mmib import from_pretrained
    from mmib.training.batching import Collator, prepare_split

    model, tokenizer = from_pretrained(marked_run)
    assert model.config.entity_markers
    split = prepare_split(load_dataset(synth_re), "test", image_side_of(None, 0), progress=False)
    posts = [0, 1, 2]
    batch = Collator.for_model(tokenizer, model.config)(split, posts)
    records = [split.records[r] for p in posts for r in split.post_records[p]]
    assert batch.text.gather.size(0) == len(records)
    assert batch.pair_post.tolist() == list(range(len(records)))
    assert batch.word_lengths.tolist() == [len(r.tokens) + 4 for r in records]
    assert (batch.heads[:, 1] - batch.heads[:, 0] == 1).all()


def test_prediction_marks_pairs_as_evaluation_does(marked_run, synth_re):
    """Extractor.relations on the joined words gives the relation that evaluation predicts."""
    from mmib.predict import Extractor
    from mmib.predict.tokenize import tokenize_post
    from mmib.training.batching import Collator, prepare_split
    from mmib.training.evaluation import predict_split

    extractor = Extractor.load(marked_run, detector=None)
    split = prepare_split(load_dataset(synth_re), "test", image_side_of(None, 0), progress=False)
    expected = predict_split(
        extractor.model, Collator.for_model(extractor.tokenizer, extractor.config), split, 8
    )
    compared = 0
    for record, relation in zip(split.records[:30], expected[:30], strict=True):
        text = " ".join(record.tokens)
        tokens = tokenize_post(text)
        if [t.text for t in tokens] != record.tokens:
            continue

        def chars(span, tokens=tokens):
            return tokens[span.first].start, tokens[span.last - 1].end

        found = extractor.relations(text, head=chars(record.head), tail=chars(record.tail))
        assert [r.relation for r in found] == [relation]
        compared += 1
    assert compared >= 15
