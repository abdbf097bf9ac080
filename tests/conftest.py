"""Shared fixtures. Real benchmark files are read from ``../shared`` beside the checkout (or
``$MMIB_SHARED_DIR``); tests that need them skip when they are absent."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMIB_SHARED_DIR", REPO_ROOT.parent / "shared"))


def benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ as a module (the scripts import each other by plain name, so the folder goes on
    the path while it loads)."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


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


def build_tiny_encoder(folder: Path) -> str:
    """A randomly initialised 2-layer, 32-wide BERT with a character-level WordPiece vocabulary, saved in
    ``folder``: offline and fast, for unit tests only (the same weights every time)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    characters = list("abcdefghijklmnopqrstuvwxyz0123456789@#:/.,!?'-_")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters, *[f"##{c}" for c in characters]]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=160,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """:func:`build_tiny_encoder` in a session folder."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


def tiny_run(tiny_encoder: str, data: Path, out: Path, **settings) -> Path:
    """One epoch of the tiny encoder (and random CNN) on 32 posts; ``settings`` override any key."""
    from mmib.training import TrainConfig, Trainer

    values = dict(
        data=str(data),
        output_dir=str(out),
        text_encoder=tiny_encoder,
        image_encoder="random-cnn",
        feature_cache=str(out.parent / "features"),
        epochs=1,
        batch_size=16,
        max_train_samples=32,
        seed=3,
        patience=0,
    )
    Trainer(TrainConfig.create(**{**values, **settings}), progress=False).fit()
    return out


@pytest.fixture(scope="session")
def make_tiny_run(tiny_encoder):
    """:func:`tiny_run` with the tiny encoder: ``make_tiny_run(data, out, **settings)``."""
    return lambda data, out, **settings: tiny_run(tiny_encoder, data, out, **settings)


@pytest.fixture(scope="session")
def tiny_ner_run(tiny_encoder, synth_ner, tmp_path_factory) -> Path:
    """A run folder: MMIB with the tiny encoder and random CNN, one epoch on 32 synthetic posts."""
    return tiny_run(tiny_encoder, synth_ner, tmp_path_factory.mktemp("tiny-ner") / "run")


@pytest.fixture(scope="session")
def tiny_re_run(tiny_encoder, synth_re, tmp_path_factory) -> Path:
    return tiny_run(tiny_encoder, synth_re, tmp_path_factory.mktemp("tiny-re") / "run")


@pytest.fixture(scope="session")
def sample_image(tmp_path_factory) -> Path:
    """A real benchmark photo where the shared folder has one, else a drawn picture."""
    candidates = sorted((SHARED / "images" / "mnre-sample" / "img_org").glob("*/*.jpg"))
    if candidates:
        return candidates[0]
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("image") / "drawn.png"
    image = Image.new("RGB", (320, 240), (200, 220, 255))
    ImageDraw.Draw(image).ellipse((100, 60, 220, 180), fill=(220, 40, 40))
    image.save(path)
    return path


def image_side_of(cache, feature_dim: int, max_crops: int = 3):
    """The image side a test's prepared split reads: cached CNN features (``cache``), or none (None)."""
    from mmib.model import MMIBConfig
    from mmib.processing.image_side import CachedPixels, NoImage

    config = MMIBConfig(image_feature_dim=feature_dim, max_crops=max_crops)
    return NoImage(config) if cache is None else CachedPixels(config, cache)
