"""``mmib predict``'s output is append-only and owned: a file that is not ours is refused before anything is
written, one record is one line for every reader, a missing newline is repaired, a second run is locked out,
and a merge that does not add up keeps its parts."""

from __future__ import annotations

import json

import pytest

from mmib.data.errors import DataFormatError
from mmib.predict.batch import MergeMismatch, PredictCounts, merge_parts, part_path, predict_file, read_posts
from mmib.predict.inputs import check_text
from mmib.predict.output import OutputInUse, dump_record, open_for_append, read_done
from mmib.predict.results import PostPrediction


class EchoExtractor:
    """Stands in for a run: one prediction per post, its text echoed, no entities."""

    batch_size = 2
    max_chars = 10_000

    def analyze_many(self, posts):
        return [PostPrediction(text, check_text(text, self.max_chars)) for text, _, _ in posts]


def _posts(tmp_path, texts: list[str]):
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


@pytest.mark.parametrize(
    "foreign",
    [
        "IMGID:1\nKobe\tB-PER\n\n",  # a CoNLL gold file
        '{"id": 1, "entities": []}\nmy notes, keep them\n{"id": 2, "entities": []}\n',  # one stray line
        '{"text": "the input itself"}\n',
        "a notes file without a final newline",
    ],
)
def test_an_output_that_is_not_ours_is_refused_and_left_untouched(tmp_path, foreign):
    output = tmp_path / "out.jsonl"
    output.write_text(foreign)
    with pytest.raises(DataFormatError, match=r"out\.jsonl:\d+: .*not an mmib predictions output"):
        predict_file(EchoExtractor(), _posts(tmp_path, ["a b"]), output, progress=False)
    assert output.read_text() == foreign


def test_line_separators_in_a_text_never_split_its_record(tmp_path):
    texts = ["left\u2028right", "next\u0085line", "para\u2029graph", "plain"]
    output = tmp_path / "out.jsonl"
    counts = predict_file(EchoExtractor(), _posts(tmp_path, texts), output, progress=False)
    assert counts.written == 4
    content = output.read_text(encoding="utf-8")
    assert len(content.splitlines()) == 4  # str.splitlines breaks at U+2028 and U+0085: escaped, not raw
    assert [json.loads(line)["text"] for line in content.splitlines()] == texts
    again = predict_file(EchoExtractor(), _posts(tmp_path, texts), output, progress=False)
    assert again.already_done == 4 and again.written == 0


def test_a_missing_final_newline_is_repaired_and_a_cut_record_redone(tmp_path):
    posts = _posts(tmp_path, ["one", "two", "three"])
    output = tmp_path / "out.jsonl"
    complete = dump_record({"id": 0, "entities": [], "text": "one"})
    output.write_text(complete.rstrip("\n"))  # an editor dropped the newline
    predict_file(EchoExtractor(), posts, output, progress=False)
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == [0, 1, 2]
    output.write_text(complete + dump_record({"id": 1, "entities": [], "text": "twö"})[:-6])  # a kill
    counts = predict_file(EchoExtractor(), posts, output, progress=False)
    assert counts.already_done == 1 and counts.written == 2
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == [0, 1, 2]


def test_a_second_run_on_the_same_output_is_locked_out(tmp_path):
    output = tmp_path / "out.jsonl"
    with open_for_append(output) as out:
        out.write(dump_record({"id": 0, "entities": []}))
        with pytest.raises(OutputInUse, match="another mmib predict is writing this output"):
            predict_file(EchoExtractor(), _posts(tmp_path, ["x"]), output, progress=False)
    assert [r["id"] for r in read_done(output)] == [0]


def test_a_merge_that_does_not_add_up_keeps_its_parts(tmp_path):
    posts_path = _posts(tmp_path, ["a", "b", "c"])
    posts = list(read_posts(posts_path, PredictCounts()))
    output = tmp_path / "out.jsonl"
    first, second = part_path(output, 0, 2), part_path(output, 1, 2)
    first.write_text(dump_record({"id": 0, "entities": []}) + dump_record({"id": 2, "entities": []}))
    second.write_text(dump_record({"id": 1, "entities": []}) + dump_record({"id": 99, "entities": []}))
    with pytest.raises(MergeMismatch, match="hold 4 records but 3"):
        merge_parts(output, posts)
    assert first.exists() and second.exists() and not output.exists()
    second.write_text(dump_record({"id": 1, "entities": [], "text": "b\u2028b"}))
    assert merge_parts(output, posts) == 3
    assert [r["id"] for r in read_done(output)] == [0, 1, 2] and not first.exists() and not second.exists()


def test_a_lone_surrogate_skips_its_post_with_file_and_line(tmp_path):
    posts = _posts(tmp_path, ["fine", "a\ud800b", "also fine"])
    output = tmp_path / "out.jsonl"
    counts = predict_file(EchoExtractor(), posts, output, progress=False)
    assert counts.written == 2 and counts.skipped == [
        f"{posts}:2: text holds a lone surrogate U+D800 at character 2 (not valid Unicode)"
    ]
    assert [r["id"] for r in read_done(output)] == [0, 2]


def test_an_over_long_or_nul_image_name_is_predicted_from_its_text(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text(
        json.dumps({"id": 1, "text": "one", "image": "x" * 300 + ".jpg"})
        + "\n"
        + json.dumps({"id": 2, "text": "two", "image": "a\u0000b.jpg"})
        + "\n"
    )
    output = tmp_path / "out.jsonl"
    counts = predict_file(EchoExtractor(), path, output, tmp_path, progress=False)
    assert counts.written == 2 and counts.image_missing == 2 and not counts.skipped


def test_an_output_cut_inside_a_multibyte_character_resumes(tmp_path):
    posts = _posts(tmp_path, ["one", "twö"])
    output = tmp_path / "out.jsonl"
    predict_file(EchoExtractor(), posts, output, progress=False)
    whole = output.read_bytes()
    cut = whole[: whole.rindex("ö".encode()) + 1]  # a kill between the two bytes of ö
    output.write_bytes(cut)
    counts = predict_file(EchoExtractor(), posts, output, progress=False)
    assert counts.already_done == 1 and counts.written == 1 and output.read_bytes() == whole
