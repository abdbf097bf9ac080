"""Training speed by hardware: processes on this machine's CPU, and GPUs where one is present.

    python benchmarks/scaling.py --data runs/data/synth-ner-small-seed13            # CPU: 1 and 2 processes
    python benchmarks/scaling.py --data runs/data/synth-ner-small-seed13 --gpu      # on a GPU machine

Each configuration is its own `mmib train` process (or `torchrun` group): one epoch over the first
`--samples` training posts of the small synthetic NER benchmark, image features cached beforehand, batch 16.
The samples/s is what the run's summary.json records (training steps only; dev evaluation excluded).
On CPU the two processes share the 2 cores (1 thread each) against one process with 2 threads: the point
is that it runs and agrees (tests/test_distributed.py), not speed. On a GPU: MiniLM and mpnet, text-only
and MMIB, fp32 and bf16, peak GPU memory, and the paper's configuration (BERT-base + ResNet-50 shapes,
randomly initialised, batch 8). Writes benchmarks/results/scaling.json (or scaling-gpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_eval import git_commit, hardware

from mmib.model.run_folder import RunFolder
from mmib.training.hardware import launch_command

ROOT = Path(__file__).resolve().parents[1]


def train_once(config: dict, processes: int, threads: int, scratch: Path, name: str) -> dict:
    """One short training run; its summary (samples/s, hardware, peak memory)."""
    folder = scratch / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "output_dir": str(folder / "run"), "threads": threads}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    arguments = ["train", str(folder / "config.yaml")]
    command = (
        launch_command(processes, arguments) if processes > 1 else [sys.executable, "-m", "mmib", *arguments]
    )
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads(RunFolder(folder / "run").summary.read_text())
    print(name, summary["train_samples_per_second"], "samples/s", summary["hardware"], flush=True)
    return summary


def paper_shaped_models(scratch: Path) -> tuple[str, str]:
    """Randomly initialised BERT-base and ResNet-50 of the real sizes (the weights are not reachable here),
    with MiniLM's tokenizer (the same uncased WordPiece vocabulary as bert-base-uncased)."""
    from transformers import AutoTokenizer, BertConfig, BertModel, ResNetConfig, ResNetModel

    from mmib.encoders.text import resolve_text_encoder

    bert, resnet = scratch / "bert-base-random", scratch / "resnet-50-random"
    BertModel(BertConfig()).save_pretrained(bert)
    AutoTokenizer.from_pretrained(resolve_text_encoder("all-MiniLM-L6-v2")).save_pretrained(bert)
    ResNetModel(ResNetConfig()).save_pretrained(resnet)
    return str(bert), str(resnet)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="the small synthetic NER benchmark folder")
    parser.add_argument("--samples", type=int, default=320)
    parser.add_argument("--gpu", action="store_true", help="the GPU matrix (needs CUDA)")
    args = parser.parse_args()
    base = {
        "data": args.data,
        "epochs": 1,
        "batch_size": 16,
        "patience": 0,
        "seed": 1,
        "max_train_samples": args.samples,
        "log_every": 0,
    }
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        if not args.gpu:
            cores = os.cpu_count() or 1
            for processes in (1, 2):
                config = {**base, "device": "cpu"}
                summary = train_once(
                    config, processes, max(1, cores // processes), scratch, f"cpu-{processes}"
                )
                rows.append(
                    {
                        "model": "MiniLM mmib",
                        **summary["hardware"],
                        "samples_per_second": summary["train_samples_per_second"],
                    }
                )
        else:
            import torch

            if not torch.cuda.is_available():
                raise SystemExit("--gpu: no CUDA device here")
            for encoder in ("all-MiniLM-L6-v2", "all-mpnet-base-v2"):
                for text_only in (True, False):
                    for precision in ("no", "bf16"):
                        name = f"{encoder}-{'text-only' if text_only else 'mmib'}-{precision}"
                        config = {
                            **base,
                            "precision": precision,
                            "model": {"text_encoder": encoder, "text_only": text_only},
                        }
                        summary = train_once(config, 1, 8, scratch, name)
                        rows.append(
                            {
                                "model": name,
                                **summary["hardware"],
                                "samples_per_second": summary["train_samples_per_second"],
                                "peak_gpu_mb": summary.get("peak_gpu_mb"),
                            }
                        )
            bert, resnet = paper_shaped_models(scratch)
            config = {
                **base,
                "batch_size": 8,
                "learning_rate": 3e-5,
                "model": {"text_encoder": bert, "image_encoder": resnet},
            }
            summary = train_once(config, 1, 8, scratch, "paper-shaped")
            rows.append(
                {
                    "model": "paper shapes: BERT-base + ResNet-50 (random init), batch 8",
                    **summary["hardware"],
                    "samples_per_second": summary["train_samples_per_second"],
                    "step_seconds": round(8 / summary["train_samples_per_second"], 4),
                    "peak_gpu_mb": summary.get("peak_gpu_mb"),
                }
            )
    result = {
        "rows": rows,
        "data": args.data,
        "samples": args.samples,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    out = ROOT / "benchmarks" / "results" / ("scaling-gpu.json" if args.gpu else "scaling.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
