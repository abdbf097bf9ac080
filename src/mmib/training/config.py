"""Training configuration: one YAML file (spaCy-style: everything in one place), flags override it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml


@dataclass
class TrainConfig:
    data: str = ""  # dataset folder (see mmib.data.discover)
    output_dir: str = "runs/mmib"
    images: str | None = None  # image root; default: the dataset folder when it holds a layout
    task: str | None = None  # "ner" or "mre"; default: from the data
    text_encoder: str = "all-MiniLM-L6-v2"
    image_encoder: str = "efficientnet-lite0"
    feature_cache: str | None = None  # default: $MMIB_HOME/features (~/.cache/mmib/features)
    # Variant switches (paper defaults: all regularisers on, beta1 = beta2 = 0.1)
    text_only: bool = False
    use_refinement: bool = True
    use_alignment: bool = True
    beta1: float = 0.1
    beta2: float = 0.1
    # The image side: "pixels" (CNN features, the paper) or "captions" (a caption file's captions encoded
    # by a frozen sentence encoder; not the paper's setting). caption_pair with text_only: the caption is a
    # second text segment of a text-only model (the caption-pair baseline).
    image_source: str = "pixels"
    captions: str | None = None  # caption file, '<IMGID>.jpg :<caption>' per line
    caption_encoder: str = "all-MiniLM-L6-v2"
    caption_pair: bool = False
    # log sigma^2 head (model/variational.py) and a linear KL warm-up over this share of the steps
    logvar_head: str = "apenc"
    initial_logvar: float = -4.0
    kl_warmup_ratio: float = 0.0
    entity_markers: bool = False  # MRE: mark head and tail in the text (encoders/entity_markers.py)
    # Optimisation (paper: AdamW, lr 3e-5, weight decay 0.01, batch 8)
    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 32
    learning_rate: float = 3e-5  # the pretrained text encoder
    # New, randomly initialised layers (W_v, APEnc encoders, fusion, discriminator, CRF/classifier) learn
    # at head_learning_rate: at 3e-5 a fresh CRF transition matrix hardly moves in the few epochs a CPU
    # run affords (the HVPNeT family uses a larger rate for its CRF for the same reason).
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # linear warm-up over this share of steps, then linear decay
    # The decay ends at final_lr_ratio x the peak rate when the epoch budget ends, so that early stopping,
    # not a learning rate run down to zero, decides when training ends (0: decay to zero, as before).
    final_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    patience: int = 3  # stop after this many epochs without a better dev F1 (0: never)
    seed: int = 13
    max_length: int | None = None  # sub-word window; default 128 (NER) or 80 (MRE) as in the paper
    max_crops: int = 3
    dropout: float = 0.1
    max_train_samples: int | None = None  # first N training records (smoke runs only)
    stop_after_epochs: int | None = None  # end this process after N epochs; --resume continues
    threads: int | None = None  # torch intra-op threads; default: all cores
    # Hardware (training/hardware.py): batch_size above is the effective batch on any of them
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, mps
    precision: str = "no"  # no (fp32), bf16, fp16 (GPU only)
    grad_accum: int = 1  # micro-batches per optimiser step and process (memory, not the recipe)
    log_every: int = 50  # without a terminal (logs), a progress line every N training steps (0: none)

    @classmethod
    def from_yaml(cls, path: Path | str) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**raw)

    def with_overrides(self, **overrides) -> TrainConfig:
        values = asdict(self)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig(**values)

    def to_dict(self) -> dict:
        return asdict(self)
