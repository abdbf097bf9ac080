"""``mmib serve`` under hostile images: N concurrent uploads of a small PNG that decodes to a huge one-bit
image (9400 x 9400 pixels, about 11 KB, under the per-image pixel limit), at commit ``--baseline`` and at
this checkout, each server in its own process. Reports the server's peak resident memory (VmHWM) and the
slowest ``GET /info`` answered while the uploads are in flight. Writes benchmarks/results/serve_hostile.json.

    python benchmarks/serve_hostile.py --baseline f171dbe

The served run is an untrained MiniLM NER model saved by this script (the weights do not matter here: the
measurement is of decoding and holding images), served without a detector.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hostile_png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def untrained_run(folder: Path) -> Path:
    from mmib.model import MMIBConfig
    from mmib.model.mmib import build_model
    from mmib.model.run_folder import RunFolder

    config = MMIBConfig(task="ner", labels=["O", "B-PER", "I-PER"])
    model, tokenizer = build_model(config)
    model.save_pretrained(folder, tokenizer)
    # the baseline's MMIBConfig predates the caption settings; without them this checkout reads the values
    # that run folders saved before them always had, so both sides serve the same model
    saved = RunFolder(folder).model_config
    values = json.loads(saved.read_text())
    for key in ("caption_max_tokens", "caption_extends_window"):
        values.pop(key)
    saved.write_text(json.dumps(values, indent=2))
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def attack(source: Path, run: Path, payload: bytes, uploads: int) -> dict:
    import httpx

    port = free_port()
    environment = os.environ | {"PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "mmib", "serve", str(run), "--port", str(port), "--no-detector"]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"{source}: mmib serve exited: {server.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{base}/info", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        idle = peak_rss_mb(server.pid)
        statuses: list[int] = []

        def upload() -> None:
            files = {"image": ("hostile.png", payload, "image/png")}
            answer = httpx.post(
                f"{base}/predict", data={"text": "Kobe Bryant in LA"}, files=files, timeout=600
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=upload) for _ in range(uploads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        info_seconds = []
        while any(t.is_alive() for t in threads):
            asked = time.perf_counter()
            httpx.get(f"{base}/info", timeout=600)
            info_seconds.append(time.perf_counter() - asked)
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        return {
            "statuses": sorted(statuses),
            "seconds": round(time.perf_counter() - started, 2),
            "idle_rss_mb": round(idle, 1),
            "peak_rss_mb": round(peak_rss_mb(server.pid), 1),
            "info_seconds_max": round(max(info_seconds), 3),
            "info_seconds_median": round(sorted(info_seconds)[len(info_seconds) // 2], 3),
            "info_requests": len(info_seconds),
        }
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="f171dbe")
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--side", type=int, default=9400)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_hostile.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_eval import git_commit, hardware

    payload = hostile_png(args.side)
    baseline = subprocess.check_output(["git", "rev-parse", args.baseline], cwd=ROOT, text=True).strip()
    with tempfile.TemporaryDirectory(prefix="mmib-hostile-") as scratch:
        scratch = Path(scratch)
        run = untrained_run(scratch / "run")
        tree = scratch / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), baseline], cwd=ROOT, check=True)
        try:
            sides = {f"baseline {baseline[:7]}": tree / "src", "this checkout": ROOT / "src"}
            measured = {}
            for side, source in sides.items():
                measured[side] = attack(source, run, payload, args.uploads)
                print(side, json.dumps(measured[side]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
            shutil.rmtree(tree, ignore_errors=True)
    import inspect

    from mmib.predict.serve import create_app

    budget = inspect.signature(create_app).parameters["max_pixels_in_flight"].default
    result = {
        "uploads": args.uploads,
        "this_checkout_pixel_budget": budget,
        "this_checkout_pixel_budget_rgb_mb": round(3 * budget / 2**20, 1),
        "image": f"{args.side} x {args.side} one-bit PNG, {len(payload)} bytes",
        "sides": measured,
        "command": " ".join(["python", *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
