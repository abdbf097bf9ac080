"""APEnc, the attentive propagation encoder: equations (4)-(5).

APEnc(Q, K) = LayerNorm(F~ + FeedForward(F~)), with F~ = LayerNorm(Q + MultiHeadAtt(Q, K)), a
Transformer layer whose queries and key-values may come from different sequences. Used for the
variational encoders (Q = K, within a modality) and for the coupled fusion (across modalities).
"""

from __future__ import annotations

import torch
from torch import nn


class APEnc(nn.Module):
    def __init__(
        self, hidden_size: int, num_heads: int, ffn_size: int | None = None, dropout: float = 0.1
    ) -> None:
        super().__init__()
        # nn.MultiheadAttention is eq. (4): h heads of softmax(QW_q (KW_k)^T / sqrt(d/h)) KW_v, then W'.
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden_size, ffn_size or 4 * hidden_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_size or 4 * hidden_size, hidden_size),
        )
        self.output_norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, d), keys (B, Lk, d), key_mask (B, Lk) True where a key exists -> (B, Lq, d).

        A query whose keys are all absent (a post with no image at all) gets no attention update
        rather than NaN: its row is attended with a dummy mask and the result zeroed.
        """
        has_keys = key_mask.any(dim=1)  # (B,)
        safe_mask = key_mask | ~has_keys.unsqueeze(1)  # attend somewhere for empty rows, zeroed below
        attended, _ = self.attention(query, keys, keys, key_padding_mask=~safe_mask, need_weights=False)
        attended = attended * has_keys.view(-1, 1, 1)
        hidden = self.attention_norm(query + self.dropout(attended))  # F~ in eq. (5)
        return self.output_norm(hidden + self.dropout(self.feed_forward(hidden)))  # F in eq. (5)
