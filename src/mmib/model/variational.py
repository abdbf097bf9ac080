"""Variational encoding of each modality: equations (6)-(11).

mu_i = APEnc_mu(x_i, X), log sigma_i^2 = APEnc_sigma(x_i, X) (eq. 7 writes sigma^2 = exp(APEnc_sigma)),
z_i = mu_i + sigma_i * eps with eps ~ N(0, I) in training (the reparameterisation, eq. 9) and z_i = mu_i
at inference. Z^V (eq. 10) and Z^T (eq. 11) stack the z_i of a modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmib.model.apenc import APEnc


@dataclass
class Latent:
    z: torch.Tensor  # (B, L, d)
    mu: torch.Tensor  # (B, L, d)
    logvar: torch.Tensor | None  # (B, L, d); None for a deterministic encoder (no L_rr)
    mask: torch.Tensor  # (B, L) True where a position exists


class VariationalEncoder(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1, sample: bool = True) -> None:
        super().__init__()
        self.mean_encoder = APEnc(hidden_size, num_heads, dropout=dropout)  # APEnc_mu, eq. (6)
        # Without the refinement regulariser nothing constrains sigma, so the encoder is deterministic
        # (z = mu) and has no APEnc_sigma: parameters that get no gradient are not created.
        self.logvar_encoder = (
            APEnc(hidden_size, num_heads, dropout=dropout) if sample else None
        )  # APEnc_sigma
        self.sample = sample

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> Latent:
        """inputs X (B, L, d) with mask (B, L) -> Latent with z, mu, logvar (B, L, d)."""
        mu = self.mean_encoder(inputs, inputs, mask)
        logvar = self.logvar_encoder(inputs, inputs, mask) if self.logvar_encoder is not None else None
        if self.training and logvar is not None:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # eq. (9)
        else:
            z = mu
        return Latent(z * mask.unsqueeze(-1), mu, logvar, mask)
