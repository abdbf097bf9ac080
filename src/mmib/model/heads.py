"""Task heads: the CRF for MNER, equations (18) and (27), and entity-pair classification for MRE,
equations (19) and (28).

Both heads answer the same two calls, ``task_loss(C, batch)`` and ``predict(C, batch)``, so the model never asks
which task it serves: :data:`HEADS` picks the head from the config's task name once, when the model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torchcrf import CRF

if TYPE_CHECKING:
    from mmib.model.mmib import Batch


class CrfHead(nn.Module):
    """Emissions w_y^crf c_i plus transitions Trans(y_{i-1}, y_i), a linear-chain CRF over the words.

    The CRF runs over the n words (positions 1..n of C); the [CLS]/[SEP] positions carry no label.
    pytorch-crf provides the forward algorithm for log p(Y|X) and Viterbi decoding.
    """

    def __init__(self, hidden_size: int, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.emissions = nn.Linear(hidden_size, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def word_emissions(self, fused: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """C (B, n+2, d) -> emissions for the words (B, n_max, tags), left-aligned."""
        return self.emissions(self.dropout(fused[:, 1 : word_mask.size(1) + 1]))

    def loss(self, fused: torch.Tensor, word_mask: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """-log p(Y | X) averaged over the batch, eq. (27). word_mask, tags: (B, n_max)."""
        emissions = self.word_emissions(fused, word_mask)
        return -self.crf(emissions, tags, mask=word_mask, reduction="mean")

    def decode(self, fused: torch.Tensor, word_mask: torch.Tensor) -> list[list[int]]:
        return self.crf.decode(self.word_emissions(fused, word_mask), mask=word_mask)

    def task_loss(self, fused: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Eq. (27) on a batch with gold tags (P, n_max)."""
        return self.loss(fused, batch.word_mask, batch.tags[:, : batch.word_mask.size(1)])

    def predict(self, fused: torch.Tensor, batch: Batch) -> list[list[int]]:
        """Viterbi tag ids per post."""
        return self.decode(fused, batch.word_mask)

    def marginals(self, fused: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """p(y_i = t | X) for every word and tag, (B, n_max, tags); zeros at padding.

        Forward-backward over the same CRF scores that decoding uses (pytorch-crf has no marginals).
        Used for the confidence of predicted entities.
        """
        emissions = self.word_emissions(fused, word_mask)  # (B, n, T)
        mask = word_mask.unsqueeze(-1)  # (B, n, 1)
        transitions = self.crf.transitions.unsqueeze(0)  # (1, T_prev, T_next)
        steps = emissions.size(1)
        alpha = [self.crf.start_transitions + emissions[:, 0]]  # log-sum over prefixes ending in t
        for i in range(1, steps):
            step = torch.logsumexp(alpha[-1].unsqueeze(2) + transitions, dim=1) + emissions[:, i]
            alpha.append(torch.where(mask[:, i], step, alpha[-1]))
        # beta at the last real word is the end transition; padding positions carry it backwards unchanged
        beta = [self.crf.end_transitions.expand_as(alpha[0])] * steps
        for i in range(steps - 2, -1, -1):
            step = torch.logsumexp(transitions + (emissions[:, i + 1] + beta[i + 1]).unsqueeze(1), dim=2)
            beta[i] = torch.where(mask[:, i + 1], step, beta[i + 1])
        scores = torch.stack(alpha, 1) + torch.stack(beta, 1)  # (B, n, T)
        return scores.softmax(-1) * mask


class RelationHead(nn.Module):
    """softmax(W [E_1 (+) E_2] + b): mean-pooled head and tail spans of C, eq. (19)."""

    def __init__(self, hidden_size: int, num_relations: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_relations)

    @staticmethod
    def pool_span(fused: torch.Tensor, post_index: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """Mean of C over word spans: fused (P, n+2, d), post_index (N,), spans (N, 2) [start, end)
        in word positions -> (N, d). Word w sits at position w + 1 of C (after [CLS])."""
        positions = torch.arange(fused.size(1), device=fused.device).unsqueeze(0)  # (1, n+2)
        inside = (positions >= spans[:, :1] + 1) & (positions < spans[:, 1:] + 1)  # (N, n+2)
        weights = inside.to(fused.dtype).unsqueeze(-1)
        return (fused[post_index] * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def logits(self, fused: torch.Tensor, post_index: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor):
        pair = torch.cat(
            [self.pool_span(fused, post_index, heads), self.pool_span(fused, post_index, tails)], -1
        )
        return self.classifier(self.dropout(pair))  # (N, relations)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """-log p(Y | X, E_1, E_2), eq. (28), averaged over instances."""
        return F.cross_entropy(logits, labels)

    def batch_logits(self, fused: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Logits (N, relations) of the batch's entity pairs."""
        return self.logits(fused, batch.pair_post, batch.heads, batch.tails)

    def task_loss(self, fused: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Eq. (28) on a batch with gold relations (N,)."""
        return self.loss(self.batch_logits(fused, batch), batch.relations)

    def predict(self, fused: torch.Tensor, batch: Batch) -> list[int]:
        """A relation id per pair."""
        return self.batch_logits(fused, batch).argmax(-1).tolist()


# The head of each task, by the name a model config saves (MMIBConfig.task).
HEADS: dict[str, type[CrfHead] | type[RelationHead]] = {"ner": CrfHead, "mre": RelationHead}
