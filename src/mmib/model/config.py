"""Everything needed to rebuild an MMIB model: saved as JSON beside its weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class MMIBConfig:
    task: str  # "ner" (CRF over words) or "mre" (entity-pair classification)
    labels: list[str] = field(default_factory=list)  # BIO tags or relations, id order
    text_encoder: str = "all-MiniLM-L6-v2"
    image_encoder: str = "efficientnet-lite0"
    image_feature_dim: int = 1280
    hidden_size: int = 384  # the text encoder's width d; set from the encoder when built
    num_heads: int = 6
    dropout: float = 0.1
    beta1: float = 0.1  # weight of I(Z^T; X^T), eq. (14)
    beta2: float = 0.1  # weight of I(Z^V; X^V), eq. (14)
    use_refinement: bool = True  # L_rr (the KL terms and sampling); --no-rr turns it off
    use_alignment: bool = True  # L_ar; --no-ar turns it off
    text_only: bool = False  # encoder + head, no image branch (the text-only baselines)
    max_crops: int = 3  # m
    max_length: int = 128  # sub-word window: 128 for MNER, 80 for MRE as in the paper

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> MMIBConfig:
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    @property
    def variant(self) -> str:
        if self.text_only:
            return "text-only"
        parts = [
            name for name, on in (("no-rr", not self.use_refinement), ("no-ar", not self.use_alignment)) if on
        ]
        return "mmib" + ("-" + "-".join(parts) if parts else "")
