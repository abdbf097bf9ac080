"""The lowest L_ar any discriminator can reach on the synthetic benchmark: the data's own ceiling.

L_ar (eq. 24-26, ``model/alignment.py``) is the binary cross-entropy of D averaged over a batch's positives
(a post's text with its own image) and as many negatives (the text with another post's image). However
D is built, it can only use what a text and an image share. On the synthetic benchmark that is what the
generator draws before writing either: the type (MNER) or relation and entity types (MRE) the words hint,
or nothing (a neutral context), against the cue objects drawn in the scene. Distractor objects, names and
tweet noise are drawn independently of the scene's cues and carry nothing about the pairing.

Positives come from the joint p(t, v) and negatives from the product p(t) p(v) (a random other post). The
best discriminator is D*(t, v) = p(t, v) / (p(t, v) + p(t) p(v)), and its loss, averaged over as many
positives as negatives, is ln 2 - JS(p(t, v) || p(t) p(v)) in nats. A D at this value has learnt
everything there is to learn; ln 2 is the loss of a D that cannot tell the pairs apart.

Why Monte Carlo over the generator's own planner rather than a closed form: the planner is the definition
of the data (its shares, its noise scenes, the relations' cue lists); drawing its posts with their true
latents computes the ceiling of exactly that data, and a closed form would be a second copy that can
drift. The plug-in estimate over 200,000 posts has a few dozen cells, so its sampling error is small (a
test checks it against the closed form for synthetic NER: 0.6148).

Caveat: training batches are bucketed by length, so a row's in-batch negative (the next post in the batch)
has a text of similar length; if length carries the hint, such negatives are slightly closer to their
positives than random ones, and the reachable loss lies a little above this ceiling, not below.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mmib.data.synth.generator import SynthConfig, planner_for
from mmib.errors import SettingError

DEFAULT_POSTS = 200_000


@dataclass(frozen=True)
class AlignmentCeiling:
    task: str
    posts: int  # posts drawn (those without an image take no part in L_ar, as in training)
    bce: float  # the lowest mean BCE of eq. (25) any discriminator can reach on this data
    mutual_information: float  # I(text signal; scene cues) in nats
    text_signals: int  # distinct values of what the words say about the scene
    image_signals: int  # distinct cue sets

    @property
    def chance(self) -> float:
        return math.log(2)

    def line(self) -> str:
        return (
            f"L_ar ceiling (synthetic {self.task}, {self.posts:,} posts drawn): {self.bce:.4f} "
            f"(ln 2 = {self.chance:.4f}; I(text; cues) = {self.mutual_information:.3f} nats)"
        )


def alignment_ceiling(config: SynthConfig, posts: int = DEFAULT_POSTS) -> AlignmentCeiling:
    """The ceiling for the benchmark ``config`` describes (its task, size, shares and seed)."""
    planner = planner_for(config)
    pairs: Counter[tuple[str, str]] = Counter()
    for index in range(posts):
        post = planner.plan("train", index)
        if post.image_present:
            pairs[post.text_signal, " ".join(sorted(post.cues))] += 1
    return ceiling_of(pairs, config.task, posts)


def ceiling_of(pairs: Counter[tuple[str, str]], task: str, posts: int) -> AlignmentCeiling:
    """The best balanced BCE and I(T; V) of the empirical joint ``{(text signal, cues): count}``."""
    total = sum(pairs.values())
    text: Counter[str] = Counter()
    image: Counter[str] = Counter()
    for (t, v), count in pairs.items():
        text[t] += count
        image[v] += count
    bce = information = 0.0
    for t, t_count in text.items():
        for v, v_count in image.items():
            joint = pairs.get((t, v), 0) / total
            product = t_count * v_count / total**2
            # D* = joint / (joint + product); half the pairs are positives, half negatives
            if joint > 0:
                bce += 0.5 * joint * math.log((joint + product) / joint)
                information += joint * math.log(joint / product)
            bce += 0.5 * product * math.log((joint + product) / product)
    return AlignmentCeiling(task, posts, bce, information, len(text), len(image))


def ceiling_of_dataset(folder: Path | str, posts: int = DEFAULT_POSTS) -> AlignmentCeiling | None:
    """The ceiling of a synthetic benchmark folder (its ``synth_summary.json`` names the generator's
    settings); None for any other dataset, whose latents nobody knows."""
    summary = Path(folder) / "synth_summary.json"
    if not summary.is_file():
        return None
    return _cached_ceiling(str(summary.resolve()), posts)


@functools.lru_cache(maxsize=8)
def _cached_ceiling(summary: str, posts: int) -> AlignmentCeiling:
    """Several runs of one benchmark (seeds, variants) share one computation (some seconds)."""
    try:
        config = SynthConfig(**json.loads(Path(summary).read_text(encoding="utf-8"))["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise SettingError(f"{summary}: not a synthetic benchmark summary ({error!r})") from None
    return alignment_ceiling(config, posts)
