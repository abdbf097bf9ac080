"""The lowest L_ar any discriminator can reach on the synthetic benchmark (data/synth/ceiling.py)."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from typer.testing import CliRunner

from mmib.cli import app
from mmib.data.synth import SynthConfig
from mmib.data.synth.ceiling import alignment_ceiling, ceiling_of


def closed_form_ner(config: SynthConfig, types: int = 4) -> float:
    """Written out by hand from the generator's description: a text hints its type (text and noise posts)
    or is neutral (image posts); the scene shows the type's cue (text, image posts), or for noise posts
    nothing (half) or another type's cue."""
    text, noise = config.text_share, config.noise_share
    image = 1 - text - noise
    joint: dict[tuple, float] = {}
    for k in range(types):
        joint[("hint", k), ("cue", k)] = text / types
        joint[("hint", k), ("none",)] = noise / 2 / types
        for j in range(types):
            if j != k:
                joint[("hint", k), ("cue", j)] = noise / 2 / types / (types - 1)
        joint[("neutral",), ("cue", k)] = image / types
    text_marginal: Counter = Counter()
    image_marginal: Counter = Counter()
    for (t, v), p in joint.items():
        text_marginal[t] += p
        image_marginal[v] += p
    loss = 0.0
    for t, pt in text_marginal.items():
        for v, pv in image_marginal.items():
            p, q = joint.get((t, v), 0.0), pt * pv
            loss += 0.5 * (p * -math.log(p / (p + q)) if p else 0.0) + 0.5 * q * -math.log(q / (p + q))
    return loss


def test_the_ner_ceiling_drawn_from_the_planner_matches_the_closed_form():
    config = SynthConfig(task="ner", size="small")
    drawn = alignment_ceiling(config, posts=40_000)
    assert closed_form_ner(config) == pytest.approx(0.6148, abs=1e-4)
    assert drawn.bce == pytest.approx(closed_form_ner(config), abs=0.004)
    assert (drawn.text_signals, drawn.image_signals) == (5, 5)  # 4 hints + neutral; 4 cues + none
    assert drawn.bce < math.log(2)


def test_more_text_decided_posts_lower_the_ceiling():
    """Hints that agree with the scene are what a discriminator can use: more of them, lower loss."""
    few = alignment_ceiling(SynthConfig(task="ner", text_share=0.1, noise_share=0.2), posts=20_000)
    many = alignment_ceiling(SynthConfig(task="ner", text_share=0.6, noise_share=0.2), posts=20_000)
    assert many.bce < few.bce - 0.02
    assert many.mutual_information > few.mutual_information


def test_the_mre_ceiling_uses_relations_and_entity_types():
    drawn = alignment_ceiling(SynthConfig(task="re", size="small"), posts=20_000)
    assert drawn.image_signals == 7  # six relations' cue sets and an empty scene
    assert 0.3 < drawn.bce < math.log(2)


def test_independent_signals_give_chance_and_identical_ones_the_least_loss():
    independent = Counter({(t, v): 25 for t in "ab" for v in "xy"})
    assert ceiling_of(independent, "ner", 100).bce == pytest.approx(math.log(2))
    assert ceiling_of(independent, "ner", 100).mutual_information == pytest.approx(0.0)
    same = Counter({("a", "x"): 50, ("b", "y"): 50})
    # D* = 2/3 on matched cells and 0 on the rest: 0.5 ln 1.5 + 0.25 ln 3
    assert ceiling_of(same, "ner", 100).bce == pytest.approx(0.5 * math.log(1.5) + 0.25 * math.log(3))
    assert ceiling_of(same, "ner", 100).mutual_information == pytest.approx(math.log(2))


def test_curves_put_each_run_s_l_ar_beside_the_ceiling(tiny_ner_run, synth_ner, tmp_path):
    result = CliRunner().invoke(
        app,
        ["analyze", "curves", str(tiny_ner_run), "--out", str(tmp_path / "c.png"), "--ceiling-posts", "5000"],
    )
    assert result.exit_code == 0, result.output
    last = json.loads((tiny_ner_run / "metrics.jsonl").read_text().splitlines()[-1])["train"]["alignment"]
    ceiling = alignment_ceiling(
        SynthConfig(**json.loads((synth_ner / "synth_summary.json").read_text())["config"]), 5000
    )
    assert "| L_ar (last epoch) | L_ar ceiling | above ceiling |" in result.output
    assert f"| {last:.4f} | {ceiling.bce:.4f} | {last - ceiling.bce:+.4f} |" in result.output
