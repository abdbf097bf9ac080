"""The synthetic multimodal benchmark: posts whose answer is decided by the text, by the image, or by
the text despite an unrelated image (modality noise), written in the real benchmarks' formats.

Categories of a post (``category`` in ``synth_meta.jsonl``):

* ``text``: the context words decide the answer; the image agrees with them.
* ``image``: the context is neutral and the name is type-ambiguous (NER) or the entity pair admits
  several relations (MRE); the scene's visible object category decides.
* ``noise``: the context decides; the image shows another category's object or none (modality noise).

A share of posts has no image file at all (``image_present: false``), as in the real releases.
The generator also scores two oracles on every split so the best text-only and the best multimodal
scores are known: the text-only oracle answers text-decided items correctly and otherwise predicts the
most frequent training answer for the same text evidence (name under a neutral context for NER, entity
type pair under a neutral context for MRE); the multimodal oracle answers correctly whenever the text
or the present image decides, and like the text-only oracle otherwise.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

import mmib.data.synth.lexicon as lexicon
from mmib.data.synth.scenes import DISTRACTORS, render_scene
from mmib.errors import SettingError
from mmib.metrics import ner_scores, re_scores

SIZES = {
    # (train, dev, test): full sizes are Twitter-2015's posts and MNRE's instances
    "ner": {"small": (400, 100, 100), "full": (4000, 1000, 3257)},
    "re": {"small": (400, 100, 100), "full": (12247, 1624, 1614)},
}
SPLITS = ("train", "dev", "test")
FOLDER_SPLIT = {"train": "train", "dev": "val", "test": "test"}  # image folders use val, as released


@dataclass
class SynthConfig:
    task: str = "ner"  # "ner" or "re"
    size: str = "small"  # "small" or "full"
    seed: int = 13
    text_share: float = 0.3
    noise_share: float = 0.2  # the remaining share is image-decided
    missing_image_share: float = 0.02
    ambiguous_names: int | None = None  # NER name pool; default 40 (small) or 150 (full)
    workers: int = 2

    def split_sizes(self) -> tuple[int, int, int]:
        return SIZES[self.task][self.size]


@dataclass
class Post:
    """One planned post: text, labels, scene and its category, before any image is drawn."""

    split: str
    index: int
    image_id: str
    tokens: list[str]
    category: str
    cues: list[str]
    distractors: list[str]
    image_present: bool
    text_determines: bool
    evidence: str  # the text-only evidence key, for the text-only oracle
    # what the words say about the scene: the hinted type (NER) or relation and entity types (MRE), or
    # "neutral"; the L_ar ceiling (synth/ceiling.py) pairs it with the cues drawn
    text_signal: str = ""
    tags: list[str] = field(default_factory=list)  # NER
    head: tuple[int, int] | None = None  # MRE
    tail: tuple[int, int] | None = None
    relation: str | None = None
    objects: list = field(default_factory=list)  # (motif, box) filled after rendering

    @property
    def image_determines(self) -> bool:
        return self.image_present and self.category != "noise"


def _category(rng: random.Random, config: SynthConfig) -> str:
    draw = rng.random()
    if draw < config.text_share:
        return "text"
    return "noise" if draw < config.text_share + config.noise_share else "image"


def _fill(template: str, slots: dict[str, list[str]]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Expand ``{E}``-style slots into name tokens; return tokens and each slot's [start, end)."""
    tokens: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    for word in template.split():
        key = word[1:-1] if word.startswith("{") and word.endswith("}") else None
        if key in slots:
            spans[key] = (len(tokens), len(tokens) + len(slots[key]))
            tokens.extend(slots[key])
        else:
            tokens.append(word)
    return tokens, spans


def _shift(span: tuple[int, int], offset: int) -> tuple[int, int]:
    return span[0] + offset, span[1] + offset


def _noise_scene(rng: random.Random, true_cues: list[str], all_cues: list[list[str]]) -> list[str]:
    """Modality noise: another answer's cues (misleading) half the time, else no cue object at all."""
    if rng.random() < 0.5:
        return []
    return rng.choice([c for c in all_cues if sorted(c) != sorted(true_cues)])


class _NerPlanner:
    def __init__(self, config: SynthConfig) -> None:
        rng = random.Random(f"{config.seed}-names")
        taken: set[str] = set()
        pool = config.ambiguous_names or (40 if config.size == "small" else 150)
        self.ambiguous = lexicon.invent_names(rng, pool, taken)
        self.fixed = {t: lexicon.invent_names(rng, max(5, pool // 8), taken) for t in lexicon.ENTITY_TYPES}
        self.config = config

    def plan(self, split: str, index: int) -> Post:
        rng = random.Random(f"{self.config.seed}-{split}-{index}")
        category = _category(rng, self.config)
        entity_type = rng.choice(lexicon.ENTITY_TYPES)
        name = rng.choice(self.ambiguous)
        template = rng.choice(lexicon.NEUTRAL if category == "image" else lexicon.TYPE_HINTS[entity_type])
        slots = {"E": name}
        secondary_type = None
        if rng.random() < 0.3:
            secondary_type = rng.choice(lexicon.ENTITY_TYPES)
            slots["S"] = rng.choice(self.fixed[secondary_type])
            template = f"{template} {rng.choice(lexicon.SECONDARY)}"
        words, spans = _fill(template, slots)
        tokens, offset = lexicon.decorate(words, rng)
        tags = ["O"] * len(tokens)
        for key, label in (("E", entity_type), ("S", secondary_type)):
            if key in spans:
                start, end = _shift(spans[key], offset)
                tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        cue = lexicon.TYPE_CUES[entity_type]
        cues = [cue]
        if category == "noise":
            cues = _noise_scene(rng, cues, [[c] for c in lexicon.TYPE_CUES.values()])
        distractors = rng.sample([d for d in DISTRACTORS if d not in cues], rng.randint(1, 3))
        image_present = rng.random() >= self.config.missing_image_share
        evidence = "text" if category != "image" else "name:" + " ".join(name)
        image_id = f"{SPLITS.index(split) + 1}{index:06d}"  # numeric, like Twitter IMGIDs
        signal = "neutral" if category == "image" else f"hint:{entity_type}"
        return Post(split, index, image_id, tokens, category, cues, distractors, image_present,
                    text_determines=category != "image", evidence=evidence, text_signal=signal,
                    tags=tags)  # fmt: skip

    # -- the Twitter-2015 layout: CoNLL text, image <id>.jpg, crops keyed by image file ---------------------
    split_files: ClassVar[dict[str, str]] = dict(
        zip(SPLITS, ("train.txt", "valid.txt", "test.txt"), strict=True)
    )
    mapping_files: ClassVar[dict[str, str]] = {
        split: f"synth_{FOLDER_SPLIT[split]}_dict.pth" for split in SPLITS
    }

    def layout(self, out: Path, post: Post) -> tuple[Path, Path, str | int, str]:
        """Image path, crop folder, crop-mapping key and crop name prefix of a post."""
        return (
            out / "synth_images" / f"{post.image_id}.jpg",
            out / "synth_aux_images" / FOLDER_SPLIT[post.split] / "crops",
            f"{post.image_id}.jpg",
            f"{post.image_id}_crop",
        )

    @staticmethod
    def text(post: Post) -> str:
        """The post in the CoNLL layout with its IMGID line."""
        rows = "".join(f"{tok}\t{tag}\n" for tok, tag in zip(post.tokens, post.tags, strict=True))
        return f"IMGID:{post.image_id}\n{rows}\n"

    @staticmethod
    def answer(post: Post) -> str:
        """The label the context/image must decide: the ambiguous entity's type."""
        return next(tag[2:] for tag in post.tags if tag.startswith("B-"))

    @staticmethod
    def f1(posts: list[Post], answers: list[str]) -> float:
        """Span F1 of the posts with their ambiguous entity typed as ``answers``."""
        retagged = [_retag(p, a) for p, a in zip(posts, answers, strict=True)]
        return ner_scores([p.tags for p in posts], retagged).f1


class _RePlanner:
    def __init__(self, config: SynthConfig) -> None:
        rng = random.Random(f"{config.seed}-names")
        taken: set[str] = set()
        pool = 40 if config.size == "small" else 200
        self.names = {t: lexicon.invent_names(rng, pool, taken) for t in lexicon.ENTITY_TYPES}
        self.pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
        for relation, (head_type, tail_type, _, _) in lexicon.RELATIONS.items():
            self.pairs[(head_type, tail_type)].append(relation)
        self.config = config

    def plan(self, split: str, index: int) -> Post:
        rng = random.Random(f"{self.config.seed}-{split}-{index}")
        category = _category(rng, self.config)
        pair = rng.choice(sorted(self.pairs))
        relation = rng.choice([*self.pairs[pair], "None"])
        head, tail = rng.choice(self.names[pair[0]]), rng.choice(self.names[pair[1]])
        while tail == head:
            tail = rng.choice(self.names[pair[1]])
        if category == "image":
            template = rng.choice(lexicon.PAIR_NEUTRAL)
        elif relation == "None":
            template = rng.choice(lexicon.NONE_HINTS)
        else:
            template = rng.choice(lexicon.RELATIONS[relation][3])
        words, spans = _fill(template, {"H": head, "T": tail})
        tokens, offset = lexicon.decorate(words, rng)
        cues = [] if relation == "None" else list(lexicon.RELATIONS[relation][2])
        if category == "noise":
            cues = _noise_scene(rng, cues, [list(r[2]) for r in lexicon.RELATIONS.values()] + [[]])
        distractors = rng.sample([d for d in DISTRACTORS if d not in ("ball",)], rng.randint(1, 3))
        image_present = rng.random() >= self.config.missing_image_share
        evidence = "text" if category != "image" else f"pair:{pair[0]}-{pair[1]}"
        image_id = f"synth_{split}_{index:06d}.jpg"
        return Post(
            split,
            index,
            image_id,
            tokens,
            category,
            cues,
            distractors,
            image_present,
            text_determines=category != "image",
            evidence=evidence,
            # the names show the entity types; a hint template shows the relation too
            text_signal=f"{'neutral' if category == 'image' else 'hint:' + relation} {pair[0]}-{pair[1]}",
            head=_shift(spans["H"], offset),
            tail=_shift(spans["T"], offset),
            relation=relation,
        )

    # -- the MNRE layout: one dict literal per instance, images by file name, crops keyed by index ----------
    split_files: ClassVar[dict[str, str]] = dict(
        zip(SPLITS, ("train.txt", "val.txt", "test.txt"), strict=True)
    )
    mapping_files: ClassVar[dict[str, str]] = {
        split: f"mre_{split}_dict.pth" for split in SPLITS
    }  # MNRE names the dev split dev here

    def layout(self, out: Path, post: Post) -> tuple[Path, Path, str | int, str]:
        """Image path, crop folder, crop-mapping key and crop name prefix of a post."""
        folder_split = FOLDER_SPLIT[post.split]
        return (
            out / "img_org" / folder_split / post.image_id,
            out / "img_vg" / folder_split / "crops",
            post.index,
            f"{post.index}_pred_crop",
        )

    @staticmethod
    def text(post: Post) -> str:
        """The instance as an MNRE line."""
        record = {
            "token": post.tokens,
            "h": {"name": " ".join(post.tokens[slice(*post.head)]), "pos": list(post.head)},
            "t": {"name": " ".join(post.tokens[slice(*post.tail)]), "pos": list(post.tail)},
            "img_id": post.image_id,
            "relation": post.relation,
        }
        return repr(record) + "\n"

    @staticmethod
    def answer(post: Post) -> str:
        """The label the context/image must decide: the relation."""
        return post.relation or "None"

    def f1(self, posts: list[Post], answers: list[str]) -> float:
        return re_scores([self.answer(p) for p in posts], answers).f1


def _render(job: tuple[int, str, int, list[str], list[str], str, list[tuple[str, Path]]]) -> list:
    """Draw one post's scene, save the image and its crops; returns the motifs with boxes."""
    seed, split, index, cues, distractors, image_path, crop_targets = job
    rng = random.Random(f"{seed}-{split}-{index}-scene")
    image, objects = render_scene(cues, distractors, rng)
    if image_path:
        image.save(image_path, quality=90)
    # Crops ordered as a grounding tool ranks them: bigger (more confident) first, with jitter.
    ranked = sorted(objects, key=lambda o: -(o[1][2] - o[1][0]) * (o[1][3] - o[1][1]) * rng.uniform(0.6, 1.4))
    for (_, box), (_, crop_path) in zip(ranked, crop_targets, strict=False):
        image.crop(box).save(crop_path)
    return [(motif, list(box)) for motif, box in ranked]


def _oracle_scores(planner: Planner, posts_by_split: dict[str, list[Post]]) -> dict[str, dict[str, float]]:
    """Text-only and multimodal oracle F1 per split (see the module docstring)."""
    train_answers: dict[str, Counter] = defaultdict(Counter)
    for post in posts_by_split["train"]:
        if not post.text_determines:
            train_answers[post.evidence][planner.answer(post)] += 1
    fallback = Counter(planner.answer(p) for p in posts_by_split["train"]).most_common(1)[0][0]

    def guess(post: Post) -> str:
        counts = train_answers.get(post.evidence)
        return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else fallback

    scores = {}
    for split, posts in posts_by_split.items():
        text_only = [planner.answer(p) if p.text_determines else guess(p) for p in posts]
        multimodal = [
            planner.answer(p) if p.text_determines or p.image_determines else guess(p) for p in posts
        ]
        scores[split] = {
            "text_only_f1": planner.f1(posts, text_only),
            "multimodal_f1": planner.f1(posts, multimodal),
        }
        scores[split]["share_text_decided"] = sum(p.text_determines for p in posts) / len(posts)
        scores[split]["share_image_only_decided"] = sum(
            p.image_determines and not p.text_determines for p in posts
        ) / len(posts)
    return scores


def _retag(post: Post, entity_type: str) -> list[str]:
    """The post's tags with the first (ambiguous) entity typed as ``entity_type``."""
    tags = list(post.tags)
    start = next(i for i, tag in enumerate(tags) if tag.startswith("B-"))
    end = start + 1
    while end < len(tags) and tags[end].startswith("I-"):
        end += 1
    tags[start:end] = [f"B-{entity_type}"] + [f"I-{entity_type}"] * (end - start - 1)
    return tags


Planner = _NerPlanner | _RePlanner
PLANNERS: dict[str, type[Planner]] = {"ner": _NerPlanner, "re": _RePlanner}


def planner_for(config: SynthConfig) -> Planner:
    """The planner that draws the posts of ``config``'s benchmark (text, labels, scene and category)."""
    if config.task not in PLANNERS:
        raise SettingError(f"task must be 'ner' or 're', got {config.task!r}")
    return PLANNERS[config.task](config)


def _drawing_jobs(planner: Planner, out: Path, posts_by_split: dict) -> tuple[list[tuple], dict]:
    """One drawing job per post (its image and crops, in the benchmark's layout), and each split's crop
    mapping; the folders are made here."""
    jobs, crop_maps = [], {}
    for split, posts in posts_by_split.items():
        crop_maps[split] = {}
        for post in posts:
            image_path, crop_dir, key, prefix = planner.layout(out, post)
            image_path.parent.mkdir(parents=True, exist_ok=True)
            crop_dir.mkdir(parents=True, exist_ok=True)
            names = [f"{prefix}_{k}.png" for k in range(len(post.cues) + len(post.distractors))]
            crop_maps[split][key] = names if post.image_present else []
            targets = [(n, crop_dir / n) for n in names] if post.image_present else []
            image = str(image_path) if post.image_present else ""
            jobs.append((planner.config.seed, split, post.index, post.cues, post.distractors, image, targets))
    return jobs, crop_maps


def _write_meta(planner: Planner, path: Path, posts: list) -> None:
    """The generator's truth per post (category, what decides the answer, the drawn objects), one JSON line."""
    with path.open("w", encoding="utf-8") as handle:
        for post in posts:
            meta = {
                "split": post.split,
                "index": post.index,
                "image_id": post.image_id,
                "category": post.category,
                "text_determines": post.text_determines,
                "image_determines": post.image_determines,
                "image_present": post.image_present,
                "answer": planner.answer(post),
                "objects": post.objects,
            }
            handle.write(json.dumps(meta) + "\n")


def generate(config: SynthConfig, out: Path | str, progress: bool = True) -> dict:
    """Write the benchmark to ``out`` and return the summary (also saved as ``synth_summary.json``)."""
    import torch  # crop mappings are .pth files, as in the released benchmarks

    out = Path(out)
    task = config.task
    planner = planner_for(config)
    posts_by_split = {
        split: [planner.plan(split, i) for i in range(n)]
        for split, n in zip(SPLITS, config.split_sizes(), strict=True)
    }
    jobs, crop_maps = _drawing_jobs(planner, out, posts_by_split)
    all_posts = [p for posts in posts_by_split.values() for p in posts]
    with ProcessPoolExecutor(max_workers=max(1, config.workers)) as pool:
        results = pool.map(_render, jobs, chunksize=64)
        for post, objects in tqdm(
            zip(all_posts, results, strict=True),
            total=len(jobs),
            desc=f"drawing {task}",
            unit="image",
            disable=not progress,
        ):
            post.objects = objects
    for split, posts in posts_by_split.items():
        with (out / planner.split_files[split]).open("w", encoding="utf-8") as handle:
            handle.writelines(planner.text(post) for post in posts)
        torch.save(crop_maps[split], out / planner.mapping_files[split])
    _write_meta(planner, out / "synth_meta.jsonl", all_posts)
    summary = {
        "generator": "mmib.data.synth",
        "config": {k: v for k, v in asdict(config).items() if k != "workers"},  # workers change no byte
        "split_sizes": dict(zip(SPLITS, config.split_sizes(), strict=True)),
        "categories": {s: dict(Counter(p.category for p in posts)) for s, posts in posts_by_split.items()},
        "images_absent": {s: sum(not p.image_present for p in posts) for s, posts in posts_by_split.items()},
        "oracles": _oracle_scores(planner, posts_by_split),
    }
    (out / "synth_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
