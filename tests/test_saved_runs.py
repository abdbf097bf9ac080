"""Runs saved by earlier code still load and predict what they predicted then.

``tests/fixtures/saved-runs`` holds tiny run folders trained by the commit named in its ``expected.json``, and
what ``Extractor`` returned for three posts at that commit (``tests/fixtures/make_saved_runs.py`` wrote both).
Today's code must load every run and return the same entities, relations and confidences (rounded to 4
decimals as the API returns them): NER with image features, the caption pair, MRE with pooled pairs and with
entity markers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmib.predict import Extractor

SAVED = Path(__file__).parent / "fixtures" / "saved-runs"
EXPECTED = json.loads((SAVED / "expected.json").read_text())
CAPTION = "a man is holding a trophy"
PAIRS = [("Kobe Bryant", "Staples Center"), ("Fezai", "river"), ("@nba", "night")]


@pytest.mark.parametrize("name", sorted(EXPECTED["runs"]))
def test_a_run_saved_earlier_predicts_what_it_predicted(name, synth_ner, synth_re):
    saved = EXPECTED["runs"][name]
    data = synth_ner if saved["task"] == "ner" else synth_re  # the same generator seed as the fixture's
    images = [data / image for image in saved["images"]]
    extractor = Extractor.load(SAVED / name, detector=None)
    posts = [(text, image, CAPTION) for text, image in zip(EXPECTED["texts"], images, strict=True)]
    if saved["task"] == "ner":
        found = [result.as_dict() for result in extractor.analyze_many(posts)]
        assert any(post["entities"] for post in found)  # the fixture checks something
    else:
        found = [
            [
                r.as_dict()
                for r in extractor.relations(text, image, head, tail, include_none=True, caption=caption)
            ]
            for (text, image, caption), (head, tail) in zip(posts, PAIRS, strict=True)
        ]
    assert found == saved["predictions"], f"{name}: predictions differ from those of {EXPECTED['commit']}"
