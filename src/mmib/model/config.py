"""Everything needed to rebuild an MMIB model: saved as JSON beside its weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mmib.errors import SettingError

# Settings added after runs had been saved, with the value those runs trained with where it is not today's
# default (a run saved before the variance head was selectable has the head the paper writes, and its weights
# no linear log-variance layer). MMIBConfig.load and RunFolder.read_train_config fill them in.
SAVED_BEFORE_THE_SETTING = {"logvar_head": "apenc", "caption_extends_window": False}


@dataclass
class MMIBConfig:
    task: str = ""  # "ner" (CRF over words) or "mre" (entity-pair classification); "": from the data
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
    max_length: int | None = None  # sub-word window; None: 128 for MNER, 80 for MRE as in the paper
    # What stands for the image: "pixels" (CNN features of the whole image and crops, the paper's setting)
    # or "captions" (a frozen sentence encoder's token states of a caption of the image; not the paper's).
    image_source: str = "pixels"
    caption_encoder: str = "all-MiniLM-L6-v2"  # the frozen encoder of captions (image_source "captions")
    caption_pair: bool = False  # text-only baseline that reads the caption as a second text segment
    # Sub-words of a caption the model reads: the caption encoder's cut (captions as the image side) and the
    # pair's second segment. 32 fits BLIP-2's one sentence (p99 30 on MNRE); CogVLM paragraphs need ~128
    # (p90 100, p99 146 sub-words on MNRE).
    caption_max_tokens: int = 32
    # The pair: the caption gets caption_max_tokens sub-words beyond the text's window (max_length), so it
    # never cuts the text (with entity markers, never a marked span). False (runs saved before the setting):
    # it fills what the text leaves of the window.
    caption_extends_window: bool = True
    # log sigma^2 of eq. (7): "apenc" reads it off APEnc_sigma as the paper writes it (its closing LayerNorm
    # gives unit-scale log-variances, so sigma ~ 1 at initialisation); "linear" (default, chosen on dev: full
    # synthetic NER, 3 seeds) adds a linear layer on top, initialised to a small variance exp(initial_logvar)
    # (see model/variational.py).
    logvar_head: str = "linear"
    initial_logvar: float = -4.0
    # L_ar (model/alignment.py): the discriminator's score, "mlp" (eq. 26), "bilinear" or "additive" (the
    # released code's default, which cannot learn); its pooling, "mean" (eq. 26) or "first" (as released);
    # and its weight in eq. (29) (the paper writes L_ar unweighted)
    discriminator: str = "mlp"
    discriminator_pooling: str = "mean"
    alignment_weight: float = 1.0
    # MRE input: False pools the entity spans of C as eq. (19) writes it; True marks head and tail in the
    # text and reads the opening markers, one encoding per pair (encoders/entity_markers.py; not the paper's)
    entity_markers: bool = False

    def __post_init__(self) -> None:
        if self.max_length is None and self.task:
            self.max_length = 128 if self.task == "ner" else 80
        for name, value, allowed in (
            ("image_source", self.image_source, ("pixels", "captions")),
            ("logvar_head", self.logvar_head, ("apenc", "linear")),
            ("task", self.task, ("", "ner", "mre")),
            ("discriminator", self.discriminator, ("mlp", "bilinear", "additive")),
            ("discriminator_pooling", self.discriminator_pooling, ("mean", "first")),
        ):
            if value not in allowed:
                raise SettingError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        for name, ok, expected in (
            ("num_heads", self.num_heads >= 1, "at least 1"),
            ("hidden_size", self.hidden_size >= 1, "at least 1"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("beta1", self.beta1 >= 0, "0 or more"),
            ("beta2", self.beta2 >= 0, "0 or more"),
            ("alignment_weight", self.alignment_weight >= 0, "0 or more"),
            ("max_crops", self.max_crops >= 0, "0 or more"),
            ("max_length", self.max_length is None or self.max_length >= 8, "at least 8 sub-words"),
            ("caption_max_tokens", self.caption_max_tokens >= 1, "at least 1"),
            ("image_feature_dim", self.image_feature_dim >= 0, "0 or more"),
        ):
            if not ok:
                raise SettingError(f"{name} must be {expected}, not {getattr(self, name)!r}")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> MMIBConfig:
        """A saved config; a file that is not one (unreadable JSON, unknown keys, values no model can have)
        is a one-line ValueError naming it."""
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise SettingError(f"{path}: not a model config ({error})") from None
        if not isinstance(values, dict):
            raise SettingError(f"{path}: not a model config (expected a JSON object)")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingError(f"{path}: unknown model settings {unknown} (written by another mmib version?)")
        try:
            return cls(**{**SAVED_BEFORE_THE_SETTING, **values})
        except (TypeError, ValueError) as error:
            raise SettingError(f"{path}: {error}") from None

    @property
    def variant(self) -> str:
        if self.text_only:
            return "text-caption-pair" if self.caption_pair else "text-only"
        parts = [
            name for name, on in (("no-rr", not self.use_refinement), ("no-ar", not self.use_alignment)) if on
        ]
        if self.image_source == "captions":
            parts.insert(0, "captions")
        return "mmib" + ("-" + "-".join(parts) if parts else "")

    @property
    def caption_room(self) -> int:
        """Sub-words the pair's caption gets beyond the text window (0: it shares the window)."""
        return self.caption_max_tokens if self.caption_pair and self.caption_extends_window else 0

    @property
    def reads_pixels(self) -> bool:
        """Whether the model's image side is the CNN's features of the image and its crops."""
        return not self.text_only and self.image_source == "pixels"

    @property
    def uses_captions(self) -> bool:
        """Whether the model reads captions (as its image side, or as the pair baseline's second segment)."""
        return self.caption_pair if self.text_only else self.image_source == "captions"
