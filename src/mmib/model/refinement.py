"""The refinement regulariser L_rr: equations (12)-(14), (20)-(21), (22)-(23).

Its minimality terms beta1 I(Z^T; X^T) + beta2 I(Z^V; X^V) are bounded above by the KL divergence from
the variational posterior N(mu_i, diag(sigma_i^2)) to the prior N(0, I), summed over positions in
eq. (21). Its reconstruction term -I(Z^T, Z^V; R) is bounded by the task loss (eq. 22-23), which the
model adds once as L_task, so this module computes only the KL terms.

Reduction (the paper gives none for a batch): the KL is averaged over latent dimensions and over the
real positions of a post, then over the posts of a batch. Eq. (21) read literally sums over positions
and dimensions; with d = 384-768 that sum is two orders of magnitude above the task loss at
initialisation, and the published beta = 0.1 would then drive every z to the prior. The mean keeps
beta = 0.1 on the task loss's scale, so the paper's beta grid (Fig. 4) spans weak to strong compression.
"""

from __future__ import annotations

import torch

from mmib.model.variational import Latent


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per position, summed over the last dimension. Eq. (21)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=-1)


def kl_per_dimension(latent: Latent) -> torch.Tensor:
    """(B, L): the KL of each position divided by the latent width."""
    return gaussian_kl(latent.mu, latent.logvar) / latent.mu.size(-1)


def kl_term(latent: Latent) -> torch.Tensor:
    """Mean over posts (those with any position) of the per-dimension KL averaged over positions."""
    per_position = kl_per_dimension(latent) * latent.mask  # (B, L)
    counts = latent.mask.sum(dim=1)  # (B,)
    present = counts > 0
    if not present.any():
        return per_position.sum() * 0.0  # keeps the graph; no image in the whole batch
    return (per_position.sum(dim=1)[present] / counts[present]).mean()


def refinement_loss(text: Latent, image: Latent | None, beta1: float, beta2: float) -> torch.Tensor:
    """beta1 * KL_text + beta2 * KL_image: the minimality part of L_rr, eq. (14) with (21)."""
    loss = beta1 * kl_term(text)
    if image is not None:
        loss = loss + beta2 * kl_term(image)
    return loss
