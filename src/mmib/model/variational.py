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


class LinearLogVariance(nn.Module):
    """log sigma^2 = W h + b on APEnc_sigma's output h, starting at a small variance.

    Why: APEnc ends in a LayerNorm, so read literally (eq. 7) log sigma^2 has unit scale at initialisation:
    sigma ~ 1 against |mu| ~ 1, a sampled z is half noise, and the task loss has to fight the KL to shrink
    it. Here W starts at zero and b at ``initial_logvar`` (sigma^2 = e^-4 = 0.018 by default), so z starts
    close to mu and the KL decides how much noise each dimension can afford.
    """

    def __init__(self, hidden_size: int, initial_logvar: float) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, initial_logvar)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, L, d)
        return self.linear(hidden)


class VariationalEncoder(nn.Module):
    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.1,
        sample: bool = True,
        logvar_head: str = "apenc",
        initial_logvar: float = -4.0,
    ) -> None:
        super().__init__()
        self.mean_encoder = APEnc(hidden_size, num_heads, dropout=dropout)  # APEnc_mu, eq. (6)
        # Without the refinement regulariser nothing constrains sigma, so the encoder is deterministic
        # (z = mu) and has no APEnc_sigma: parameters that get no gradient are not created.
        self.logvar_encoder = (
            APEnc(hidden_size, num_heads, dropout=dropout) if sample else None
        )  # APEnc_sigma
        self.logvar_projection = (
            LinearLogVariance(hidden_size, initial_logvar) if sample and logvar_head == "linear" else None
        )
        self.sample = sample

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor, variance: bool = True) -> Latent:
        """inputs X (B, L, d) with mask (B, L) -> Latent with z, mu, logvar (B, L, d).

        ``variance=False`` (inference without losses) skips APEnc_sigma: at inference z = mu, so sigma only
        ever enters the KL of eq. (14), and computing it would spend a third of the MMIB layers' time."""
        mu = self.mean_encoder(inputs, inputs, mask)
        wanted = variance and self.logvar_encoder is not None
        logvar = self.logvar_encoder(inputs, inputs, mask) if wanted else None
        if self.logvar_projection is not None and logvar is not None:
            logvar = self.logvar_projection(logvar)
        if self.training and logvar is not None:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # eq. (9)
        else:
            z = mu
        return Latent(z * mask.unsqueeze(-1), mu, logvar, mask)
