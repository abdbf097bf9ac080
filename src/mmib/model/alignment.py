"""The alignment regulariser L_ar: equations (15), (24)-(26).

A discriminator D(Z^T, Z^V) = sigmoid(MLP(Pooling(Z^T) (+) Pooling(Z^V))) with mean pooling (eq. 26)
scores matched text-image pairs of a post against in-batch mismatched pairs (eq. 25); maximising the
bound on I(Z^T; Z^V) is minimising the binary cross-entropy of D on these pairs.
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


class AlignmentDiscriminator(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1)
        )

    def score(self, text_pooled: torch.Tensor, image_pooled: torch.Tensor) -> torch.Tensor:
        """Logits of D before the sigmoid of eq. (26): (B, d), (B, d) -> (B,)."""
        return self.mlp(torch.cat([text_pooled, image_pooled], dim=-1)).squeeze(-1)

    def forward(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image: torch.Tensor,
        image_mask: torch.Tensor,
        post_ids: torch.Tensor,
    ) -> torch.Tensor:
        """L_ar as BCE over positives (own image) and in-batch negatives; posts without any image
        take no part. Returns a scalar (0 when a batch has no usable pair)."""
        text_pooled = masked_mean(text, text_mask)  # (B, d)
        image_pooled = masked_mean(image, image_mask)  # (B, d)
        has_image = image_mask.any(dim=1)
        if not has_image.any():
            return text.sum() * 0.0
        rows = has_image.nonzero().squeeze(1)
        positives = self.score(text_pooled[rows], image_pooled[rows])
        loss = F.binary_cross_entropy_with_logits(positives, torch.ones_like(positives), reduction="sum")
        count = positives.numel()
        partners = negative_partners(post_ids[rows])
        valid = partners >= 0
        if valid.any():
            negatives = self.score(text_pooled[rows[valid]], image_pooled[rows[partners[valid]]])
            loss = loss + F.binary_cross_entropy_with_logits(
                negatives, torch.zeros_like(negatives), reduction="sum"
            )
            count += negatives.numel()
        return loss / count
