"""Where mmib computes: one device choice for training, evaluation, prediction and serving alike, the
prediction runtimes, and the OpenMP setting prediction wants.

Imports no torch at module level, so the command line can read the choices without loading it.
"""

from __future__ import annotations

import os

from mmib.errors import SettingError

DEVICES = ("auto", "cpu", "cuda", "mps")
RUNTIMES = ("torch", "onnx")  # prediction: PyTorch, or the exported text encoder and CNN under ONNX Runtime


def resolve_device(device: object = "auto"):
    """A ``torch.device``: ``auto`` is CUDA where present, then Apple MPS, then the CPU. An unknown name, or
    an asked device this machine does not have, is a one-line ValueError."""
    import torch

    if isinstance(device, torch.device):
        return device
    name = str(device)
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise SettingError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SettingError(f"--device {name}: no CUDA device is visible to this process")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise SettingError(f"--device {name}: Apple's MPS backend is not available here")
    return torch.device(name)


def device_name(device) -> str:
    """What a run records of its device: the card's name for CUDA."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def passive_openmp() -> None:
    """OpenMP workers that sleep between parallel regions instead of spinning.

    Prediction interleaves torch's OpenMP workers with ONNX Runtime's and the detector's threads (and, in
    the server, request handling) on the same cores. Spinning workers keep the cores busy after each torch
    op and starve the others: with the detector, ONNX Runtime predicts 30.6 posts/s with spinning workers
    and 35.4 with sleeping ones (benchmarks/prediction_latency.py, 2 cores). OpenMP reads the setting when
    torch loads, so it takes effect only before the first ``import torch``: ``mmib predict`` and ``mmib
    serve`` apply it first, and ``import mmib.predict`` applies it when torch is not loaded yet. Training
    keeps spinning workers (faster for one stream of torch ops); an explicit ``OMP_WAIT_POLICY`` wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
