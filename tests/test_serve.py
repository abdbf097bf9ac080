"""The web API (FastAPI TestClient) and the demo page in headless Chromium (Playwright)."""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmib.encoders.detector import Detection
from mmib.predict import Extractor
from mmib.predict.serve import create_app


class HalvesDetector:
    """Two fixed boxes, so that the page has objects to draw whatever the image shows."""

    name = "halves"

    def detect(self, image):
        w, h = image.size
        return [Detection("Person", 0.9, (0, 0, w / 2, h)), Detection("Dog", 0.7, (w / 2, h / 3, w, h))]


@pytest.fixture(scope="module")
def extractor(tiny_ner_run):
    return Extractor.load(tiny_ner_run, detector=HalvesDetector())


@pytest.fixture(scope="module")
def client(extractor):
    return TestClient(create_app(extractor, max_upload_bytes=200_000))


def _png(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="form"' in page.text
    info = client.get("/info").json()
    assert info["task"] == "ner" and info["detector"] == "halves" and info["max_upload_bytes"] == 200_000


def test_predict_with_and_without_image(client, extractor):
    text = "Fezai won the cup at Tifeele Restor"
    plain = client.post("/predict", data={"text": text})
    assert plain.status_code == 200
    body = plain.json()
    assert body["image_used"] is False and body["objects"] == [] and body["image_size"] is None
    assert body["entities"] == [e.as_dict() for e in extractor.predict(text)]
    with_image = client.post("/predict", data={"text": text}, files={"image": ("a.png", _png(), "image/png")})
    body = with_image.json()
    assert with_image.status_code == 200 and body["image_used"] and body["image_size"] == [64, 48]
    assert [o["label"] for o in body["objects"]] == ["Person", "Dog"]


@pytest.mark.parametrize(
    ("data", "files", "status", "message"),
    [
        ({"text": ""}, None, 422, "text is empty"),
        ({"text": "x " * 3000}, None, 422, "the limit is 5000"),
        ({"text": "ok"}, {"image": ("notes.txt", b"hello", "text/plain")}, 415, "'notes.txt' is text/plain"),
        (
            {"text": "ok"},
            {"image": ("fake.jpg", b"\xff\xd8 not a jpeg", "image/jpeg")},
            415,
            "not a readable image",
        ),
        (
            {"text": "ok"},
            {"image": ("big.png", b"\x89PNG" + b"0" * 300_000, "image/png")},
            413,
            "0.2 MB limit",
        ),
        ({"text": "ok"}, {"image": ("empty.png", b"", "image/png")}, 415, "is empty"),
    ],
)
def test_bad_requests_get_clear_4xx(client, data, files, status, message):
    response = client.post("/predict", data=data, files=files)
    assert response.status_code == status and message in response.json()["detail"]


def test_mre_run_without_ner_asks_for_one(tiny_re_run):
    client = TestClient(create_app(Extractor.load(tiny_re_run, detector=None)))
    response = client.post("/predict", data={"text": "Fezai met Tifeele"})
    assert response.status_code == 422 and "attach an NER run" in response.json()["detail"]
    given = client.post("/predict", data={"text": "Fezai met Tifeele", "head": "Fezai", "tail": "Tifeele"})
    assert given.status_code == 200 and len(given.json()["relations"]) == 1


# ---- the page in a real browser -----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(extractor):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(extractor), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=5)


def launch_chromium(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
        ],
    )


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)")
def test_page_in_headless_chromium(served, extractor, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    image_path = tmp_path / "upload.png"
    image_path.write_bytes(_png((320, 240)))
    text = "Fezai won the cup at Tifeele Restor"
    expected = extractor.predict(text, image_path)
    assert expected, "the tiny run tags something in this post, so the highlighting is exercised"
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(served)
        page.fill("#text", text)
        page.set_input_files("#image", str(image_path))
        page.click("#submit")
        page.wait_for_selector("body[data-state=done]", timeout=30_000)
        marks = page.locator("#tagged mark")
        assert marks.count() == len(expected)
        for index, entity in enumerate(expected):
            assert marks.nth(index).get_attribute("data-type") == entity.type
            assert marks.nth(index).inner_text().startswith(entity.text)
        assert page.locator("#stage .box").count() == 2
        assert page.locator("#stage .box").first.get_attribute("data-label") == "Person"
        page.fill("#text", "")
        page.click("#submit")
        page.wait_for_selector("body[data-state=error]", timeout=30_000)
        assert "text is empty" in page.inner_text("#error")
        browser.close()


# ---- JSON API, streaming cap, batching ------------------------------------------------------------------


def test_json_body_with_base64_image_equals_multipart(client):
    import base64

    text = "Fezai won the cup at Tifeele Restor"
    image = _png()
    as_json = client.post("/predict", json={"text": text, "image": base64.b64encode(image).decode()})
    as_form = client.post("/predict", data={"text": text}, files={"image": ("a.png", image, "image/png")})
    assert as_json.status_code == as_form.status_code == 200
    assert as_json.json() == as_form.json() and as_json.json()["image_used"] is True
    plain = client.post("/predict", json={"text": text, "image": None})
    assert plain.status_code == 200 and plain.json()["image_used"] is False


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{not json", {"content-type": "application/json"}, 422, "not valid JSON"),
        (b'{"image": null}', {"content-type": "application/json"}, 422, 'the "text" field is missing'),
        (b'["a list"]', {"content-type": "application/json"}, 422, "must be an object"),
        (b'{"text": "ok", "image": "%%%"}', {"content-type": "application/json"}, 422, "not valid base64"),
        (b'{"text": 5}', {"content-type": "application/json"}, 422, '"text" must be a string'),
        (b'{"text": "a\\u0000b"}', {"content-type": "application/json"}, 422, "control character U+0000"),
        (b"text=hello", {"content-type": "text/plain"}, 415, "send JSON"),
        (
            b'{"text": "a\\ud800"}',
            {"content-type": "application/json"},
            422,
            "lone surrogate U+D800 at character 2",
        ),
        (
            b'{"text": "ok", "caption": "\\udfff"}',
            {"content-type": "application/json"},
            422,
            "caption holds a lone",
        ),
        (
            b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            {"content-type": "application/json"},
            422,
            "nested too",
        ),
        (b'{"text": "ok", "n": ' + b"9" * 5000 + b"}", {"content-type": "application/json"}, 422, "number"),
    ],
)
def test_malformed_bodies_say_what_to_send(client, body, headers, status, message):
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == status and message in response.json()["detail"], response.text


def test_oversized_bodies_are_refused_with_413(client):
    huge_text = client.post("/predict", json={"text": "x" * 1_000_000})
    assert huge_text.status_code == 413 and "request body is larger" in huge_text.json()["detail"]

    sent = []

    def chunks():  # a chunked upload (no Content-Length): the cap holds as the bytes arrive
        for _ in range(80):
            sent.append(1)
            yield b"0" * 65536

    streamed = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_concurrent_requests_are_batched_and_equal_single_predictions(extractor):
    import asyncio

    from mmib.predict.serve import MicroBatcher, PostRequest
    from mmib.predict.tokenize import tokenize_post

    texts = [f"Fezai number {i} met Tifeele Restor" for i in range(8)]
    batcher = MicroBatcher(extractor, batch_size=8, max_wait=5.0)

    async def all_at_once():
        posts = [PostRequest(t, tokenize_post(t)) for t in texts]
        with batcher.arrival():  # one more request is still being read: the batch waits for the others
            futures = [batcher.enqueue(p) for p in posts]
        return await asyncio.gather(*futures)

    results = asyncio.run(all_at_once())
    assert batcher.batches == [8]
    assert [r.entities for r in results] == [extractor.analyze(t).entities for t in texts]

    async def alone():  # nobody else on the way: no waiting for company
        return await batcher.submit(PostRequest(texts[0], tokenize_post(texts[0])))

    started = time.perf_counter()
    asyncio.run(alone())
    assert batcher.batches == [8, 1] and time.perf_counter() - started < 2.0


def _one_bit_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.mark.slow
def test_hostile_small_images_stay_within_the_pixel_budget_and_info_stays_fast(extractor):
    """Eight small PNGs that each decode to 9 Mpx, sent at once: at most the budget (here one image's
    pixels) is decoded at a time, and /info answers while they are in flight."""
    import httpx

    app = create_app(extractor, max_upload_bytes=200_000, max_pixels_in_flight=10_000_000)
    payload = _one_bit_png(3000)
    assert len(payload) < 20_000

    async def attack() -> tuple[list[int], float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mmib") as client:
            posts = [
                client.post(
                    "/predict",
                    data={"text": "Fezai met Tifeele"},
                    files={"image": ("x.png", payload, "image/png")},
                )
                for _ in range(8)
            ]
            started = asyncio.get_running_loop().time()
            tasks = [asyncio.ensure_future(p) for p in posts]
            await asyncio.sleep(0.05)
            info_started = asyncio.get_running_loop().time()
            info = await client.get("/info")
            info_seconds = asyncio.get_running_loop().time() - info_started
            assert info.status_code == 200 and started
            answers = await asyncio.gather(*tasks)
            return [a.status_code for a in answers], info_seconds

    import asyncio

    statuses, info_seconds = asyncio.run(attack())
    assert statuses == [200] * 8
    assert app.state.pixel_budget.peak <= 10_000_000 and app.state.pixel_budget.in_flight == 0
    assert info_seconds < 0.5, info_seconds


def test_pixel_budget_admits_what_fits_and_one_request_alone():
    from mmib.predict.serve import PixelBudget

    budget = PixelBudget(100)
    budget.reserve(60)
    waiting = threading.Thread(target=budget.reserve, args=(60,), daemon=True)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and budget.in_flight == 60  # 120 > 100: it waits
    budget.release(60)
    waiting.join(2)
    assert not waiting.is_alive() and budget.in_flight == 60
    budget.release(60)
    budget.reserve(500)  # alone in flight, larger than the budget: admitted
    assert budget.in_flight == 500 and budget.peak == 500
