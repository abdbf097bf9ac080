"""Readers: good files of each kind, and one test per malformed case, each with its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmib.data import DataFormatError, load_dataset
from mmib.data.readers import read_conll, read_mnre
from mmib.data.records import LabelVocab
from mmib.spans import Span

GOOD_CONLL = "IMGID:1\nJohn\tB-PER\nSmith\tI-PER\nin\tO\nParis\tB-LOC\n\nIMGID:2\nApple\tB-ORG\nrocks\tO\n"
GOOD_MRE = (
    "{'token': ['A', 'met', 'B'], 'h': {'name': 'A', 'pos': [0, 1]}, 't': {'name': 'B', 'pos': [2, 3]}, "
    "'img_id': 'x.jpg', 'relation': '/per/per/peer', 'caption': ['extra keys are tolerated']}\n"
)


def write(tmp_path: Path, text: str, name: str = "train.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_with_imgid(tmp_path):
    result = read_conll(write(tmp_path, GOOD_CONLL))
    posts = result.records
    assert [p.image_id for p in posts] == ["1", "2"]
    assert posts[0].tokens == ["John", "Smith", "in", "Paris"]
    assert posts[0].tags == ["B-PER", "I-PER", "O", "B-LOC"]
    assert posts[1].source_line == 7


def test_plain_conll_any_label_set(tmp_path):
    path = write(tmp_path, "aspirin\tB-Drug\nhelps\tO\n\nfever\tB-Symptom\n")
    dataset = load_dataset(path)
    assert dataset.task == "ner"
    assert [p.image_id for p in dataset.splits["all"]] == [None, None]
    assert dataset.label_vocab().labels == ("O", "B-Drug", "I-Drug", "B-Symptom", "I-Symptom")


@pytest.mark.parametrize("other", ["OTHER", "MISC"])
def test_twitter_misc_and_other_both_accepted(tmp_path, other):
    posts = read_conll(
        write(tmp_path, f"IMGID:5\nGrammys\tB-{other}\n"),
        allowed_types={"PER", "LOC", "ORG", "MISC", "OTHER"},
    )
    assert posts.records[0].tags == [f"B-{other}"]


def test_no_break_space_token_is_kept(tmp_path):
    posts = read_conll(write(tmp_path, "IMGID:1\n\u00a0\tO\nx\tO\n")).records
    assert posts[0].tokens == ["\u00a0", "x"]


def test_mnre_line_with_extra_keys(tmp_path):
    instance = read_mnre(write(tmp_path, GOOD_MRE)).records[0]
    assert (instance.head.words, instance.tail.words) == ((0, 1), (2, 3))
    assert instance.head == Span("", 0, 1, text="A")  # the MNRE name kept as the surface string
    assert instance.relation == "/per/per/peer" and instance.image_id == "x.jpg"
    assert instance.extra == {"caption": ["extra keys are tolerated"]}


def test_vocab_is_deterministic_and_none_first():
    assert LabelVocab.for_relations(["b", "None", "a", "b"]).labels == ("None", "a", "b")
    assert LabelVocab.for_bio(["I-LOC", "B-PER", "O"]) == LabelVocab.for_bio(["O", "B-PER", "B-LOC"])


CONLL_CASES = {
    "no tab": ("IMGID:1\nJohn B-PER\n", 2, r"no tab in 'John B-PER' \(expected token<TAB>tag\)"),
    "malformed tag": ("IMGID:1\nJohn\tB_PER\n", 2, r"malformed tag 'B_PER' \(expected O, B-TYPE or I-TYPE\)"),
    "bare prefix": ("IMGID:1\nok\tO\nJohn\tB\n", 3, r"malformed tag 'B'"),
    "unknown type": (
        "IMGID:1\nok\tO\nJohn\tB-PERSON\n",
        3,
        r"unknown entity type in 'B-PERSON' \(expected one of LOC, MISC",
    ),
    "empty token": ("IMGID:1\n\tO\n", 2, r"empty token"),
    "imgid without tokens": ("IMGID:1\n\nJohn\tO\n", 1, r"post has an IMGID line but no tokens"),
    "empty imgid": ("IMGID:\nJohn\tO\n", 1, r"empty IMGID"),
}


@pytest.mark.parametrize("case", sorted(CONLL_CASES))
def test_conll_errors_name_file_and_line(tmp_path, case):
    text, line, message = CONLL_CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match=message) as info:
        load_dataset(tmp_path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


MRE_CASES = {
    "not a literal": ("{'token': [", r"not a Python dict literal"),
    "not a dict": ("['a', 'b']", r"a list, not a dict"),
    "no token": (
        "{'h': {'pos': [0, 1]}, 't': {'pos': [1, 2]}, 'relation': 'None'}",
        r"missing or empty 'token' list",
    ),
    "no head": (
        "{'token': ['a', 'b'], 't': {'pos': [1, 2]}, 'relation': 'None'}",
        r"missing or malformed 'h'",
    ),
    "bad pos": (
        "{'token': ['a'], 'h': {'pos': [0]}, 't': {'pos': [0, 1]}, 'relation': 'None'}",
        r"'h' pos is \[0\]",
    ),
    "head outside": (
        "{'token': ['a', 'b'], 'h': {'pos': [1, 5]}, 't': {'pos': [0, 1]}, 'relation': 'None'}",
        r"'h' span \[1, 5\) outside the sentence of 2 tokens",
    ),
    "tail outside": (
        "{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [-1, 1]}, 'relation': 'None'}",
        r"'t' span \[-1, 1\) outside",
    ),
    "head equals tail": (
        "{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [0, 1]}, 'relation': 'None'}",
        r"head and tail are the same span \[0, 1\)",
    ),
    "no relation": (
        "{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [1, 2]}}",
        r"missing 'relation'",
    ),
}


@pytest.mark.parametrize("case", sorted(MRE_CASES))
def test_mnre_errors_name_file_and_line(tmp_path, case):
    bad, message = MRE_CASES[case]
    path = write(tmp_path, GOOD_MRE + "\n" + bad + "\n")  # a blank line before: line numbers are file lines
    with pytest.raises(DataFormatError, match=message) as info:
        load_dataset(tmp_path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_lenient_skips_and_reports_every_bad_record(tmp_path):
    text = GOOD_CONLL + "\nIMGID:3\nbad line\n\nIMGID:4\nfine\tO\nworse\tB-XYZ\n\nIMGID:5\nok\tO\n"
    write(tmp_path, text)
    dataset = load_dataset(tmp_path, lenient=True)
    assert [p.image_id for p in dataset.splits["train"]] == ["1", "2", "5"]
    skipped = dataset.skipped["train"]
    assert [(s.line, s.reason.split(" ")[0]) for s in skipped] == [(12, "no"), (16, "unknown")]


def test_lenient_mnre_keeps_instance_indices_for_crop_lookup(tmp_path):
    write(tmp_path, GOOD_MRE + "{'token': []}\n" + GOOD_MRE)
    dataset = load_dataset(tmp_path, lenient=True)
    assert [r.index for r in dataset.splits["train"]] == [0, 2]
    assert [s.line for s in dataset.skipped["train"]] == [2]


def test_split_files_are_found_by_their_usual_names(tmp_path):
    write(tmp_path, GOOD_CONLL, "train.txt")
    write(tmp_path, GOOD_CONLL, "valid.txt")
    (tmp_path / "txt").mkdir()
    write(tmp_path / "txt", GOOD_CONLL, "ours_test.txt")
    dataset = load_dataset(tmp_path)
    assert sorted(dataset.splits) == ["dev", "test", "train"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no split files found"):
        load_dataset(tmp_path)
