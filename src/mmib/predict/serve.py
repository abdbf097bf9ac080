"""``mmib serve``: a FastAPI app with a JSON API and a one-page demo.

    GET  /         the demo page (type a post, drop an image, see entities, object boxes and relations)
    GET  /info     what the loaded run is (task, variant, encoders, detector, limits)
    POST /predict  multipart form: text, image (optional file), head and tail (optional, MRE runs)

Bad input gets a 4xx with a one-line ``detail``: 413 for an upload over the cap, 415 for a file that is
not an image, 422 for empty or over-long text or an entity not in the text.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse

from mmib.data.images import ImageUnreadable, decode_image
from mmib.predict.extractor import Extractor, InputError, PostPrediction, check_text

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
CHUNK = 1 << 16


def _read_capped(upload: UploadFile, limit: int) -> bytes:
    data = bytearray()
    while chunk := upload.file.read(CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise HTTPException(413, f"image upload is larger than the {limit / 2**20:.1f} MB limit")
    return bytes(data)


def _decode_upload(upload: UploadFile, limit: int):
    if upload.content_type not in IMAGE_TYPES:
        raise HTTPException(
            415,
            f"{upload.filename!r} is {upload.content_type or 'of unknown type'}; send a JPEG, PNG, GIF, WebP, BMP or TIFF image",
        )
    data = _read_capped(upload, limit)
    if not data:
        raise HTTPException(415, f"{upload.filename!r} is empty")
    try:
        return decode_image(data)
    except ImageUnreadable as error:
        raise HTTPException(415, f"{upload.filename!r} is not a readable image: {error.reason}") from None


def create_app(extractor: Extractor, max_upload_bytes: int = 10 * 2**20) -> FastAPI:
    app = FastAPI(title="mmib", description="Multimodal entity and relation extraction (MMIB)")
    lock = threading.Lock()  # one forward pass at a time: the CPU is the bottleneck, not the request count
    config = extractor.config
    page = resources.files("mmib.predict").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/info")
    def info() -> dict:
        return {
            "task": config.task,
            "variant": config.variant,
            "text_encoder": config.text_encoder,
            "image_encoder": None if config.text_only else config.image_encoder,
            "detector": getattr(extractor.detector, "name", None),
            "ner_attached": extractor.ner is not None,
            "labels": config.labels,
            "max_upload_bytes": max_upload_bytes,
            "max_chars": extractor.max_chars,
        }

    @app.post("/predict")
    def predict(
        text: Annotated[str, Form()] = "",
        image: Annotated[UploadFile | None, File()] = None,
        head: Annotated[str | None, Form()] = None,
        tail: Annotated[str | None, Form()] = None,
    ) -> dict:
        try:
            tokens = check_text(text, extractor.max_chars)
        except InputError as error:
            raise HTTPException(422, str(error)) from None
        picture = _decode_upload(image, max_upload_bytes) if image is not None and image.filename else None
        notes = []
        if picture is not None and config.text_only:
            notes.append("this run is text-only: the image was not used")
        if picture is not None and not config.text_only and extractor.detector is None:
            notes.append("no object detector installed: the whole image was used, without object crops")
        try:
            with lock:
                if config.task == "mre" and head and tail:
                    result = PostPrediction(text, tokens, image_used=picture is not None)
                    result.relations = extractor.relations(text, picture, head, tail, include_none=True)
                    result.entities = [result.relations[0].head, result.relations[0].tail]
                else:
                    result = extractor.analyze(text, picture)
        except InputError as error:
            raise HTTPException(422, str(error)) from None
        body = result.as_dict()
        body["image_size"] = list(picture.size) if picture is not None else None
        body["notes"] = notes
        return body

    return app
