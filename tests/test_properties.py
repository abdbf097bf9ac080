"""Property-based checks over everything a user can hand mmib: whatever the bytes, a reader either reads or
says one line naming the file and line; predict input loses no readable record; the HTTP API answers 2xx or
4xx, never 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmib.data.errors import DataFormatError
from mmib.data.images import load_crop_mapping
from mmib.data.readers import read_conll, read_mnre
from mmib.predict.batch import PredictCounts, read_posts

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
line_bytes = st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b)
lines = st.lists(
    st.one_of(line_bytes, st.sampled_from([b"IMGID:1", b"Kobe\tB-PER", b"LA\tI-LOC", b""])), max_size=12
)


def _one_line_error(error: BaseException, path) -> None:
    message = str(error)
    assert len(message.splitlines()) == 1 and message.startswith(str(path)), message


@FAST
@given(content=lines)
def test_conll_reader_reads_or_names_the_line(tmp_path, content):
    path = tmp_path / "train.txt"
    path.write_bytes(b"\n".join(content))
    try:
        read_conll(path)
    except DataFormatError as error:
        _one_line_error(error, path)


mnre_like = st.recursive(
    st.one_of(st.none(), st.integers(-3, 30), st.text(max_size=8), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["token", "h", "t", "pos", "name", "relation", "img_id"]), inner, max_size=5
        ),
    ),
    max_leaves=20,
)


@FAST
@given(
    records=st.lists(
        st.one_of(mnre_like.map(repr), st.just("{[1]: 2}"), st.just("[" * 3000 + "]" * 3000)), max_size=5
    )
)
def test_mnre_reader_reads_or_names_the_line(tmp_path, records):
    path = tmp_path / "train.txt"
    path.write_text("\n".join(records), encoding="utf-8")
    try:
        read_mnre(path)
    except DataFormatError as error:
        _one_line_error(error, path)


@FAST
@given(
    mapping=st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers(0, 9)),
        st.one_of(st.integers(), st.text(max_size=6), st.lists(st.text(max_size=6), max_size=3)),
        max_size=4,
    )
)
def test_crop_mappings_load_or_say_what_is_wrong(tmp_path, mapping):
    path = tmp_path / "mre_train_dict.json"
    path.write_text(json.dumps(mapping))
    try:
        loaded = load_crop_mapping(path)
    except ValueError as error:
        _one_line_error(error, path)
        return
    assert all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in loaded.values())


@FAST
@given(
    content=st.lists(
        st.one_of(line_bytes, st.builds(lambda t: json.dumps({"text": t}).encode(), st.text(max_size=20))),
        max_size=10,
    )
)
@example(content=[b"\xef\xbb\xbf"])  # a file that holds only a byte-order mark
@example(content=[b'\xef\xbb\xbf{"text": "a"}', b"\xef\xbb\xbf"])  # one opening the file, one inside it
def test_predict_input_skips_bad_lines_and_keeps_every_good_one(tmp_path, content):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\n".join(content) + b"\n")
    counts = PredictCounts()
    posts = list(read_posts(path, counts))
    # a byte-order mark that opens the file marks its encoding and is no content (hypothesis found a file
    # holding only one); anywhere else it is text like any other
    content = [content[0].removeprefix(b"\xef\xbb\xbf"), *content[1:]] if content else content
    good = sum(1 for line in content if line.strip() and _is_post(line))
    assert len(posts) == good
    assert len(posts) + len(counts.skipped) == sum(
        1 for line in content if line.decode("utf-8", "replace").strip()
    )


def _is_post(line: bytes) -> bool:
    try:
        item = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(item, dict) and isinstance(item.get("text"), str) and set(item) <= {"text"}


@pytest.fixture(scope="module")
def client(tiny_ner_run):
    from fastapi.testclient import TestClient

    from mmib.predict import Extractor
    from mmib.predict.serve import create_app

    return TestClient(create_app(Extractor.load(tiny_ner_run, detector=None), max_upload_bytes=100_000))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["text", "image", "caption", "head", "tail"]), json_values, max_size=5
        ),
    )
)
def test_http_bodies_get_2xx_or_4xx_never_500(client, body):
    response = client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert len(response.json()["detail"].splitlines()) == 1
