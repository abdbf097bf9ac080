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


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A randomly initialised 2-layer, 32-wide BERT with a character-level WordPiece vocabulary:
    offline and fast, for unit tests only."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
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
