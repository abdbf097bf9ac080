"""Captions in place of region features: a frozen sentence encoder turns each caption into a token
sequence that enters the model where the CNN's whole-image and crop vectors would, before W_v.

Why a token sequence and not one pooled vector: the CNN side gives the model m + 1 = 4 region vectors
for APEnc^V to attend over; a caption's sub-word states play that role (one per word of the caption),
so the variational image encoder, the alignment discriminator and the coupled fusion run unchanged.

This is NOT the paper's pixel setting: the image side sees text that a captioning model wrote about the
photo. Results made this way are labelled "captions" wherever they appear.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tqdm import tqdm

from mmib.data.captions import CaptionCounts, CaptionSet
from mmib.encoders.feature_store import ShardedFeatureStore, weights_fingerprint
from mmib.encoders.text import resolve_text_encoder

MAX_CAPTION_TOKENS = 32  # BLIP-2 captions are 8-20 sub-words; longer ones are cut


class CaptionEncoder:
    """A frozen Hugging Face encoder: caption -> (tokens, hidden) states, [CLS] and [SEP] included."""

    def __init__(self, name: str, max_tokens: int = MAX_CAPTION_TOKENS) -> None:
        from transformers import AutoModel, AutoTokenizer

        location = resolve_text_encoder(name)
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        self.model = AutoModel.from_pretrained(location).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.feature_dim = self.model.config.hidden_size
        self.max_tokens = max_tokens
        # the cache folder's fingerprint: the weights and the tokenizer's vocabulary (feature_store)
        self.fingerprint = weights_fingerprint(
            self.model, len(self.tokenizer), self.tokenizer.__class__.__name__
        )

    @torch.inference_mode()
    def __call__(self, captions: list[str]) -> list[torch.Tensor]:
        """Captions -> one (tokens_i, hidden) tensor each (padding removed)."""
        encoded = self.tokenizer(
            captions, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        hidden = self.model(**encoded).last_hidden_state  # (B, L, H)
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        return [hidden[row, :length].clone() for row, length in enumerate(lengths)]

    def digest(self, caption: str) -> str:
        """Cache key: the encoder, its length limit and the caption text."""
        return hashlib.sha256(f"{self.name}\0{self.max_tokens}\0{caption}".encode()).hexdigest()


class CaptionFeatureCache:
    """Caption token states in the shared feature store, under ``<cache_dir>/captions-<encoder>/``."""

    def __init__(self, encoder: CaptionEncoder, cache_dir: Path | str, batch_size: int = 64) -> None:
        self.encoder = encoder
        folder_name = f"captions-{Path(encoder.name).name}--{encoder.fingerprint}"
        self.store = ShardedFeatureStore(Path(cache_dir) / folder_name)
        self.batch_size = batch_size
        self.computed = 0
        self.from_cache = 0

    def features(self, captions: list[str], progress: bool = True) -> dict[str, torch.Tensor]:
        """(tokens, hidden) states of each distinct caption, computed once and stored."""
        digests = {caption: self.encoder.digest(caption) for caption in dict.fromkeys(captions)}
        cached = sorted({d for d in digests.values() if d in self.store})
        by_digest = self.store.read(cached)
        self.from_cache += len(cached)
        to_compute = sorted(c for c, d in digests.items() if d not in by_digest)
        bar = tqdm(total=len(to_compute), desc="encoding captions", unit="caption", disable=not progress)
        for start in range(0, len(to_compute), self.batch_size):
            chunk = to_compute[start : start + self.batch_size]
            states = self.encoder(chunk)
            by_digest.update(self.store.write({digests[c]: s for c, s in zip(chunk, states, strict=True)}))
            self.computed += len(chunk)
            bar.update(len(chunk))
        bar.close()
        return {caption: by_digest[digest] for caption, digest in digests.items()}


def pad_caption_states(
    states: list[torch.Tensor | None], feature_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-post caption states (or None) -> features (P, L_max, H) zero-padded and mask (P, L_max)."""
    width = max([s.size(0) for s in states if s is not None], default=1)
    features = torch.zeros(len(states), width, feature_dim)
    mask = torch.zeros(len(states), width, dtype=torch.bool)
    for row, state in enumerate(states):
        if state is not None:
            features[row, : state.size(0)] = state
            mask[row, : state.size(0)] = True
    return features, mask


class CaptionSide:
    """The captions of a dataset's posts, ready for batching.

    ``cache`` is None for the caption-pair baseline, which reads the caption texts and needs no states.
    """

    def __init__(self, captions: CaptionSet, cache: CaptionFeatureCache | None = None) -> None:
        self.captions = captions
        self.cache = cache
        self.counts: dict[str, CaptionCounts] = {}

    def post_inputs(
        self, split: str, image_ids: list[str | None], progress: bool = True
    ) -> tuple[list[str | None], torch.Tensor | None, torch.Tensor | None]:
        """Per post: the usable caption (None: missing or degenerate), and, with a cache, the padded
        states (P, L_max, H) and mask (P, L_max). Prints the split's ``captions:`` line."""
        counts = CaptionCounts()
        texts = [self.captions.lookup(image_id, counts) for image_id in image_ids]
        self.counts[split] = counts
        print(counts.line(split), flush=True)
        if self.cache is None:
            return texts, None, None
        states = self.cache.features([t for t in texts if t is not None], progress=progress)
        features, mask = pad_caption_states(
            [states[t] if t is not None else None for t in texts], self.cache.encoder.feature_dim
        )
        return texts, features, mask
