"""mmib.metrics against seqeval 1.2.2 (default mode) and hand-computed cases."""

from __future__ import annotations

import random
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from mmib.metrics import extract_spans, ner_scores, re_scores
from mmib.spans import Span

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-OTHER", "I-OTHER"]


def _seqeval(gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings when a side has no entity
        return (
            precision_score(gold, pred),
            recall_score(gold, pred),
            f1_score(gold, pred),
            classification_report(gold, pred, output_dict=True, zero_division=0),
        )


def _assert_equal_to_seqeval(gold, pred):
    ours = ner_scores(gold, pred)
    precision, recall, f1, report = _seqeval(gold, pred)
    assert ours.precision == pytest.approx(precision, abs=1e-12)
    assert ours.recall == pytest.approx(recall, abs=1e-12)
    assert ours.f1 == pytest.approx(f1, abs=1e-12)
    averages = {"micro avg", "macro avg", "weighted avg"}
    assert set(ours.per_type) == set(report) - averages
    for entity_type, figures in ours.per_type.items():
        assert figures.precision == pytest.approx(report[entity_type]["precision"], abs=1e-12)
        assert figures.recall == pytest.approx(report[entity_type]["recall"], abs=1e-12)
        assert figures.f1 == pytest.approx(report[entity_type]["f1-score"], abs=1e-12)
        assert figures.support == report[entity_type]["support"]


def test_spans_follow_conlleval_rules():
    assert extract_spans(["B-PER", "I-PER", "O", "B-LOC"]) == [Span("PER", 0, 2), Span("LOC", 3, 4)]
    # An orphan I- starts an entity; an I- of another type splits one.
    assert extract_spans(["O", "I-PER", "I-PER"]) == [Span("PER", 1, 3)]
    assert extract_spans(["B-PER", "I-LOC"]) == [Span("PER", 0, 1), Span("LOC", 1, 2)]
    assert extract_spans(["B-PER", "B-PER"]) == [Span("PER", 0, 1), Span("PER", 1, 2)]
    assert extract_spans([]) == []


def test_hand_computed_ner_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-PER"]]
    scores = ner_scores(gold, pred)
    # gold: PER(0,2) LOC(3,4) ORG(0,1); pred: PER(0,2) ORG(3,4) ORG(0,1) PER(1,2); correct: PER, ORG(0,1)
    assert (scores.micro.correct, scores.micro.predicted, scores.micro.support) == (2, 4, 3)
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores.per_type["LOC"].recall == 0.0 and scores.per_type["LOC"].support == 1
    assert scores.per_type["ORG"].precision == pytest.approx(0.5)


def test_empty_predictions_score_zero_not_nan():
    scores = ner_scores([["B-PER"]], [["O"]])
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sequence 0"):
        ner_scores([["O", "O"]], [["O"]])


@pytest.mark.slow
def test_equals_seqeval_on_10000_random_pairs():
    rng = random.Random(1234)
    for _ in range(10_000):
        length = rng.randint(1, 12)
        # Bias towards O so sequences hold a realistic mix of entities, orphans and type changes.
        weights = [6] + [1] * (len(TAGS) - 1)
        gold = rng.choices(TAGS, weights, k=length)
        pred = list(gold) if rng.random() < 0.3 else rng.choices(TAGS, weights, k=length)
        if rng.random() < 0.5:  # small edits of the gold sequence: the realistic case
            for position in rng.sample(range(length), k=min(length, rng.randint(1, 2))):
                pred[position] = rng.choice(TAGS)
        _assert_equal_to_seqeval([gold], [pred])


tag_sequences = st.lists(st.sampled_from(TAGS), min_size=1, max_size=15)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(tag_sequences, st.data()), min_size=1, max_size=6))
def test_equals_seqeval_on_corpora(pairs):
    gold, pred = [], []
    for sequence, data in pairs:
        gold.append(sequence)
        pred.append(
            data.draw(st.lists(st.sampled_from(TAGS), min_size=len(sequence), max_size=len(sequence)))
        )
    _assert_equal_to_seqeval(gold, pred)


@settings(max_examples=200, deadline=None)
@given(tag_sequences)
def test_perfect_prediction_is_f1_one_when_entities_exist(tags):
    scores = ner_scores([tags], [tags])
    assert scores.f1 == (1.0 if extract_spans(tags) else 0.0)


def test_hand_computed_re_scores():
    gold = ["None", "/per/per/peer", "/per/org/member_of", "None", "/per/per/peer"]
    pred = ["/per/per/peer", "/per/per/peer", "None", "None", "/per/per/couple"]
    scores = re_scores(gold, pred)
    # predicted non-None: 3, correct non-None: 1, gold non-None: 3
    assert (scores.correct, scores.predicted, scores.gold) == (1, 3, 3)
    assert scores.precision == pytest.approx(1 / 3)
    assert scores.recall == pytest.approx(1 / 3)
    assert scores.accuracy == pytest.approx(2 / 5)  # the None-None agreement counts here only


def test_re_none_hits_never_count():
    scores = re_scores(["None", "None"], ["None", "None"])
    assert (scores.precision, scores.recall, scores.f1, scores.accuracy) == (0.0, 0.0, 0.0, 1.0)


relations = st.sampled_from(["None", "a", "b", "c"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(relations, relations), min_size=1, max_size=40))
def test_re_scores_match_definition(pairs):
    gold, pred = zip(*pairs, strict=True)
    scores = re_scores(list(gold), list(pred))
    correct = sum(g == p and p != "None" for g, p in pairs)
    n_pred = sum(p != "None" for p in pred)
    n_gold = sum(g != "None" for g in gold)
    assert scores.precision == (correct / n_pred if n_pred else 0.0)
    assert scores.recall == (correct / n_gold if n_gold else 0.0)
    assert 0.0 <= scores.f1 <= 1.0
    assert (
        min(scores.precision, scores.recall) - 1e-12
        <= scores.f1
        <= max(scores.precision, scores.recall) + 1e-12
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(relations, relations), min_size=1, max_size=40))
def test_per_relation_scores_match_scikit_learn(pairs):
    """Per-relation P/R/F1 (the caption-use table's eight most frequent relations) equal scikit-learn's
    one-label scores; ``None`` never gets a row."""
    from sklearn.metrics import precision_recall_fscore_support

    gold, pred = (list(x) for x in zip(*pairs, strict=True))
    scores = re_scores(gold, pred)
    assert "None" not in scores.per_type
    assert set(scores.per_type) == (set(gold) | set(pred)) - {"None"}
    for relation, found in scores.per_type.items():
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=[relation], zero_division=0)
        assert (found.precision, found.recall) == pytest.approx((p[0], r[0]))
        assert found.f1 == pytest.approx(f[0]) and found.support == gold.count(relation)
    assert set(scores.as_dict()["per_type"]) == set(scores.per_type)
