"""Shared fixtures. Real benchmark files are read from ``../shared`` beside the checkout (or
``$MMIB_SHARED_DIR``); tests that need them skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMIB_SHARED_DIR", REPO_ROOT.parent / "shared"))


def shared_path(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not available (set MMIB_SHARED_DIR to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def synth_ner(tmp_path_factory) -> Path:
    from mmib.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth-ner")
    generate(SynthConfig(task="ner", size="small", seed=7), out, progress=False)
    return out


@pytest.fixture(scope="session")
def synth_re(tmp_path_factory) -> Path:
    from mmib.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth-re")
    generate(SynthConfig(task="re", size="small", seed=7), out, progress=False)
    return out
