"""The alignment regulariser L_ar: equations (15), (24)-(26).

A discriminator D(Z^T, Z^V) = sigmoid(MLP(Pooling(Z^T) (+) Pooling(Z^V))) with mean pooling (eq. 26)
scores matched text-image pairs of a post against in-batch mismatched pairs (eq. 25); maximising the
bound on I(Z^T; Z^V) is minimising the binary cross-entropy of D on these pairs.

Two choices decide what the regulariser can do, and the authors' released code makes both differently
from the paper (``../shared/paper/RELEASED-CODE.md``), so both are strategies picked by the model config:

* the score (``discriminator``): ``mlp``, the paper's MLP on the concatenation (eq. 26, default);
  ``bilinear``, t^T W v + b, the released code's option; ``additive``, the released code's default: a
  linear map of the concatenation with one sigmoid per output dimension, BCE averaged over them. Its logits
  are a sum of a text part and an image part, so it ranks every text's pairings the same way whatever the
  image: matched and mismatched pairs cannot be told apart, and positive plus negative BCE never falls
  below 2 ln 2. Offered to reproduce that code, not as a choice.
* the pooling (``discriminator_pooling``): ``mean`` over real positions (eq. 26, default) or ``first``
  position ([CLS] for text; the whole image, or a caption's [CLS], for the image side), as released.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, d) with (B, L) -> (B, d); rows with no position give zeros."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def negative_partners(post_ids: torch.Tensor) -> torch.Tensor:
    """For each row, the index of another row showing a different post (-1 where none exists).

    Rolling the batch by k pairs row i with row i+k; the smallest k that changes the post is used,
    so instances that share a post (MRE) never serve as each other's negatives.
    """
    size = post_ids.numel()
    partners = torch.full((size,), -1, dtype=torch.long)
    for shift in range(1, size):
        candidates = torch.roll(torch.arange(size), -shift)
        fresh = (partners < 0) & (post_ids[candidates] != post_ids)
        partners[fresh] = candidates[fresh]
        if (partners >= 0).all():
            break
    return partners


class ConcatMlpScore(nn.Module):
    """Eq. (26): MLP([t; v]) -> one logit. (B, d), (B, d) -> (B, 1)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1)
        )

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([text, image], dim=-1))


class BilinearScore(nn.Module):
    """t^T W v + b -> one logit: every text-image interaction, nothing else. (B, d), (B, d) -> (B, 1)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.bilinear = nn.Bilinear(hidden_size, hidden_size, 1)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.bilinear(text, image)


class AdditiveScore(nn.Module):
    """W [t; v] + b -> d logits, one per output (the released code's default). (B, d), (B, d) -> (B, d)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([text, image], dim=-1))


def first_position(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, d) with (B, L) -> (B, d): position 0 ([CLS]; the whole image), zeros where it is absent."""
    return values[:, 0] * mask[:, :1].to(values.dtype)


SCORES = {"mlp": ConcatMlpScore, "bilinear": BilinearScore, "additive": AdditiveScore}
POOLINGS = {"mean": masked_mean, "first": first_position}


class AlignmentDiscriminator(nn.Module):
    def __init__(self, hidden_size: int, score: str = "mlp", pooling: str = "mean") -> None:
        super().__init__()
        self.scorer = SCORES[score](hidden_size)
        self.pool = POOLINGS[pooling]
        self._register_load_state_dict_pre_hook(_weights_saved_before_the_scores)

    def score(self, text_pooled: torch.Tensor, image_pooled: torch.Tensor) -> torch.Tensor:
        """Logits of D before the sigmoid of eq. (26): (B, d), (B, d) -> (B, k), k = 1 but for additive."""
        return self.scorer(text_pooled, image_pooled)

    def forward(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image: torch.Tensor,
        image_mask: torch.Tensor,
        post_ids: torch.Tensor,
    ) -> torch.Tensor:
        """L_ar as BCE over positives (own image) and in-batch negatives, averaged over the pairs (and over
        a score's outputs); posts without any image take no part. Returns a scalar (0 when a batch has no
        usable pair)."""
        text_pooled = self.pool(text, text_mask)  # (B, d)
        image_pooled = self.pool(image, image_mask)  # (B, d)
        has_image = image_mask.any(dim=1)
        if not has_image.any():
            return text.sum() * 0.0
        rows = has_image.nonzero().squeeze(1)
        positives = self.score(text_pooled[rows], image_pooled[rows])
        loss = _pair_bce(positives, 1.0)
        count = positives.size(0)
        partners = negative_partners(post_ids[rows])
        valid = partners >= 0
        if valid.any():
            negatives = self.score(text_pooled[rows[valid]], image_pooled[rows[partners[valid]]])
            loss = loss + _pair_bce(negatives, 0.0)
            count += negatives.size(0)
        return loss / count


def _weights_saved_before_the_scores(state_dict: dict, prefix: str, *args) -> None:
    """Runs saved when the MLP was the only score keep its weights under ``mlp.``; now ``scorer.mlp.``."""
    for key in [k for k in state_dict if k.startswith(prefix + "mlp.")]:
        state_dict[prefix + "scorer." + key[len(prefix) :]] = state_dict.pop(key)


def _pair_bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Summed over pairs of the BCE averaged over a pair's logits: (N, k) -> scalar."""
    targets = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=-1).sum()
