"""The processing layer: one road from posts to a Batch, with the task and the image side as strategies."""

from __future__ import annotations

import ast
import sys

import pytest
import torch

from mmib.encoders.text import WordTokenizer
from mmib.model import MMIBConfig
from mmib.processing import MMIBProcessor, NerTask, PairInput, PostInput, ReTask, task_for
from mmib.spans import Span
from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "mmib"


@pytest.fixture(scope="module")
def word_tokenizer(tiny_encoder) -> WordTokenizer:
    from transformers import AutoTokenizer

    return WordTokenizer(AutoTokenizer.from_pretrained(tiny_encoder), 64)


def _side(posts: int, width: int = 4, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.arange(posts * width * dim, dtype=torch.float).view(posts, width, dim)
    mask = torch.ones(posts, width, dtype=torch.bool)
    return features, mask


def test_ner_rows_carry_gold_tags_padded_to_the_longest_post(word_tokenizer):
    processor = MMIBProcessor(word_tokenizer, NerTask(["O", "B-PER", "I-PER"]))
    posts = [
        PostInput(["kobe", "bryant", "won"], identity=7, tags=["B-PER", "I-PER", "O"]),
        PostInput(["hi"], identity=9, tags=["O"]),
    ]
    batch = processor(posts, *_side(2))
    assert batch.word_lengths.tolist() == [3, 1] and batch.post_ids.tolist() == [7, 9]
    assert batch.tags.tolist() == [[1, 2, 0], [0, 0, 0]]
    assert batch.pair_post is None and batch.relations is None
    unlabelled = processor([PostInput(["kobe"])], *_side(1))
    assert unlabelled.tags is None  # prediction: no gold


def test_a_label_the_model_does_not_know_names_its_line(word_tokenizer):
    processor = MMIBProcessor(word_tokenizer, NerTask(["O", "B-PER", "I-PER"]))
    with pytest.raises(ValueError, match="'B-ORG' in record at line 12 is not among the model's labels"):
        processor([PostInput(["acme"], tags=["B-ORG"], source_line=12)], *_side(1))


def test_pooled_pairs_point_at_their_post_and_marked_pairs_are_rows_of_their_own(word_tokenizer):
    words = ["kobe", "at", "staples", "center"]
    a, b = Span("", 0, 1), Span("", 2, 4)
    pairs = [PairInput(a, b, "None"), PairInput(b, a, "in")]
    posts = [
        PostInput(words, identity=3, pairs=pairs),
        PostInput(["hi", "there"], identity=5, pairs=[PairInput(Span("", 0, 1), Span("", 1, 2), "None")]),
    ]
    features, mask = _side(2)
    pooled = MMIBProcessor(word_tokenizer, ReTask(["None", "in"]))(posts, features, mask)
    assert pooled.word_lengths.tolist() == [4, 2] and pooled.pair_post.tolist() == [0, 0, 1]
    assert pooled.heads.tolist() == [[0, 1], [2, 4], [0, 1]] and pooled.tails.tolist() == [
        [2, 4],
        [0, 1],
        [1, 2],
    ]
    assert pooled.relations.tolist() == [0, 1, 0]
    marked = MMIBProcessor(word_tokenizer, ReTask(["None", "in"], entity_markers=True))(posts, features, mask)
    assert marked.word_lengths.tolist() == [8, 8, 6]  # two markers around each of head and tail
    assert marked.pair_post.tolist() == [0, 1, 2] and marked.post_ids.tolist() == [3, 3, 5]
    assert torch.equal(marked.image_features, features[[0, 0, 1]])  # each row keeps its post's image side
    assert marked.heads.tolist() == [[0, 1], [4, 5], [0, 1]]  # the opening head marker


def test_the_length_key_counts_markers_and_the_pair_s_caption(word_tokenizer):
    words, caption = ["kobe", "bryant"], "a man with a trophy"
    plain = MMIBProcessor(word_tokenizer, NerTask(["O"])).length(words, caption)
    assert plain == sum(len(word_tokenizer.pieces(w)) for w in words) + 2
    marked = MMIBProcessor(word_tokenizer, ReTask(["None"], entity_markers=True)).length(words, caption)
    assert marked == plain + 4
    pair = MMIBProcessor(word_tokenizer, NerTask(["O"]), second_segment=True).length(words, caption)
    assert pair == min(plain + len(word_tokenizer.caption_pieces(caption)), word_tokenizer.max_length)


def test_the_task_comes_from_the_config_and_an_unknown_one_is_refused():
    assert isinstance(task_for(MMIBConfig(task="ner", labels=["O"])), NerTask)
    markers = task_for(MMIBConfig(task="mre", labels=["None"], entity_markers=True))
    assert isinstance(markers, ReTask) and markers.marks_entities
    config = MMIBConfig(task="ner", labels=["O"])
    config.task = "pos"
    with pytest.raises(ValueError, match="task must be one of ner, mre"):
        task_for(config)


def test_a_run_s_processor_is_the_one_its_model_config_asks_for(tiny_ner_run):
    from mmib.model.mmib import from_pretrained

    processor = MMIBProcessor.from_pretrained(tiny_ner_run)
    model, tokenizer = from_pretrained(tiny_ner_run)
    assert processor.task.labels == model.config.labels and isinstance(processor.task, NerTask)
    assert processor.tokenizer.max_length == tokenizer.max_length


def _constructions_of(name: str) -> list[str]:
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    return found


def test_only_the_processing_layer_builds_a_batch():
    """Batch(...) is called in processing/ alone (and by Batch.to, which copies one to a device)."""
    outside = [where for where in _constructions_of("Batch") if not where.startswith("processing/")]
    assert [where.split(":")[0] for where in outside] == ["model/mmib.py"], outside


def _code_shape():
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import code_shape
    finally:
        sys.path.pop(0)
    return code_shape


def test_no_import_cycle_among_the_package_s_modules():
    """Module-level and function-level imports alike (scripts/code_shape.py)."""
    assert _code_shape().import_cycles(REPO_ROOT / "src") == []


def test_the_cycle_checker_finds_a_cycle(tmp_path):
    for name, imports in (("a", "from mmib import b"), ("b", "def f():\n    import mmib.a")):
        (tmp_path / "mmib").mkdir(exist_ok=True)
        (tmp_path / "mmib" / f"{name}.py").write_text(imports + "\n")
    (tmp_path / "mmib" / "__init__.py").write_text("")
    shape = _code_shape()
    assert shape.import_cycles(tmp_path) == [["mmib.a", "mmib.b"]]
    assert shape.import_cycles(tmp_path, function_level=False) == []


def test_task_and_image_source_strings_are_compared_in_processing_only():
    """The data layer asks its format objects (mmib.data.formats, the synthetic planners); the rest asks
    the Task and the ImageSide."""
    assert _code_shape().string_branches(REPO_ROOT / "src") == {"data layer": [], "elsewhere": []}


def test_a_saved_processor_reads_back_the_same_batches(tiny_ner_run, tmp_path, synth_ner):
    processor = MMIBProcessor.from_pretrained(tiny_ner_run)
    processor.save_pretrained(tmp_path / "processor")
    again = MMIBProcessor.from_pretrained(tmp_path / "processor")
    posts = [
        PostInput(["kobe", "bryant", "at", "staples"], "a man with a ball", 1),
        PostInput(["hi"], None, 2),
    ]
    features, mask = _side(2, dim=processor.config.image_feature_dim or 1)
    first, second = processor(posts, features, mask), again(posts, features, mask)
    assert torch.equal(first.text.input_ids, second.text.input_ids)
    assert first.word_lengths.tolist() == second.word_lengths.tolist()
    assert again.task.labels == processor.task.labels


def test_no_function_in_the_package_is_longer_than_60_lines():
    assert _code_shape().long_functions(REPO_ROOT / "src") == []


def test_a_caption_longer_than_the_window_is_read_whole_and_quietly(tiny_encoder):
    """The length key needs every sub-word of a caption; the tokenizer's too-long warning would only alarm (the
    caption is cut where it is used). transformers marks that warning as given on the tokenizer (its logger
    writes to the stderr of whenever it was set up, out of the test's reach)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    tokenizer.model_max_length = 32
    caption = " ".join(["word"] * 100)
    pieces = WordTokenizer(tokenizer, 16).caption_pieces(caption)
    assert len(pieces) >= 100
    assert not tokenizer.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum")
