"""The synthetic benchmark: real formats, determinism, and that its categories mean what they say."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from mmib.data import load_dataset
from mmib.data.stats import dataset_stats
from mmib.data.synth import SynthConfig, generate
from mmib.data.synth.lexicon import RELATIONS, TYPE_CUES


def _meta(folder):
    return [json.loads(line) for line in (folder / "synth_meta.jsonl").read_text().splitlines()]


def _digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_files(tmp_path, synth_ner):
    again = tmp_path / "again"
    generate(SynthConfig(task="ner", size="small", seed=7, workers=1), again, progress=False)
    assert _digest(again) == _digest(synth_ner)


def test_other_seed_other_posts(tmp_path, synth_ner):
    other = tmp_path / "other"
    generate(SynthConfig(task="ner", size="small", seed=8), other, progress=False)
    assert (other / "train.txt").read_text() != (synth_ner / "train.txt").read_text()


def test_ner_reads_like_twitter_with_images_and_crops(synth_ner):
    dataset = load_dataset(synth_ner)
    assert [len(dataset.splits[s]) for s in ("train", "dev", "test")] == [400, 100, 100]
    stats = dataset_stats(dataset, progress=False)["splits"]
    meta = _meta(synth_ner)
    for split in ("train", "dev", "test"):
        files = stats[split]["image_files"]
        absent = sum(not m["image_present"] for m in meta if m["split"] == split)
        assert files["images_missing"] == absent
        assert files["images_found"] == stats[split]["posts"] - absent
        assert files["images_unreadable"] == files["crops_unreadable"] == files["crops_missing"] == 0
        assert files["crops_found"] > files["images_found"]  # every scene has at least two objects
        assert set(stats[split]["entities"]) == {"PER", "LOC", "ORG", "MISC"}


def test_ner_categories_decide_as_labelled(synth_ner):
    dataset = load_dataset(synth_ner)
    meta = _meta(synth_ner)
    by_category = Counter(m["category"] for m in meta)
    assert by_category["image"] > by_category["text"] > by_category["noise"] > 0
    posts = {(m["split"], m["index"]): m for m in meta}
    for split, records in dataset.splits.items():
        for post in records:
            m = posts[(split, post.index)]
            cue = TYPE_CUES[m["answer"]]
            motifs = [motif for motif, _ in m["objects"]]
            if m["category"] in ("text", "image"):
                assert cue in motifs  # the image shows the answer's category
            else:
                assert cue not in motifs  # noise: the image shows another category or none
            assert m["text_determines"] == (m["category"] != "image")


def test_ner_ambiguous_names_take_several_types(synth_ner):
    dataset = load_dataset(synth_ner)
    types_by_name: dict[str, set[str]] = {}
    for post in dataset.splits["train"]:
        start = next(i for i, t in enumerate(post.tags) if t.startswith("B-"))
        end = start + 1
        while end < len(post.tags) and post.tags[end].startswith("I-"):
            end += 1
        types_by_name.setdefault(" ".join(post.tokens[start:end]), set()).add(post.tags[start][2:])
    ambiguous = [name for name, types in types_by_name.items() if len(types) >= 3]
    assert len(ambiguous) >= 20


def test_oracles_leave_room_for_the_image(synth_ner, synth_re):
    for folder in (synth_ner, synth_re):
        summary = json.loads((folder / "synth_summary.json").read_text())
        for split, oracle in summary["oracles"].items():
            assert oracle["multimodal_f1"] > 0.97, split
            assert oracle["text_only_f1"] < oracle["multimodal_f1"] - 0.15, split


def test_re_reads_like_mnre(synth_re):
    dataset = load_dataset(synth_re)
    assert dataset.task == "mre"
    assert [len(dataset.splits[s]) for s in ("train", "dev", "test")] == [400, 100, 100]
    relations = Counter(r.relation for r in dataset.splits["train"])
    assert set(relations) == {*RELATIONS, "None"}
    stats = dataset_stats(dataset, progress=False)["splits"]
    for split in stats:
        assert stats[split]["crop_mapping"]["crops_listed_absent"] == 0
        assert stats[split]["image_files"]["images_unreadable"] == 0
    meta = _meta(synth_re)
    for m in meta:
        if m["category"] != "noise" and m["answer"] != "None":
            motifs = Counter(motif for motif, _ in m["objects"])
            assert all(motifs[c] >= n for c, n in Counter(RELATIONS[m["answer"]][2]).items())
