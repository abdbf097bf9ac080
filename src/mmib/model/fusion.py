"""Coupled modality fusion: equations (16)-(17).

B = APEnc^{V2T}(Z^V, Z^T): image positions query the text (text-attended image representations);
C = APEnc^{T2V}(Z^T, B): text positions query B (image-aware text representations for the heads).
"""

from __future__ import annotations

import torch
from torch import nn

from mmib.model.apenc import APEnc


class CoupledFusion(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.image_to_text = APEnc(hidden_size, num_heads, dropout=dropout)  # APEnc^{V2T}, eq. (16)
        self.text_to_image = APEnc(hidden_size, num_heads, dropout=dropout)  # APEnc^{T2V}, eq. (17)

    def forward(
        self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor, image_mask: torch.Tensor
    ) -> torch.Tensor:
        """Z^T (B, n+2, d), Z^V (B, m+1, d) with masks -> C (B, n+2, d)."""
        attended_image = self.image_to_text(image, text, text_mask)  # B: (B, m+1, d)
        return self.text_to_image(text, attended_image, image_mask)  # C: (B, n+2, d)
