"""Text + image in, entities and relations out: :class:`Extractor` runs a trained run folder on new posts.

    >>> from mmib import Extractor
    >>> ner = Extractor.load("runs/twitter2017-mmib")
    >>> ner.predict("Kobe Bryant at Staples Center #Lakers", "photo.jpg")
    [Span(type='PER', first=0, last=2, text='Kobe Bryant', start=0, end=11, confidence=0.97), ...]
    >>> re = Extractor.load("runs/mnre-mmib", ner=ner)
    >>> re.relations("Kobe Bryant at Staples Center", "photo.jpg")            # every entity pair
    >>> re.relations("Kobe Bryant at Staples Center", None, "Kobe Bryant", "Staples Center")

Raw posts are cut by :func:`mmib.predict.tokenize.tokenize_post`; images go through the same frozen CNN
as in training, the whole image plus the top m detected objects (Section III-A2), with a pluggable
detector (:mod:`mmib.encoders.detector`). Posts are batched internally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from itertools import permutations
from pathlib import Path

import torch

from mmib.data.records import NONE_RELATION
from mmib.devices import RUNTIMES, resolve_device
from mmib.encoders.detector import Detector, load_default_detector
from mmib.encoders.image import build_image_encoder
from mmib.encoders.text import WordTokenizer
from mmib.model.mmib import Batch, MMIBModel, from_pretrained
from mmib.model.package import locate_model
from mmib.model.run_folder import RunFolder
from mmib.predict.decoding import classify_pairs, tag_posts
from mmib.predict.inputs import (
    MAX_CHARS,
    CheckedPost,
    ImageInput,
    InputError,
    check_caption,
    check_text,
    open_image,
)
from mmib.predict.onnx_runtime import use_onnx
from mmib.predict.prefetch import opened_ahead, tagged_with_cnn_ahead
from mmib.predict.results import PostPrediction, Relation, given_entity
from mmib.processing import MMIBProcessor, NerTask, PostInput, ReTask
from mmib.processing.live_images import LiveImageSide, live_image_side
from mmib.spans import Span


class Extractor:
    """A trained MMIB (or text-only) run, ready for new posts.

    Runs trained with captions as the image side (``image_source: captions``), and the caption-pair
    baseline, read a post's ``caption=`` instead of (or beside) its image: a caption written about the
    photo by a captioning model, as in training.
    """

    def __init__(
        self,
        model: MMIBModel,
        tokenizer: WordTokenizer,
        image_side: LiveImageSide | None = None,
        ner: Extractor | None = None,
        batch_size: int = 16,
        max_chars: int = MAX_CHARS,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.config = model.config
        self.tokenizer = tokenizer
        self.processor = MMIBProcessor.for_model(tokenizer, self.config)
        self.image_side = image_side if image_side is not None else LiveImageSide(self.config)
        self.ner = ner
        self.batch_size = batch_size
        self.max_chars = max_chars

    @property
    def detector(self) -> Detector | None:
        return getattr(self.image_side, "detector", None)

    @classmethod
    def load(
        cls,
        run_dir: Path | str,
        detector: Detector | str | None = "default",
        ner: Extractor | Path | str | None = None,
        batch_size: int = 16,
        device: torch.device | str = "cpu",
        runtime: str = "torch",
        onnx_threads: int | None = None,
    ) -> Extractor:
        """A run folder written by ``mmib train`` (best-dev weights), or the name of a model installed from a
        wheel that ``mmib package`` built.

        ``detector``: "default" (the offline SSD detector where installed, else whole image only), None (whole
        image only), or any object with ``detect(image)``. ``ner``: for an MRE run, the NER run (or Extractor)
        whose entities :meth:`relations` pairs up when no head and tail are given. ``device``: "cpu",
        "cuda", "cuda:1", "mps" or "auto" (CUDA, then MPS, then CPU). ``runtime``: "torch", or "onnx" to run
        the text encoder and CNN exported by ``mmib export RUN --format onnx`` with ONNX Runtime (CPU);
        ``onnx_threads``: each of its two sessions' threads (default half of torch's: they run side by side).
        """
        if runtime not in RUNTIMES:
            raise InputError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if runtime == "onnx" and resolve_device(device).type != "cpu":
            raise InputError("the onnx runtime runs on the CPU here: use --device cpu, or --runtime torch")
        run_dir = locate_model(run_dir)  # a run folder, or an installed model's name (mmib package)
        model, tokenizer = from_pretrained(run_dir)
        config = model.config
        if runtime == "onnx":  # the exported CNN carries its own preprocessing: no PyTorch CNN is built
            cnn = use_onnx(model, RunFolder(run_dir), onnx_threads)
        else:
            cnn = build_image_encoder(config.image_encoder) if config.reads_pixels else None
        wanted_default = detector == "default" and cnn is not None
        if detector == "default":
            detector = load_default_detector() if cnn is not None else None
        if isinstance(ner, str | Path):
            ner = cls.load(ner, detector=detector, batch_size=batch_size, device=device, runtime=runtime)
        # an attached NER run that shares the detector shares its lock (LivePixels)
        shares = ner is not None and detector is not None and ner.detector is detector
        lock = getattr(ner.image_side, "lock", None) if shares else None
        side = live_image_side(config, cnn, detector, resolve_device(device), wanted_default, lock)
        return cls(model, tokenizer, side, ner, batch_size, device=device)

    # ---- public API -------------------------------------------------------------------------------------

    def predict(self, text: str, image: ImageInput = None, caption: str | None = None) -> list[Span]:
        """Entities of one raw post (an NER run, or an MRE run loaded with ``ner=``). ``caption``: a caption
        of the post's image, for runs trained with captions (ignored by the others)."""
        return self.analyze_many([(text, image, caption)])[0].entities

    def relations(
        self,
        text: str,
        image: ImageInput = None,
        head: str | tuple[int, int] | None = None,
        tail: str | tuple[int, int] | None = None,
        include_none: bool = False,
        caption: str | None = None,
    ) -> list[Relation]:
        """Relations of one post: for the given head and tail (surface strings or character spans), or for
        every ordered pair of entities found by the ``ner`` run. ``None`` relations are left out unless
        ``include_none``; results are sorted by confidence."""
        if not isinstance(self.processor.task, ReTask):
            raise InputError("this run is an NER model; load an MRE run to extract relations")
        if (head is None) != (tail is None):
            raise InputError("give both head and tail, or neither (then every entity pair is scored)")
        tokens = check_text(text, self.max_chars)
        if head is not None:
            pairs = [(given_entity(text, tokens, head), given_entity(text, tokens, tail))]
        elif self.ner is None:
            raise InputError("no head and tail given and no NER run attached (Extractor.load(..., ner=RUN))")
        else:
            pairs = list(permutations(self.ner.predict(text, image, caption), 2))
        found = classify_pairs(self, text, tokens, open_image(image), pairs, caption=check_caption(caption))
        return sorted(
            (r for r in found if include_none or r.relation != NONE_RELATION), key=lambda r: -r.confidence
        )

    def analyze_pair(
        self,
        text: str,
        image: ImageInput,
        head: str | tuple[int, int],
        tail: str | tuple[int, int],
        caption: str | None = None,
    ) -> PostPrediction:
        """The relation of one given head and tail (``None`` included) as a post's prediction: what
        ``mmib serve`` answers and ``mmib predict`` writes for an MRE input line with ``head`` and ``tail``."""
        relations = self.relations(text, image, head, tail, include_none=True, caption=caption)
        side = self.image_side
        sees = (image is not None and side.reads_pixels) or (
            caption is not None and side.reads_caption_states
        )
        result = PostPrediction(text, check_text(text, self.max_chars), image_used=sees)
        result.relations = relations
        result.entities = [relations[0].head, relations[0].tail]
        return result

    def analyze(self, text: str, image: ImageInput = None, caption: str | None = None) -> PostPrediction:
        """Entities, relations (MRE runs with an NER run attached) and the detected objects of one post."""
        return self.analyze_many([(text, image, caption)])[0]

    def analyze_many(
        self, posts: Sequence[tuple[str, ImageInput]] | Sequence[tuple[str, ImageInput, str | None]]
    ) -> list[PostPrediction]:
        """Batched :meth:`analyze` over (text, image) or (text, image, caption) tuples. Raises
        :class:`InputError` naming the first bad post."""
        if isinstance(self.processor.task, NerTask):
            return self._tag_in_batches(posts)
        if self.ner is None:
            raise InputError(
                "this run is an MRE model: attach an NER run (Extractor.load(..., ner=RUN)) or call relations()"
            )
        checked = list(self._checked_ahead(posts))
        # Detection and CNN features are the slow part of a post: when both runs see the image alike, compute
        # them once and hand them to both passes.
        if self.image_side.sees_like(self.ner.image_side):
            shared = self.image_side.inputs(
                [post.image for post in checked], [post.prepared for post in checked]
            )
        else:  # the regions were made for this run's detector and CNN, which the NER run's may not share
            shared, checked = None, [replace(post, prepared=None) for post in checked]
        results = tag_posts(self.ner, checked, shared)
        for row, (result, post) in enumerate(zip(results, checked, strict=True)):
            visual = None if shared is None else (shared[0][row : row + 1], shared[1][row : row + 1])
            pairs = list(permutations(result.entities, 2))
            found = classify_pairs(self, post.text, post.tokens, post.image, pairs, visual, post.caption)
            kept = (r for r in found if r.relation != NONE_RELATION)
            result.relations = sorted(kept, key=lambda r: -r.confidence)
        return results

    # ---- batches ----------------------------------------------------------------------------------------

    def _tag_in_batches(self, posts: Sequence[tuple]) -> list[PostPrediction]:
        """Entities of every post, a batch at a time, the CNN one batch ahead of the rest of the networks
        (:func:`mmib.predict.prefetch.tagged_with_cnn_ahead`)."""
        encode = (
            self.image_side.inputs if self.image_side.reads_pixels and len(posts) > self.batch_size else None
        )
        return tagged_with_cnn_ahead(
            self._checked_ahead(posts), self.batch_size, encode, partial(tag_posts, self)
        )

    def _checked_ahead(self, posts: Sequence[tuple]):
        """:meth:`_check_post` of every post, two batches ahead (:func:`mmib.predict.prefetch.opened_ahead`)."""
        return opened_ahead(posts, self._check_post, 2 * self.batch_size)

    def _check_post(self, text: str, image: ImageInput, caption: object = None) -> CheckedPost:
        """A post's text tokenised, caption checked, image opened and (runs that read pixels) its image
        prepared for the CNN (``LivePixels.prepare``). Raises :class:`InputError`."""
        caption = check_caption(caption)
        checked = CheckedPost(text, check_text(text, self.max_chars), open_image(image), caption)
        if checked.image is not None:
            checked.prepared = self.image_side.prepare(checked.image)
        return checked

    def batch(self, posts: list[PostInput], features: torch.Tensor, mask: torch.Tensor) -> Batch:
        """The processor's batch of ``posts`` on this extractor's device."""
        return self.processor(posts, features, mask).to(self.device)


__all__ = ["Extractor"]
