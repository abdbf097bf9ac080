"""One device choice for the whole package (mmib.devices): training, features, prediction and serving."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from mmib.devices import RUNTIMES, resolve_device

NO_CUDA = not torch.cuda.is_available()


def test_auto_takes_what_this_machine_has_and_names_are_checked():
    expected = (
        "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, mps, not 'gpu'"):
        resolve_device("gpu")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_an_absent_device_is_one_line_on_every_command(tiny_ner_run, synth_ner, tmp_path):
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        resolve_device("cuda:1")
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"id": "1", "text": "Kobe Bryant at Staples Center"}\n')
    commands = [
        ["predict", str(tiny_ner_run), "--input", str(posts), "--output", str(tmp_path / "out.jsonl")],
        ["features", str(synth_ner), "--image-encoder", "random-cnn", "--cache", str(tmp_path / "cache")],
    ]
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "mmib", *command, "--device", "cuda"], capture_output=True, text=True
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            "error: --device cuda: no CUDA device is visible to this process"
        ]
    assert not (tmp_path / "out.jsonl").exists()


def test_the_cli_offers_the_runtimes_the_package_lists():
    from mmib.cli import Runtime
    from mmib.predict import onnx_runtime

    assert tuple(runtime.value for runtime in Runtime) == RUNTIMES
    assert not hasattr(onnx_runtime, "RUNTIMES")  # listed once


@pytest.mark.parametrize(("first", "expected"), [("", "PASSIVE"), ("import torch; ", "None")])
def test_the_python_api_lets_openmp_workers_sleep_when_it_can(first, expected):
    """OpenMP reads its wait policy when torch loads: importing mmib.predict first sets it; after torch it
    would come too late, so it is left alone."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = f"{first}import os, mmib.predict; print(os.environ.get('OMP_WAIT_POLICY'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert done.stdout.strip() == expected, done.stderr
