"""From a batch's network outputs to results: entities tagged by the CRF (eq. 18) with their marginals as
confidences, and the relation of each entity pair (eq. 19) with its softmax probability. Used by
:class:`mmib.predict.Extractor`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from PIL import Image

from mmib.predict.inputs import CheckedPost, InputError
from mmib.predict.results import PostPrediction, Relation, entities_of
from mmib.predict.tokenize import Token
from mmib.processing import NerTask, PairInput, PostInput
from mmib.processing.live_images import VisualInputs
from mmib.spans import Span

if TYPE_CHECKING:
    from mmib.predict.extractor import Extractor


@torch.inference_mode()  # lighter than no_grad: no version counters on the tensors made here
def tag_posts(
    extractor: Extractor, checked: list[CheckedPost], visual: VisualInputs | None = None
) -> list[PostPrediction]:
    """Entities of checked posts; ``visual``: their image side, when already computed."""
    if not isinstance(extractor.processor.task, NerTask):
        raise InputError("this run is an MRE model; it does not tag entities")
    results = []
    for start in range(0, len(checked), extractor.batch_size):
        chunk = checked[start : start + extractor.batch_size]
        if visual is None:
            features, mask, detections = extractor.image_side.inputs(
                [post.image for post in chunk],
                [post.prepared for post in chunk],
                [p.caption for p in chunk],
            )
        else:
            features, mask, detections = (part[start : start + len(chunk)] for part in visual)
        batch = extractor.batch(
            [PostInput(post.words, post.caption, row) for row, post in enumerate(chunk)], features, mask
        )
        fused = extractor.model.encode(batch, losses=False).fused
        tag_ids = extractor.model.head.decode(fused, batch.word_mask)
        marginals = extractor.model.head.marginals(fused, batch.word_mask).cpu()  # (P, n, tags)
        for row, post in enumerate(chunk):
            entities = entities_of(
                post.text, post.tokens, extractor.config.labels, tag_ids[row], marginals[row]
            )
            used = bool(mask[row].any())
            results.append(PostPrediction(post.text, post.tokens, entities, [], detections[row], used))
    return results


@torch.inference_mode()
def classify_pairs(
    extractor: Extractor,
    text: str,
    tokens: list[Token],
    image: Image.Image | None,
    pairs: list[tuple[Span, Span]],
    visual: tuple[torch.Tensor, torch.Tensor] | None = None,
    caption: str | None = None,
) -> list[Relation]:
    """Relation of each (head, tail) pair of one post, eq. (19). ``visual``: the post's image side, features
    (1, W, F) and mask (1, W), when already computed."""
    if not pairs:
        return []
    if visual is None:
        visual = extractor.image_side.inputs([image], None, [caption])[:2]
    post = PostInput([t.text for t in tokens], caption, 0, pairs=[PairInput(h, t) for h, t in pairs])
    batch = extractor.batch([post], *visual)
    fused = extractor.model.encode(batch, losses=False).fused
    best = extractor.model.head.batch_logits(fused, batch).softmax(-1).cpu().max(-1)
    return [
        Relation(head, tail, extractor.config.labels[int(label)], round(float(p), 4))
        for (head, tail), p, label in zip(pairs, best.values, best.indices, strict=True)
    ]
