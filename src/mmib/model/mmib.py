"""The MMIB model: encoders, variational encoding, regularisers, fusion and task head, eq. (4)-(29).

Data flow for one batch of P posts (and, for MRE, N entity pairs among them):

    words -> TextEncoder -> X^T (P, n+2, d)                                   Section III-A1
    image features (P, m+1, F) -> W_v -> X^V (P, m+1, d)                      Section III-A2
    X^T -> VariationalEncoder -> Z^T ; X^V -> VariationalEncoder -> Z^V       eq. (6)-(11)
    Z^T, Z^V -> CoupledFusion -> C (P, n+2, d)                                eq. (16)-(17)
    C -> CRF (MNER, eq. 18) or pooled entity pair -> softmax (MRE, eq. 19)
    loss = L_task + beta1 KL(Z^T) + beta2 KL(Z^V) + w_ar L_ar                 eq. (29), w_ar = 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mmib.encoders.text import TextBatch, TextEncoder, WordTokenizer
from mmib.errors import SettingError
from mmib.model.alignment import AlignmentDiscriminator
from mmib.model.config import MMIBConfig
from mmib.model.fusion import CoupledFusion
from mmib.model.heads import HEADS, CrfHead, RelationHead
from mmib.model.refinement import refinement_loss
from mmib.model.run_folder import RunFolder
from mmib.model.variational import Latent, VariationalEncoder


@dataclass
class Batch:
    """Model input. Posts are encoded once; MRE pairs point at their post with ``pair_post``."""

    text: TextBatch
    word_lengths: torch.Tensor  # (P,)
    image_features: torch.Tensor  # (P, m+1, F); zeros where absent
    image_mask: torch.Tensor  # (P, m+1) bool, True where the image/crop exists
    post_ids: torch.Tensor  # (P,) identity of each post's image, for in-batch negatives
    tags: torch.Tensor | None = None  # (P, n_max) MNER gold tag ids
    pair_post: torch.Tensor | None = None  # (N,) MRE: post of each pair
    heads: torch.Tensor | None = None  # (N, 2) word spans [start, end)
    tails: torch.Tensor | None = None  # (N, 2)
    relations: torch.Tensor | None = None  # (N,) gold relation ids

    @property
    def word_mask(self) -> torch.Tensor:
        width = int(self.word_lengths.max())
        return torch.arange(width, device=self.word_lengths.device).unsqueeze(
            0
        ) < self.word_lengths.unsqueeze(1)

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor | TextBatch) else v) for k, v in vars(self).items()
        }
        return Batch(**moved)


@dataclass
class Output:
    loss: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)  # task, kl_text, kl_image, alignment
    fused: torch.Tensor | None = None  # C (P, n+2, d)
    text_latent: Latent | None = None
    image_latent: Latent | None = None


class MMIBModel(nn.Module):
    """MMIB (or a variant, per its config) over a pretrained text encoder. Saved and loaded as a run
    folder (model/run_folder.py): ``MMIBModel.from_pretrained(run_dir)`` gives the model and its tokenizer."""

    @classmethod
    def from_pretrained(cls, run_dir, which: str = "best"):
        """(model, WordTokenizer) of a run folder, ``best`` or ``last`` weights, in eval mode."""
        return from_pretrained(run_dir, which)

    def save_pretrained(self, run_dir, tokenizer) -> None:
        """The model config, the encoder's files and the weights (as the run's best) into ``run_dir``."""
        run = RunFolder(run_dir)
        save_pretrained(self, tokenizer, run)
        save_weights(self, run.best_weights)

    def __init__(self, config: MMIBConfig, text_encoder: TextEncoder) -> None:
        super().__init__()
        self.config = config
        self.text_encoder = text_encoder
        d = config.hidden_size
        if not config.text_only:
            self.image_projection = nn.Linear(config.image_feature_dim, d)  # W_v
            variance = dict(
                sample=config.use_refinement,
                logvar_head=config.logvar_head,
                initial_logvar=config.initial_logvar,
            )
            self.text_variational = VariationalEncoder(
                d, config.num_heads, config.dropout, **variance
            )  # APEnc^T
            self.image_variational = VariationalEncoder(
                d, config.num_heads, config.dropout, **variance
            )  # APEnc^V
            self.fusion = CoupledFusion(d, config.num_heads, config.dropout)
            if config.use_alignment:
                self.discriminator = AlignmentDiscriminator(
                    d, config.discriminator, config.discriminator_pooling
                )
        if config.task not in HEADS:
            raise ValueError(f"task must be one of {', '.join(HEADS)} to build a model, not {config.task!r}")
        self.head: CrfHead | RelationHead = HEADS[config.task](d, len(config.labels), config.dropout)
        # KL warm-up: the trainer ramps this from 0 to 1; beta_i * kl_scale weighs eq. (14)
        self.kl_scale = 1.0

    def encode(self, batch: Batch, losses: bool = True) -> Output:
        """C and the regulariser losses, without the task loss. ``losses=False`` (prediction) computes C
        alone: no log-variances, no KL of eq. (14), no alignment discriminator; C is the same."""
        text_states = self.text_encoder(batch.text)  # X^T (P, n+2, d)
        text_mask = batch.text.mask
        zero = text_states.sum() * 0.0
        if self.config.text_only:
            return Output(loss=zero, fused=text_states)
        image_states = self.image_projection(batch.image_features) * batch.image_mask.unsqueeze(-1)  # X^V
        text_latent = self.text_variational(text_states, text_mask, variance=losses)  # Z^T
        image_latent = self.image_variational(image_states, batch.image_mask, variance=losses)  # Z^V
        fused = self.fusion(text_latent.z, text_mask, image_latent.z, batch.image_mask)  # C
        loss, parts = zero, {}
        if not losses:
            return Output(loss, parts, fused, text_latent=text_latent, image_latent=image_latent)
        if self.config.use_refinement:
            kl = refinement_loss(
                text_latent,
                image_latent,
                self.config.beta1 * self.kl_scale,
                self.config.beta2 * self.kl_scale,
            )
            loss = loss + kl
            parts["refinement"] = kl.item()
        if self.config.use_alignment:
            alignment = self.discriminator(
                text_latent.z, text_mask, image_latent.z, batch.image_mask, batch.post_ids
            )
            loss = loss + self.config.alignment_weight * alignment
            parts["alignment"] = alignment.item()  # unweighted: comparable with its ceiling and ln 2
        return Output(loss, parts, fused, text_latent=text_latent, image_latent=image_latent)

    def forward(self, batch: Batch) -> Output:
        """Total loss of eq. (29) when gold labels are in the batch."""
        output = self.encode(batch)
        task = self.head.task_loss(output.fused, batch)  # eq. (27) or (28)
        output.parts["task"] = task.item()
        output.loss = output.loss + task
        return output

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[list[int]] | list[int]:
        """Tag ids per post (MNER) or a relation id per pair (MRE)."""
        return self.head.predict(self.encode(batch, losses=False).fused, batch)


# -- saving and loading (the run folder's layout is model/run_folder.py's) --------------------------------


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


def save_pretrained(model: MMIBModel, tokenizer, run: RunFolder) -> None:
    """What a run needs before any weights: the model config and the text encoder's config and tokenizer."""
    run.path.mkdir(parents=True, exist_ok=True)
    model.config.save(run.model_config)
    model.text_encoder.model.config.save_pretrained(run.text_encoder)
    tokenizer.save_pretrained(run.text_encoder)


def save_weights(model: MMIBModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def from_pretrained(run_dir: Path | str, which: str = "best") -> tuple[MMIBModel, WordTokenizer]:
    """The model of a run folder (``best`` or ``last`` weights), in eval mode, with its tokenizer. A name
    instead of a folder loads the installed model of that name (``mmib package``; model/package.py)."""
    from mmib.model.package import locate_model  # imports no model code: no cycle

    run = RunFolder(locate_model(run_dir)).require()
    config = MMIBConfig.load(run.model_config)
    model, tokenizer = build_model(config, pretrained=False, encoder_folder=run.text_encoder)
    if which == "best":
        if not run.best_weights.is_file():
            raise FileNotFoundError(f"{run.best_weights}: missing (the run has not finished an epoch)")
        try:
            state = load_file(str(run.best_weights))
        except Exception as error:  # safetensors raises its own error type for a truncated or foreign file
            raise SettingError(f"{run.best_weights}: not a readable safetensors file ({error})") from None
    else:
        state = run.load_last()["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # another model's weights, or a config edited after training
        detail = " ".join(str(error).split())[:300]
        raise SettingError(
            f"{run.best_weights if which == 'best' else run.last_state}: the weights do not fit "
            f"{run.model_config.name} ({detail})"
        ) from None
    model.eval()
    return model, WordTokenizer.for_model(tokenizer, config)
