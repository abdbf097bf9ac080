"""Screenshot of the `mmib serve` demo page with a real prediction: reports/demo.png.

    python scripts/demo_screenshot.py runs/bench/synth-ner-small-mmib/seed-1 \
        --data runs/data/synth-ner-small-seed13 --out reports/demo.png

Picks the first test post of a synthetic benchmark whose entity type is decided by the image, where the
detector finds an object and the model's entities equal the gold ones; types it into the page in headless
Chromium, uploads its image, and saves the page. Needs Debian's chromium, the playwright package and the
fetched detector (mmib models fetch-detector).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from mmib.data import load_dataset
from mmib.metrics import extract_spans
from mmib.predict import Extractor
from mmib.predict.serve import create_app


def pick_post(extractor: Extractor, data: Path):
    meta = {}
    for line in (data / "synth_meta.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["split"] == "test":
            meta[item["image_id"]] = item
    for post in load_dataset(data).splits["test"]:
        image = data / "synth_images" / f"{post.image_id}.jpg"
        item = meta.get(post.image_id, {})
        if item.get("category") != "image" or not image.exists():
            continue
        text = " ".join(post.tokens)
        result = extractor.analyze(text, image)
        gold = [(t, " ".join(post.tokens[a:b])) for t, a, b in extract_spans(post.tags)]
        if result.objects and [(e.type, e.text) for e in result.entities] == gold:
            return text, image
    raise SystemExit("no suitable test post found")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="synthetic benchmark folder")
    parser.add_argument("--out", type=Path, default=Path("reports/demo.png"))
    args = parser.parse_args()

    extractor = Extractor.load(args.run_dir)
    if extractor.detector is None:
        raise SystemExit("fetch the detector first: mmib models fetch-detector")
    text, image = pick_post(extractor, args.data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(extractor), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(f"http://127.0.0.1:{port}/")
        page.fill("#text", text)
        page.set_input_files("#image", str(image))
        page.click("#submit")
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        print(f"{args.out}: post {text!r}, image {image.name}, page shows {page.inner_text('#tagged')!r}")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
