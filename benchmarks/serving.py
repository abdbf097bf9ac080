"""Posts/s through `mmib serve` with 1 and with 8 concurrent clients, beside the offline batched rate of the
same model on the same posts, in one run (run it on an idle machine).

    python benchmarks/serving.py RUN --data SYNTH_FOLDER [--posts 128] [--batch-size 16]

RUN is any MMIB run folder (the figures depend on the networks' sizes, not on how well the run was trained);
SYNTH_FOLDER a dataset whose test posts have images (`mmib data synth`). Each client posts multipart requests
(text + image file), one after another. Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from mmib.data import load_dataset
from mmib.data.images import decode_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from train_eval import git_commit, hardware  # noqa: E402


def test_posts(data: Path, count: int) -> list[tuple[str, Path]]:
    dataset = load_dataset(data)
    images = Path(data) / "synth_images"
    posts = []
    for post in dataset.splits["test"]:
        path = images / f"{post.image_id}.jpg"
        if path.exists():
            posts.append((" ".join(post.tokens), path))
        if len(posts) == count:
            break
    return posts


def offline_rate(run: Path, posts: list[tuple[str, Path]], batch_size: int) -> float:
    """Posts/s of Extractor.analyze_many over the posts (images decoded inside the timing, as a server does)."""
    from mmib.predict import Extractor

    extractor = Extractor.load(run, detector=None, batch_size=batch_size)
    extractor.analyze_many([(text, decode_image(path)) for text, path in posts[:batch_size]])  # warm-up
    start = time.perf_counter()
    for begin in range(0, len(posts), batch_size):
        chunk = posts[begin : begin + batch_size]
        extractor.analyze_many([(text, decode_image(path)) for text, path in chunk])
    return len(posts) / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client_rate(url: str, posts: list[tuple[str, Path]], clients: int) -> float:
    """Posts/s with ``clients`` concurrent clients, each sending its share of the posts one after another."""
    payloads = [(text, path.read_bytes()) for text, path in posts]

    def one_client(share: list[tuple[str, bytes]]) -> None:
        with httpx.Client(timeout=120) as client:
            for text, image in share:
                response = client.post(
                    url, data={"text": text}, files={"image": ("p.jpg", image, "image/jpeg")}
                )
                response.raise_for_status()

    shares = [payloads[i::clients] for i in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one_client, shares))
    return len(payloads) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=3, help="each post is sent this many times (longer, steadier timings)"
    )
    args = parser.parse_args()
    posts = test_posts(args.data, args.posts) * args.rounds
    offline = offline_rate(args.run, posts, args.batch_size)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mmib.cli", "serve", str(args.run), "--port", str(port), "--no-detector"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # the model loads in a few seconds
            try:
                httpx.get(f"{base}/info", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        client_rate(f"{base}/predict", posts[:16], 8)  # warm-up
        one = client_rate(f"{base}/predict", posts, 1)
        eight = client_rate(f"{base}/predict", posts, 8)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {
        "run": str(args.run),
        "data": str(args.data),
        "posts": len(posts),
        "rounds": args.rounds,
        "detector": None,
        "offline_batched_posts_per_second": round(offline, 2),
        "offline_batch_size": args.batch_size,
        "server_1_client_posts_per_second": round(one, 2),
        "server_8_clients_posts_per_second": round(eight, 2),
        "server_8_clients_share_of_offline": round(eight / offline, 3),
        "hardware": hardware(),
        "git_commit": git_commit(),
        "command": "python benchmarks/serving.py " + " ".join(sys.argv[1:]),
    }
    (ROOT / "benchmarks" / "results" / "serving.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
