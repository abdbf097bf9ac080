"""``mmib serve``: a FastAPI app with a JSON API and a one-page demo.

    GET  /         the demo page (type a post, drop an image, see entities, object boxes and relations)
    GET  /info     what the loaded run is (task, variant, encoders, detector, limits)
    POST /predict  either application/json {"text": ..., "image": <base64 or null>, "caption", "head", "tail"}
                   or multipart/form-data with the same fields (image as a file), or a plain url-encoded
                   form without an image

Bad input gets a 4xx with a one-line ``detail`` that says what to send: 413 for a body over the cap
(enforced as the bytes arrive, before anything reaches the disk), 415 for a file that is not an image or
a body of another type, 422 for malformed JSON, missing or empty text, over-long text, or an entity not in
the text.

Concurrent requests are batched: each waits at most ``max_wait_ms`` for others to join it, and up to
``batch_size`` posts go through the networks together (the offline batch path, :meth:`Extractor.analyze_many`),
so eight clients get close to the offline batched rate instead of one post at a time.

Images are decoded off the event loop, by a pool of two threads, under a budget of decoded pixels in flight
(:class:`PixelBudget`, ``max_pixels_in_flight``): an upload's size is read from its header, and its decoding
waits until the pixels decoded and not yet predicted leave room for it. So a small file that decodes to a
huge image (a 10 KB PNG of 9400 x 9400 one-bit pixels) costs at most the budget at RGB, 3 bytes a pixel,
however many arrive at once, and ``GET /info`` never waits behind a decode.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import queue
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from mmib.data.images import DEFAULT_MAX_PIXELS, ImageUnreadable, decode_image
from mmib.predict.extractor import Extractor
from mmib.predict.inputs import InputError, check_caption, check_text
from mmib.predict.results import PostPrediction
from mmib.processing import ReTask

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
TEXT_ROOM = 1 << 16  # what a body may hold beside the image: the text, other fields, multipart headers
HOW_TO_SEND = (
    'send JSON {"text": "...", "image": "<base64>" or null} or multipart/form-data with a text field and an '
    "optional image file"
)


@dataclass
class PostRequest:
    """One /predict request, parsed and checked."""

    text: str
    tokens: list
    picture: object = None  # PIL image or None
    caption: str | None = None
    head: str | None = None
    tail: str | None = None
    notes: list[str] = field(default_factory=list)
    pixels: int = 0  # of the decoded picture, held in the PixelBudget until the prediction is done


class PixelBudget:
    """Decoded pixels in flight, at most ``limit``: :meth:`reserve` blocks (in a decoding thread, never the
    event loop) until the request fits, :meth:`release` frees it once its prediction is done. A request
    alone in flight is always admitted, so an image below the per-image limit never waits forever."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0  # the most pixels held at once (tests, the benchmark)
        self._condition = threading.Condition()

    def reserve(self, pixels: int) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self.in_flight == 0 or self.in_flight + pixels <= self.limit)
            self.in_flight += pixels
            self.peak = max(self.peak, self.in_flight)

    def release(self, pixels: int) -> None:
        if pixels:
            with self._condition:
                self.in_flight -= pixels
                self._condition.notify_all()


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (a declared Content-Length
    over the limit is refused before any byte is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is larger than the {limit / 2**20:.1f} MB limit")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"request body is larger than the {limit / 2**20:.1f} MB limit")
    return bytes(body)


@dataclass
class Upload:
    """An image upload, checked for type and size but not yet decoded."""

    data: bytes
    name: str


def check_upload(data: bytes, name: str, content_type: str | None, limit: int) -> Upload:
    if content_type is not None and content_type not in IMAGE_TYPES:
        raise HTTPException(
            415,
            f"{name!r} is {content_type or 'of unknown type'}; send a JPEG, PNG, GIF, WebP, BMP or TIFF image",
        )
    if not data:
        raise HTTPException(415, f"{name!r} is empty")
    if len(data) > limit:
        raise HTTPException(413, f"image upload is larger than the {limit / 2**20:.1f} MB limit")
    return Upload(data, name)


def decode_within(upload: Upload, budget: PixelBudget) -> tuple[object, int]:
    """(image, pixels reserved): the header's size is reserved in ``budget`` before a pixel is decoded (in
    a decoding thread). Raises HTTPException(415) for what is not a readable image, reserving nothing."""
    try:
        with Image.open(io.BytesIO(upload.data)) as header:
            pixels = header.width * header.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        pixels = 0  # decode_image says why below
    if pixels > DEFAULT_MAX_PIXELS:
        pixels = 0  # refused by decode_image, never decoded
    budget.reserve(pixels)
    try:
        return decode_image(upload.data), pixels
    except ImageUnreadable as error:
        budget.release(pixels)
        raise HTTPException(415, f"{upload.name!r} is not a readable image: {error.reason}") from None
    except BaseException:
        budget.release(pixels)
        raise


def optional_string(fields: dict, key: str) -> str | None:
    value = fields.get(key)
    if value is not None and not isinstance(value, str):
        raise HTTPException(422, f'"{key}" must be a string or null; {HOW_TO_SEND}')
    return value or None


async def parse_json(body: bytes, image_limit: int) -> tuple[dict, Upload | None]:
    try:
        fields = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(422, f"the body is not valid JSON ({error}); {HOW_TO_SEND}") from None
    except RecursionError:  # JSON nested thousands deep
        raise HTTPException(422, f"the JSON body is nested too deeply; {HOW_TO_SEND}") from None
    except ValueError as error:  # an integer of more digits than Python converts (int_max_str_digits)
        raise HTTPException(
            422, f"the JSON body holds an unreadable number ({error}); {HOW_TO_SEND}"
        ) from None
    if not isinstance(fields, dict):
        raise HTTPException(422, f"the JSON body must be an object; {HOW_TO_SEND}")
    picture = None
    encoded = optional_string(fields, "image")
    if encoded is not None:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, f'"image" is not valid base64; {HOW_TO_SEND}') from None
        picture = check_upload(data, "image", None, image_limit)
    return fields, picture


async def parse_multipart(request: Request, body: bytes, image_limit: int) -> tuple[dict, Upload | None]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:  # the body is already in memory and capped: parts may be as large as the body
        form = await MultiPartParser(request.headers, stream(), max_part_size=len(body) + 1).parse()
    except MultiPartException as error:
        raise HTTPException(422, f"malformed multipart body ({error.message}); {HOW_TO_SEND}") from None
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    upload = form.get("image")
    picture = None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read()
        picture = check_upload(data, upload.filename, upload.content_type, image_limit)
    return fields, picture


class MicroBatcher:
    """Collects concurrent posts into batches for :meth:`Extractor.analyze_many`, run one batch at a time by a
    worker thread.

    A batch closes when it is full, or when no other request is on its way: requests announce themselves on
    arrival (:meth:`arrival`), before their body is read and checked, so a batch waits for requests already
    being parsed (at most ``max_wait`` seconds) but a lone client never waits for company that is not coming.
    A thread rather than an asyncio task: the networks block, and a thread serves every event loop alike
    (uvicorn's, or each request's in a test client).
    """

    def __init__(self, extractor: Extractor, batch_size: int, max_wait: float) -> None:
        self.extractor = extractor
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()  # the networks run one batch at a time: the CPU is the bottleneck
        self.batches: list[int] = []  # sizes of the batches run, for tests and the benchmark
        self.arriving = 0  # requests announced but not yet queued (their body is being read and checked)
        self._arrivals = threading.Lock()
        threading.Thread(target=self._worker, name="mmib-batcher", daemon=True).start()

    @contextmanager
    def arrival(self):
        """Around reading and checking a request: the batch being gathered may wait for it."""
        with self._arrivals:
            self.arriving += 1
        try:
            yield
        finally:
            with self._arrivals:
                self.arriving -= 1

    def enqueue(self, post: PostRequest) -> asyncio.Future:
        """Queue a post now; await the returned future for its prediction (call from a running event loop)."""
        future: Future = Future()
        self.queue.put((post, future))
        return asyncio.wrap_future(future)

    async def submit(self, post: PostRequest) -> PostPrediction:
        return await self.enqueue(post)

    def _worker(self) -> None:
        while True:
            items = [self.queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(items) < self.batch_size and (left := deadline - time.monotonic()) > 0:
                try:  # wait only while some request is on its way
                    items.append(self.queue.get(timeout=left) if self.arriving else self.queue.get_nowait())
                except queue.Empty:
                    break
            self.batches.append(len(items))
            try:
                outcomes = self._run([post for post, _ in items])
            except Exception as error:  # a bug must reach the requests, not kill the worker
                outcomes = [error] * len(items)
            for (_, future), outcome in zip(items, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _run(self, posts: list[PostRequest]) -> list[PostPrediction | Exception]:
        with self.lock:
            try:
                return list(self.extractor.analyze_many([(p.text, p.picture, p.caption) for p in posts]))
            except InputError:  # one bad post: score the others alone so that only it fails
                return [self._one(post) for post in posts]

    def _one(self, post: PostRequest) -> PostPrediction | Exception:
        try:
            return self.extractor.analyze(post.text, post.picture, post.caption)
        except InputError as error:
            return error

    def relations(self, post: PostRequest) -> PostPrediction:
        """An MRE request for one given head and tail (not batched: it has its own pair)."""
        with self.lock:
            return self.extractor.analyze_pair(post.text, post.picture, post.head, post.tail, post.caption)


def run_info(extractor: Extractor, max_upload_bytes: int) -> dict:
    """What ``GET /info`` says about the loaded run."""
    config = extractor.config
    return {
        "task": config.task,
        "variant": config.variant,
        "text_encoder": config.text_encoder,
        "image_encoder": None if config.text_only else config.image_encoder,
        "image_source": None if config.text_only else config.image_source,
        "detector": getattr(extractor.detector, "name", None),
        "ner_attached": extractor.ner is not None,
        "labels": config.labels,
        "max_upload_bytes": max_upload_bytes,
        "max_chars": extractor.max_chars,
    }


class RequestReader:
    """A ``POST /predict`` body (JSON, multipart or a plain form) read into a checked :class:`PostRequest`:
    the body capped, the text and caption checked, the image decoded last, off the event loop, within the
    pixel budget. Every mistake is a 4xx naming it."""

    def __init__(self, extractor: Extractor, max_upload_bytes: int, budget: PixelBudget) -> None:
        self.extractor = extractor
        self.max_upload_bytes = max_upload_bytes
        self.body_limit = max_upload_bytes * 4 // 3 + 4 + TEXT_ROOM  # base64 in JSON is 4/3 of the image
        self.budget = budget
        self.decoding = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mmib-serve-decode")

    async def read(self, request: Request) -> PostRequest:
        fields, picture = await self._fields(request)
        post = self._checked(fields)
        if picture is not None:  # decoded last, off the event loop, once everything else is known good
            loop = asyncio.get_running_loop()
            post.picture, post.pixels = await loop.run_in_executor(
                self.decoding, decode_within, picture, self.budget
            )
        if post.picture is not None and not self.extractor.image_side.reads_pixels:
            post.notes.append("this run does not read pixels: the image was not used")
        elif post.picture is not None and self.extractor.detector is None:
            post.notes.append("no object detector installed: the whole image was used, without object crops")
        return post

    async def _fields(self, request: Request) -> tuple[dict, Upload | None]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (
            "application/json",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ):
            raise HTTPException(415, f"the body is {content_type or 'of no declared type'}; {HOW_TO_SEND}")
        body = await read_capped(request, self.body_limit)
        if content_type == "application/json":
            return await parse_json(body, self.max_upload_bytes)
        if content_type == "application/x-www-form-urlencoded":  # a plain HTML form: text fields only
            return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)), None
        return await parse_multipart(request, body, self.max_upload_bytes)

    def _checked(self, fields: dict) -> PostRequest:
        if "text" not in fields:
            raise HTTPException(422, f'the "text" field is missing; {HOW_TO_SEND}')
        text = fields["text"]
        try:
            if not isinstance(text, str):
                raise InputError(f'"text" must be a string, got {type(text).__name__}')
            tokens = check_text(text, self.extractor.max_chars)
            caption = check_caption(fields.get("caption"))
        except InputError as error:
            raise HTTPException(422, str(error)) from None
        head, tail = optional_string(fields, "head"), optional_string(fields, "tail")
        return PostRequest(text, tokens, None, caption, head, tail)


def create_app(
    extractor: Extractor,
    max_upload_bytes: int = 10 * 2**20,
    batch_size: int = 16,
    max_wait_ms: float = 50.0,
    max_pixels_in_flight: int = DEFAULT_MAX_PIXELS + 10_000_000,
) -> FastAPI:
    """The app. ``max_pixels_in_flight``: decoded pixels held at once (default: one image at the per-image
    limit plus 10 Mpx, about 0.3 GB at RGB)."""
    app = FastAPI(title="mmib", description="Multimodal entity and relation extraction (MMIB)")
    page = resources.files("mmib.predict").joinpath("static/index.html").read_text(encoding="utf-8")
    batcher = app.state.batcher = MicroBatcher(extractor, batch_size, max_wait_ms / 1000)
    budget = app.state.pixel_budget = PixelBudget(max_pixels_in_flight)
    reader = RequestReader(extractor, max_upload_bytes, budget)
    classifies_pairs = isinstance(extractor.processor.task, ReTask)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/info")
    def info() -> dict:
        return run_info(extractor, max_upload_bytes)

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        with batcher.arrival():
            post = await reader.read(request)
            future = None if classifies_pairs and post.head and post.tail else batcher.enqueue(post)
        try:
            if future is None:  # a given head and tail: its own pass, not batched
                result = await asyncio.get_running_loop().run_in_executor(None, batcher.relations, post)
            else:
                result = await future
        except InputError as error:
            raise HTTPException(422, str(error)) from None
        finally:
            image_size = list(post.picture.size) if post.picture is not None else None
            post.picture = None
            budget.release(post.pixels)
        return {**result.as_dict(), "image_size": image_size, "notes": post.notes}

    return app
