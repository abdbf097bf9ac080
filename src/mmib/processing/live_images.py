"""The image side at prediction time: a user's image (or its caption) encoded on the spot.

The counterparts of :mod:`mmib.processing.image_side`'s cached strategies, built once per loaded run by
:func:`live_image_side`. Features are rounded through float16, as the training cache holds them, so a post
gets the same features whether it was read from a benchmark or sent by a user.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from PIL import Image

from mmib.encoders.captions import CaptionEncoder, pad_caption_states
from mmib.encoders.detector import Detection, Detector, crop_regions
from mmib.encoders.image import ImageEncoder
from mmib.model.config import MMIBConfig
from mmib.processing.image_side import absent_features

logger = logging.getLogger(__name__)

# features (P, W, F), mask (P, W), the detections whose crops were used, per post
VisualInputs = tuple[torch.Tensor, torch.Tensor, list[list[Detection]]]


@dataclass
class PreparedImage:
    """An image made ready for the CNN ahead of its batch: its detections, and its regions (the whole image,
    then the crops of those detections) preprocessed."""

    detections: list[Detection]
    pixels: torch.Tensor  # (1 + crops, 3, 224, 224)


@functools.cache
def _preprocessing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="mmib-resize")


class LiveImageSide:
    """No image branch (text-only runs, and the caption pair, whose caption goes in as text)."""

    reads_pixels = False
    reads_caption_states = False

    def __init__(self, config: MMIBConfig) -> None:
        self.config = config

    def absent(self, posts: int) -> VisualInputs:
        return (*absent_features(self.config, posts), [[] for _ in range(posts)])

    def inputs(
        self,
        images: list[Image.Image | None],
        prepared: list[PreparedImage | None] | None = None,
        captions: list[str | None] | None = None,
    ) -> VisualInputs:
        """The image side of a list of posts."""
        return self.absent(len(images))

    def prepare(self, image: Image.Image) -> PreparedImage | None:
        """What can be made of an image ahead of its batch (nothing without a CNN)."""
        return None

    def sees_like(self, other: LiveImageSide) -> bool:
        """Whether ``other`` turns an image into the same features, so both can share them."""
        return False


class LiveCaptions(LiveImageSide):
    """Captions as MMIB's image side: their token states (P, L, H) from the frozen caption encoder."""

    reads_caption_states = True

    def __init__(self, config: MMIBConfig, encoder: CaptionEncoder) -> None:
        super().__init__(config)
        self.encoder = encoder

    def inputs(self, images, prepared=None, captions=None) -> VisualInputs:
        """A post without a caption is image-absent."""
        captions = captions if captions is not None else [None] * len(images)
        present = [c for c in captions if c is not None]
        states = dict(zip(present, self.encoder(present), strict=True)) if present else {}
        rounded = [states[c].to(torch.float16).float() if c is not None else None for c in captions]
        features, mask = pad_caption_states(rounded, self.config.image_feature_dim)
        return features, mask, [[] for _ in captions]


class LivePixels(LiveImageSide):
    """The frozen CNN over the whole image and the crops of its top m detections (Section III-A2).

    A detector is called from the threads that open posts ahead; a plugged-in one may not be safe to call
    from two threads at once, so it is called under ``lock`` unless it says it is (``thread_safe``, as the
    default one is). Two runs that share a detector share its lock.
    """

    reads_pixels = True

    def __init__(
        self,
        config: MMIBConfig,
        encoder: ImageEncoder,
        detector: Detector | None,
        device: torch.device,
        image_batch_size: int = 64,
        warn_without_detector: bool = False,
        lock: AbstractContextManager | None = None,
    ) -> None:
        super().__init__(config)
        self.encoder = encoder.folded().to(device)  # inference only: batch norms folded into convolutions
        self.detector = detector
        self.device = device
        self.image_batch_size = image_batch_size
        self._warn_without_detector = warn_without_detector  # said once, on the first image
        if lock is None:
            lock = contextlib.nullcontext() if getattr(detector, "thread_safe", False) else threading.Lock()
        self.lock = lock

    def detect(self, image: Image.Image) -> list[Detection]:
        """The top m detections of an image (none without a detector), one caller at a time."""
        if self.detector is None:
            return []
        with self.lock:
            return self.detector.detect(image)[: self.config.max_crops]

    def prepare(self, image: Image.Image) -> PreparedImage:
        """Detections and preprocessed regions of one image, in the calling thread: the threads that open posts
        ahead run it, so the detector (45 % of the bare networks' time with the default one under ONNX Runtime)
        overlaps the networks of the batch before."""
        detections = self.detect(image)
        regions = self.regions(image, detections)
        return PreparedImage(detections, torch.stack([self.encoder.preprocess(r) for r in regions]))

    def regions(self, image: Image.Image, detections: list[Detection]) -> list[Image.Image]:
        """The CNN's regions of an image: the whole image, then the crops of its top m detections."""
        return [image, *crop_regions(image, detections, self.config.max_crops)]

    def inputs(self, images, prepared=None, captions=None) -> VisualInputs:
        """Whole image + top-m crops per post -> features (P, m+1, F), mask (P, m+1), detections per post.
        ``prepared``: per post, its :meth:`prepare` made ahead, or None (detected and preprocessed here)."""
        features, mask, detections = self.absent(len(images))
        if self._warn_without_detector and self.detector is None and any(i is not None for i in images):
            logger.warning(
                "no object detector installed (mmib models fetch-detector): using the whole image only, no crops"
            )
            self._warn_without_detector = False
        # Every region of every post (whole image, then its crops) goes through the CNN in one batched pass:
        # per-image calls leave most of a CNN's time in per-call overhead on a CPU.
        slots_of: list[tuple[int, int]] = []  # (post, slot) of each region
        regions: list[Image.Image | torch.Tensor] = []
        for row, image in enumerate(images):
            if image is None:
                continue
            ready = prepared[row] if prepared is not None else None
            if ready is not None:
                detections[row], post_regions = ready.detections, list(ready.pixels)
            else:
                detections[row] = self.detect(image)
                post_regions = self.regions(image, detections[row])
            slots_of += [(row, slot) for slot in range(len(post_regions))]
            regions += post_regions
        if not regions:
            return features, mask, detections
        vectors = self.encode_regions(regions)
        rows = torch.tensor([row for row, _ in slots_of])
        columns = torch.tensor([slot for _, slot in slots_of])
        features[rows, columns] = vectors.to(torch.float16).float()  # as the training cache holds them
        mask[rows, columns] = True
        return features, mask, detections

    def encode_regions(self, regions: list[Image.Image | torch.Tensor]) -> torch.Tensor:
        """CNN vectors (R, F) of image regions: resized and normalised by a small thread pool (PIL and
        numpy release the GIL; a region given as a tensor is taken as already preprocessed), encoded in
        chunks of ``image_batch_size``."""
        encoder = self.encoder

        def prepared(region: Image.Image | torch.Tensor) -> torch.Tensor:
            return region if isinstance(region, torch.Tensor) else encoder.preprocess(region)

        pixels = torch.stack(list(_preprocessing_pool().map(prepared, regions)))
        chunks = pixels.split(self.image_batch_size)
        return torch.cat([encoder(chunk.to(self.device)).cpu() for chunk in chunks])

    def sees_like(self, other: LiveImageSide) -> bool:
        """Whether ``other`` turns an image into the same features (same CNN, crops and detector)."""
        return (
            isinstance(other, LivePixels)
            and self.config.image_encoder == other.config.image_encoder
            and self.config.max_crops == other.config.max_crops
            and self.detector is other.detector
        )


def live_image_side(
    config: MMIBConfig,
    cnn: ImageEncoder | None,
    detector: Detector | None,
    device: torch.device,
    warn_without_detector: bool = False,
    lock: AbstractContextManager | None = None,
) -> LiveImageSide:
    """The image side of a loaded run: its CNN (``cnn``, built by the caller, which may swap in an exported
    one) with the detector, its caption encoder, or nothing (text-only runs and the caption pair)."""
    if config.text_only:
        return LiveImageSide(config)
    if config.image_source == "captions":
        return LiveCaptions(config, CaptionEncoder(config.caption_encoder, config.caption_max_tokens))
    if cnn is None:
        raise ValueError("a run that reads pixels needs its CNN")
    return LivePixels(config, cnn, detector, device, warn_without_detector=warn_without_detector, lock=lock)
