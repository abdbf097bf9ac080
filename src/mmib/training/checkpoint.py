"""Saving and loading trained models: safetensors weights plus everything needed to rebuild them.

A run folder holds::

    model_config.json      MMIBConfig (task, labels, encoder names, variant, sizes)
    train_config.json      the TrainConfig the run used
    text_encoder/          the encoder's HF config and tokenizer files (no hub needed to reload)
    best/model.safetensors weights of the best dev epoch
    last.pt                weights, optimiser, scheduler and RNG state of the last epoch (for --resume)
    metrics.jsonl          one line per epoch
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mmib.encoders.text import TextEncoder, WordTokenizer
from mmib.model.config import MMIBConfig
from mmib.model.mmib import MMIBModel


def build_model(config: MMIBConfig, pretrained: bool = True, encoder_folder: Path | None = None):
    """A fresh model (pretrained text encoder) or an empty one shaped like a saved run's.

    Returns (model, tokenizer) with ``config.hidden_size`` set from the encoder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if pretrained:
        text_encoder, tokenizer = TextEncoder.from_pretrained(config.text_encoder)
    else:
        hf_config = AutoConfig.from_pretrained(encoder_folder)
        text_encoder = TextEncoder(AutoModel.from_config(hf_config), config.text_encoder)
        tokenizer = AutoTokenizer.from_pretrained(encoder_folder)
    config.hidden_size = text_encoder.hidden_size
    if config.hidden_size % config.num_heads:
        config.num_heads = max(h for h in range(1, 17) if config.hidden_size % h == 0)
    return MMIBModel(config, text_encoder), tokenizer


def save_encoder_files(model: MMIBModel, tokenizer, run_dir: Path) -> None:
    folder = run_dir / "text_encoder"
    model.text_encoder.model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_weights(model: MMIBModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def load_run(run_dir: Path | str, which: str = "best") -> tuple[MMIBModel, WordTokenizer]:
    """The model of a run folder (``best`` or ``last`` weights), in eval mode, with its tokenizer."""
    run_dir = Path(run_dir)
    config = MMIBConfig.load(run_dir / "model_config.json")
    model, tokenizer = build_model(config, pretrained=False, encoder_folder=run_dir / "text_encoder")
    if which == "best":
        state = load_file(str(run_dir / "best" / "model.safetensors"))
    else:
        state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state)
    model.eval()
    return model, WordTokenizer(tokenizer, config.max_length)
