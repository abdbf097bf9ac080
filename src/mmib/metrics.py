"""Field-standard scores for MNER and MRE.

* ``ner_scores``: micro precision/recall/F1 over (type, start, end) spans, equal to seqeval 1.2.2 in its
  default (conlleval-like) mode, including its handling of ill-formed sequences: an ``I-`` after ``O``
  or after another type starts an entity (Twitter-2015 has 321 such tags).
* ``re_scores``: the micro P/R/F1 of the HVPNeT/MKGformer evaluation that the MNRE tables use, where
  instances labelled ``None`` count only as wrong predictions or missed gold, never as hits.

Why by hand rather than calling seqeval: the span extraction is needed on its own (prediction files,
error analysis, entity offsets in the API), and it is a dozen lines; seqeval stays as the test oracle
(tests/test_metrics.py checks equality on 10,000+ random sequence pairs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmib.spans import Span


def _split_tag(tag: str) -> tuple[str, str]:
    """``B-PER`` -> (``B``, ``PER``); ``O`` -> (``O``, ``_``), seqeval's placeholder type."""
    if tag in ("O", "B", "I", "E", "S"):
        return tag, "_"
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type or "_"


def _ends_chunk(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I") and prefix in ("B", "S", "O"):
        return True
    return prev_prefix not in ("O", ".") and prev_type != entity_type


def _starts_chunk(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    if prefix in ("B", "S"):
        return True
    if prev_prefix in ("E", "S", "O") and prefix in ("E", "I"):
        return True
    return prefix not in ("O", ".") and prev_type != entity_type


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """Spans of one tag sequence under the conlleval chunk rules that seqeval's default mode uses.

    Accepts BIO and BIOES prefixes. Returns word spans ``[first, last)`` in order.
    """
    spans: list[Span] = []
    prev_prefix, prev_type, begin = "O", "_", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, entity_type = _split_tag(tag)
        if _ends_chunk(prev_prefix, prefix, prev_type, entity_type):
            spans.append(Span(prev_type, begin, i))
        if _starts_chunk(prev_prefix, prefix, prev_type, entity_type):
            begin = i
        prev_prefix, prev_type = prefix, entity_type
    return spans


@dataclass
class PRF:
    """Precision, recall and F1 with the counts behind them."""

    precision: float
    recall: float
    f1: float
    support: int  # gold items counted
    predicted: int = 0
    correct: int = 0

    @classmethod
    def from_counts(cls, correct: int, predicted: int, gold: int) -> PRF:
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, gold, predicted, correct)

    def as_dict(self) -> dict[str, float | int]:
        return dict(vars(self))


@dataclass
class NerScores:
    micro: PRF
    per_type: dict[str, PRF] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.micro.precision

    @property
    def recall(self) -> float:
        return self.micro.recall

    @property
    def f1(self) -> float:
        return self.micro.f1

    def as_dict(self) -> dict:
        return {**self.micro.as_dict(), "per_type": {t: s.as_dict() for t, s in self.per_type.items()}}


def ner_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> NerScores:
    """Micro and per-type P/R/F1 over entity spans of word-level tag sequences (one list per post).

    Equal to ``seqeval.metrics`` (1.2.2, default mode) ``precision_score``, ``recall_score``,
    ``f1_score`` and ``classification_report`` on the same lists.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sequences but {len(pred)} predicted")
    gold_spans: set[tuple[int, Span]] = set()
    pred_spans: set[tuple[int, Span]] = set()
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sequence {i}: {len(g)} gold tags but {len(p)} predicted")
        gold_spans.update((i, s) for s in extract_spans(g))
        pred_spans.update((i, s) for s in extract_spans(p))
    correct = gold_spans & pred_spans
    by_type = lambda spans: Counter(s.type for _, s in spans)  # noqa: E731
    n_gold, n_pred, n_correct = by_type(gold_spans), by_type(pred_spans), by_type(correct)
    per_type = {
        t: PRF.from_counts(n_correct[t], n_pred[t], n_gold[t]) for t in sorted(set(n_gold) | set(n_pred))
    }
    return NerScores(PRF.from_counts(len(correct), len(pred_spans), len(gold_spans)), per_type)


@dataclass
class ReScores:
    precision: float
    recall: float
    f1: float
    accuracy: float
    correct: int
    predicted: int
    gold: int
    per_type: dict[str, PRF] = field(default_factory=dict)  # per relation (None excluded), as for NER

    def as_dict(self) -> dict:
        plain = {k: v for k, v in vars(self).items() if k != "per_type"}
        return {**plain, "per_type": {r: s.as_dict() for r, s in self.per_type.items()}}


def re_scores(gold: Sequence[str], pred: Sequence[str], none_label: str = "None") -> ReScores:
    """Micro P/R/F1 over non-``None`` relations, as in the HVPNeT/MKGformer MNRE evaluation.

    P = correct non-None predictions / non-None predictions; R = correct non-None predictions /
    non-None gold; accuracy counts every instance, ``None`` included.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold relations but {len(pred)} predicted")
    correct = sum(g == p != none_label for g, p in zip(gold, pred, strict=True))
    predicted = sum(p != none_label for p in pred)
    n_gold = sum(g != none_label for g in gold)
    prf = PRF.from_counts(correct, predicted, n_gold)
    accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0
    n_gold_by, n_pred_by = Counter(gold), Counter(pred)
    n_correct_by = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    per_type = {
        r: PRF.from_counts(n_correct_by[r], n_pred_by[r], n_gold_by[r])
        for r in sorted((set(n_gold_by) | set(n_pred_by)) - {none_label})
    }
    return ReScores(prf.precision, prf.recall, prf.f1, accuracy, correct, predicted, n_gold, per_type)
