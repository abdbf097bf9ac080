"""The real benchmark files, read as the literature reads them (skipped where they are absent)."""

from __future__ import annotations

from mmib.data import load_dataset
from mmib.data.stats import dataset_stats

from .conftest import shared_path


def test_twitter2017_matches_table_one():
    stats = dataset_stats(load_dataset(shared_path("data/twitter2017")), progress=False)["splits"]
    table_one = {  # Cui et al. 2024, Table I, Twitter-2017 (train, dev, test)
        "PER": (2943, 626, 621),
        "LOC": (731, 173, 178),
        "ORG": (1674, 375, 395),
        "MISC": (701, 150, 157),
    }
    for position, split in enumerate(("train", "dev", "test")):
        assert stats[split]["entities"] == {t: counts[position] for t, counts in sorted(table_one.items())}
    assert [stats[s]["posts"] for s in ("train", "dev", "test")] == [3373, 723, 723]


def test_twitter2015_posts_and_orphan_tags():
    stats = dataset_stats(load_dataset(shared_path("data/twitter2015")), progress=False)["splits"]
    assert [stats[s]["posts"] for s in ("train", "dev", "test")] == [4000, 1000, 3257]
    assert set(stats["train"]["entities"]) == {"PER", "LOC", "ORG", "OTHER"}
    # The data notes count 186 (train) and 135 (test) I- tags with no B- before them.
    assert (stats["train"]["orphan_i_tags"], stats["test"]["orphan_i_tags"]) == (186, 135)


def test_mnre_instances():
    dataset = load_dataset(shared_path("data/mnre"))
    assert [len(dataset.splits[s]) for s in ("train", "dev", "test")] == [12247, 1624, 1614]
    vocab = dataset.label_vocab()
    assert vocab.labels[0] == "None" and len(vocab) == 23


def test_mnre_sample_images_and_listed_absent_crops():
    stats = dataset_stats(load_dataset(shared_path("images/mnre-sample")), progress=False)["splits"]
    assert sum(stats[s]["image_files"]["images_found"] for s in stats) == 12
    assert all(stats[s]["image_files"]["images_missing"] == 0 for s in stats)
    audit = {s: stats[s]["crop_mapping"] for s in stats}
    assert [audit[s]["mapping_entries"] for s in ("train", "dev", "test")] == [12247, 1624, 1614]
    for split in audit:  # the dicts list crops for every instance; only a few crop files ship
        assert audit[split]["crops_listed_absent"] > 0
        assert (
            audit[split]["crops_listed_on_disk"] + audit[split]["crops_listed_absent"]
            == audit[split]["crops_listed"]
        )
