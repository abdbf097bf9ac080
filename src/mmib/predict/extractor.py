"""Text + image in, entities and relations out: :class:`Extractor` runs a trained run folder on new posts.

    >>> from mmib import Extractor
    >>> ner = Extractor.load("runs/twitter2017-mmib")
    >>> ner.predict("Kobe Bryant at Staples Center #Lakers", "photo.jpg")
    [Entity(text='Kobe Bryant', type='PER', start=0, end=11, confidence=0.97), ...]
    >>> re = Extractor.load("runs/mnre-mmib", ner=ner)
    >>> re.relations("Kobe Bryant at Staples Center", "photo.jpg")            # every entity pair
    >>> re.relations("Kobe Bryant at Staples Center", None, "Kobe Bryant", "Staples Center")

Raw posts are cut by :func:`mmib.predict.tokenize.tokenize_post`; images go through the same frozen CNN
as in training, the whole image plus the top m detected objects (Section III-A2), with a pluggable
detector (:mod:`mmib.predict.detector`). Posts are batched internally.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from itertools import permutations
from pathlib import Path

import torch
from PIL import Image

from mmib.data.images import ImageUnreadable, decode_image, to_rgb
from mmib.data.records import NONE_RELATION
from mmib.devices import RUNTIMES, resolve_device
from mmib.encoders.captions import CaptionEncoder, pad_caption_states
from mmib.encoders.entity_markers import mark_entities
from mmib.encoders.image import ImageEncoder, build_image_encoder
from mmib.encoders.text import WordTokenizer
from mmib.metrics import extract_spans
from mmib.model.mmib import Batch, MMIBModel
from mmib.model.package import locate_model
from mmib.model.run_folder import RunFolder, from_pretrained
from mmib.predict.detector import Detection, Detector, crop_regions, load_default_detector
from mmib.predict.onnx_runtime import use_onnx
from mmib.predict.tokenize import Token, tokenize_post

logger = logging.getLogger(__name__)

ImageInput = str | Path | bytes | Image.Image | None
CONTROL_CHARACTERS = frozenset(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
MAX_CHARS = 5000  # a tweet is at most 280 characters; far longer input is almost surely a mistake


class InputError(ValueError):
    """Bad input to prediction (empty or over-long text, unreadable image, unknown entity)."""


@dataclass
class Entity:
    text: str
    type: str
    start: int  # character offsets in the raw post, [start, end)
    end: int
    confidence: float  # mean CRF marginal of the span's predicted tags (1.0 for entities given by the user)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Relation:
    head: Entity
    tail: Entity
    relation: str
    confidence: float  # softmax probability of the predicted relation, eq. (19)

    def as_dict(self) -> dict:
        return {
            "head": self.head.as_dict(),
            "tail": self.tail.as_dict(),
            "relation": self.relation,
            "confidence": self.confidence,
        }


@dataclass
class PostPrediction:
    text: str
    tokens: list[Token]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    objects: list[Detection] = field(default_factory=list)  # detected regions whose crops were used
    image_used: bool = False

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "entities": [e.as_dict() for e in self.entities],
            "relations": [r.as_dict() for r in self.relations],
            "objects": [o.as_dict() for o in self.objects],
            "image_used": self.image_used,
        }


def open_image(image: ImageInput) -> Image.Image | None:
    """An upright RGB image from a path, bytes or PIL image; None stays None. Raises :class:`InputError`."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return to_rgb(image)
    try:
        return decode_image(image if isinstance(image, bytes) else Path(image))
    except ImageUnreadable as error:
        raise InputError(f"image {error.path}: {error.reason}") from None
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"image {image}: no such file") from None


@functools.cache
def _preprocessing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="mmib-resize")


def _in_batches(items: Iterable[CheckedPost], size: int) -> Iterator[list[CheckedPost]]:
    """Consecutive lists of ``size`` items, the last one shorter (itertools.batched needs Python 3.12)."""
    batch: list[CheckedPost] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@functools.cache
def _encoding_pool() -> ThreadPoolExecutor:
    """Runs the CNN on the next batch's regions while the caller's thread runs the text encoder, the MMIB
    layers and the CRF on the current one. One worker: batches go through the CNN in order."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmib-cnn")


@functools.cache
def _opening_pool() -> ThreadPoolExecutor:
    """Opens posts ahead of the batch being predicted. A pool apart from the resizing one, so that the crops
    of the current batch never wait in line behind the posts of the next ones."""
    return ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix="mmib-open")


def check_text(text: str, max_chars: int = MAX_CHARS) -> list[Token]:
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise InputError(f"text is {len(text)} characters long; the limit is {max_chars}")
    control = next((c for c in text if c in CONTROL_CHARACTERS), None)
    if control is not None:  # NUL and friends are no words: refused rather than tagged
        raise InputError(f"text contains the control character U+{ord(control):04X}")
    refuse_unencodable("text", text)
    tokens = tokenize_post(text)
    if not tokens:
        raise InputError("text is empty (no words to tag)")
    return tokens


def refuse_unencodable(field: str, value: str) -> None:
    """A lone surrogate (``"a\\ud800"``, which JSON and Python strings allow) is no Unicode text: the tokenizer
    and the UTF-8 output cannot take it, so the post is refused with its position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"{field} holds a lone surrogate U+{ord(value[error.start]):04X} at character {error.start + 1} "
            "(not valid Unicode)"
        ) from None


def check_caption(caption: object) -> str | None:
    if caption is None:
        return None
    if not isinstance(caption, str):
        raise InputError(f"caption must be a string, got {type(caption).__name__}")
    if len(caption) > MAX_CHARS:
        raise InputError(f"caption is {len(caption)} characters long; the limit is {MAX_CHARS}")
    refuse_unencodable("caption", caption)
    return caption.strip() or None


@dataclass
class PreparedImage:
    """An image made ready for the CNN ahead of its batch: its detections, and its regions (the whole image,
    then the crops of those detections) preprocessed."""

    detections: list[Detection]
    pixels: torch.Tensor  # (1 + crops, 3, 224, 224)


@dataclass
class CheckedPost:
    """A post whose text was tokenised and whose image was opened (and caption checked)."""

    text: str
    tokens: list[Token]
    image: Image.Image | None
    caption: str | None = None
    prepared: PreparedImage | None = None  # made ahead, for runs that read pixels

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]


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
        image_encoder: ImageEncoder | None = None,
        detector: Detector | None = None,
        ner: Extractor | None = None,
        batch_size: int = 16,
        max_chars: int = MAX_CHARS,
        warn_without_detector: bool = False,
        caption_encoder: CaptionEncoder | None = None,
        device: torch.device | str = "cpu",
        image_batch_size: int = 64,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.caption_encoder = caption_encoder  # runs whose image side is a caption
        self.tokenizer = tokenizer
        self.config = model.config
        # inference only: batch norms folded into the convolutions (encoders/image.py)
        self.image_encoder = image_encoder.folded().to(self.device) if image_encoder is not None else None
        self.image_batch_size = image_batch_size
        self.detector = detector
        self.ner = ner
        self.batch_size = batch_size
        self.max_chars = max_chars
        self._warn_without_detector = warn_without_detector  # said once, on the first image
        # a detector is called from the threads that open posts ahead; a plugged-in one may not be safe to call
        # from two threads at once, so it is called under a lock unless it says it is (``thread_safe``, as the
        # default one is). An attached NER run that shares the detector shares its lock too.
        self._detector_lock: AbstractContextManager = threading.Lock()
        if getattr(detector, "thread_safe", False):
            self._detector_lock = contextlib.nullcontext()
        elif ner is not None and detector is not None and ner.detector is detector:
            self._detector_lock = ner._detector_lock

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
        image_encoder = build_image_encoder(config.image_encoder) if config.reads_pixels else None
        if runtime == "onnx":
            image_encoder = use_onnx(model, image_encoder, RunFolder(run_dir), onnx_threads)
        captioned = not config.text_only and config.image_source == "captions"
        caption_encoder = (
            CaptionEncoder(config.caption_encoder, config.caption_max_tokens) if captioned else None
        )
        wanted_default = detector == "default" and image_encoder is not None
        if detector == "default":
            detector = load_default_detector() if image_encoder is not None else None
        if isinstance(ner, str | Path):
            ner = cls.load(ner, detector=detector, batch_size=batch_size, device=device, runtime=runtime)
        return cls(
            model,
            tokenizer,
            image_encoder,
            detector,
            ner,
            batch_size,
            warn_without_detector=wanted_default,
            caption_encoder=caption_encoder,
            device=device,
        )

    # ---- public API -------------------------------------------------------------------------------------

    def predict(self, text: str, image: ImageInput = None, caption: str | None = None) -> list[Entity]:
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
        if self.config.task != "mre":
            raise InputError("this run is an NER model; load an MRE run to extract relations")
        if (head is None) != (tail is None):
            raise InputError("give both head and tail, or neither (then every entity pair is scored)")
        tokens = check_text(text, self.max_chars)
        if head is not None:
            entities = [self._given_entity(text, tokens, head), self._given_entity(text, tokens, tail)]
            pairs = [(entities[0], entities[1])]
        else:
            if self.ner is None:
                raise InputError(
                    "no head and tail given and no NER run attached (Extractor.load(..., ner=RUN))"
                )
            pairs = list(permutations(self.ner.predict(text, image, caption), 2))
        found = self._classify_pairs(text, tokens, open_image(image), pairs, caption=check_caption(caption))
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
        sees = (image is not None and self.image_encoder is not None) or (
            caption is not None and self.caption_encoder is not None
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
        if self.config.task == "ner":
            return self._tag_in_batches(posts)
        if self.ner is None:
            raise InputError(
                "this run is an MRE model: attach an NER run (Extractor.load(..., ner=RUN)) or call relations()"
            )
        checked = list(self._checked_ahead(posts))
        # Detection and CNN features are the slow part of a post: when both runs see the image alike, compute
        # them once and hand them to both passes.
        if self._sees_like(self.ner):
            shared = self.visual_inputs([post.image for post in checked], [post.prepared for post in checked])
        else:  # the regions were made for this run's detector and CNN, which the NER run's may not share
            shared, checked = None, [replace(post, prepared=None) for post in checked]
        results = self.ner._tag_posts(checked, shared)
        for row, (result, post) in enumerate(zip(results, checked, strict=True)):
            visual = None if shared is None else (shared[0][row : row + 1], shared[1][row : row + 1])
            pairs = list(permutations(result.entities, 2))
            result.relations = sorted(
                (
                    r
                    for r in self._classify_pairs(
                        post.text, post.tokens, post.image, pairs, visual, post.caption
                    )
                    if r.relation != NONE_RELATION
                ),
                key=lambda r: -r.confidence,
            )
        return results

    def _tag_in_batches(self, posts: Sequence[tuple]) -> list[PostPrediction]:
        """Entities of every post, a batch at a time, the CNN one batch ahead of the rest of the networks.

        Why: the CNN and the text encoder each keep a core busy better than one of them split over two (ONNX
        Runtime sessions get half the cores each, onnx_runtime._session). Measured on 2 cores, 100 synthetic
        posts, against the commit before (4fc4e5c), the two alternating in their own processes, 4 rounds of 3
        passes: ONNX Runtime 26.5 / 50.6 posts/s with / without the detector against 23.2 / 44.1; PyTorch
        15.2 / 28.6 against 14.4 / 24.3 (with the detector's single-thread interpreters, below). A call's only
        batch stays in the caller's thread: nothing would run beside it, so a hand-off would only add to a
        single post's latency."""
        encode_ahead = self._reads_pixels and len(posts) > self.batch_size
        results: list[PostPrediction] = []
        waiting: deque[tuple[list[CheckedPost], Future | None]] = deque()
        for chunk in _in_batches(self._checked_ahead(posts), self.batch_size):
            images, prepared = [post.image for post in chunk], [post.prepared for post in chunk]
            visual = _encoding_pool().submit(self.visual_inputs, images, prepared) if encode_ahead else None
            waiting.append((chunk, visual))
            if len(waiting) > 1:
                results += self._tag_encoded(*waiting.popleft())
        while waiting:
            results += self._tag_encoded(*waiting.popleft())
        return results

    def _tag_encoded(self, chunk: list[CheckedPost], visual: Future | None) -> list[PostPrediction]:
        """:meth:`_tag_posts` of a batch, given its visual inputs where the CNN thread made them."""
        return self._tag_posts(chunk, None if visual is None else visual.result())

    @property
    def _reads_pixels(self) -> bool:
        """Whether posts' images go through this run's CNN (not runs without images, nor caption runs)."""
        return self.image_encoder is not None and self.caption_encoder is None

    def _checked_ahead(self, posts: Sequence[tuple]) -> Iterator[CheckedPost]:
        """:meth:`_check_post` of every post, in order, run by a thread pool up to two batches ahead of the
        post asked for. Why: decoding, detecting and resizing otherwise wait in line with the networks of the
        batch before (profiled on 100 synthetic posts under ONNX Runtime without a detector: 0.15 s of 1.76 s);
        PIL, numpy and the detector's runtime release the GIL, so the pool's threads run beside the networks'
        own. Measured without a detector, 8 interleaved passes each: 47.2 against 45.5 posts/s (medians). The
        first bad post raises :class:`InputError`, as when every post was opened
        before any was predicted (the work already done on the posts around it is dropped)."""
        pool, pending = _opening_pool(), deque()
        numbered = iter(enumerate(posts))

        def submit() -> None:
            if (post := next(numbered, None)) is not None:
                pending.append((post[0], pool.submit(self._check_post, *post[1])))

        for _ in range(2 * self.batch_size):
            submit()
        while pending:
            number, opened = pending.popleft()
            submit()
            yield self._result(number, opened, len(posts))

    @staticmethod
    def _result(number: int, opened: Future, count: int) -> CheckedPost:
        try:
            return opened.result()
        except InputError as error:
            raise InputError(f"post {number}: {error}" if count > 1 else str(error)) from None

    def _check_post(self, text: str, image: ImageInput, caption: object = None) -> CheckedPost:
        """A post's text tokenised, caption checked, image opened and (runs that read pixels) its image
        prepared for the CNN (:meth:`prepare_image`). Raises :class:`InputError`."""
        caption = check_caption(caption)
        checked = CheckedPost(text, check_text(text, self.max_chars), open_image(image), caption)
        if checked.image is not None and self._reads_pixels:
            checked.prepared = self.prepare_image(checked.image)
        return checked

    def detect(self, image: Image.Image) -> list[Detection]:
        """The top m detections of an image (none without a detector), one caller at a time."""
        if self.detector is None:
            return []
        with self._detector_lock:
            return self.detector.detect(image)[: self.config.max_crops]

    def prepare_image(self, image: Image.Image) -> PreparedImage:
        """Detections and preprocessed regions of one image, in the calling thread. :meth:`analyze_many` runs
        it in the threads that open posts ahead, so that the detector (45 % of the bare networks' time with
        the default one under ONNX Runtime) overlaps the networks of the batch before."""
        detections = self.detect(image)
        regions = self._regions(image, detections)
        return PreparedImage(detections, torch.stack([self.image_encoder.preprocess(r) for r in regions]))

    def _regions(self, image: Image.Image, detections: list[Detection]) -> list[Image.Image]:
        """The CNN's regions of an image: the whole image, then the crops of its top m detections."""
        return [image, *crop_regions(image, detections, self.config.max_crops)]

    def _sees_like(self, other: Extractor) -> bool:
        """Whether ``other`` turns an image into the same features (same CNN, crops and detector)."""
        mine, theirs = self.config, other.config
        return (
            self.image_encoder is not None
            and other.image_encoder is not None
            and mine.image_encoder == theirs.image_encoder
            and mine.max_crops == theirs.max_crops
            and self.detector is other.detector
        )

    # ---- building blocks (also used by mmib analyze) ----------------------------------------------------

    def visual_inputs(
        self, images: list[Image.Image | None], prepared: list[PreparedImage | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[Detection]]]:
        """Whole image + top-m crops per post -> features (P, m+1, F), mask (P, m+1), detections per post.
        ``prepared``: per post, its :meth:`prepare_image` made ahead, or None (detected and preprocessed here)."""
        slots = self.config.max_crops + 1
        features = torch.zeros(len(images), slots, self.config.image_feature_dim)
        mask = torch.zeros(len(images), slots, dtype=torch.bool)
        detections: list[list[Detection]] = [[] for _ in images]
        if self.image_encoder is None:
            return features, mask, detections
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
                post_regions = self._regions(image, detections[row])
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
        encoder = self.image_encoder

        def prepared(region: Image.Image | torch.Tensor) -> torch.Tensor:
            return region if isinstance(region, torch.Tensor) else encoder.preprocess(region)

        pixels = torch.stack(list(_preprocessing_pool().map(prepared, regions)))
        chunks = pixels.split(self.image_batch_size)
        return torch.cat([encoder(chunk.to(self.device)).cpu() for chunk in chunks])

    def caption_inputs(self, captions: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption token states (P, L, H) and mask (P, L), rounded through float16 as the training cache
        holds them; a post without a caption is image-absent."""
        present = [c for c in captions if c is not None]
        states = dict(zip(present, self.caption_encoder(present), strict=True)) if present else {}
        rounded = [states[c].to(torch.float16).float() if c is not None else None for c in captions]
        return pad_caption_states(rounded, self.config.image_feature_dim)

    def make_batch(
        self,
        words: list[list[str]],
        features: torch.Tensor,
        mask: torch.Tensor,
        captions: list[str | None] | None = None,
    ) -> Batch:
        second = captions if self.config.caption_pair else None  # the caption-pair baseline's second segment
        return Batch(
            text=self.tokenizer(words, second),
            word_lengths=torch.tensor([len(post) for post in words]),
            image_features=features,
            image_mask=mask,
            post_ids=torch.arange(len(words)),
        ).to(self.device)

    @torch.inference_mode()  # lighter than no_grad: no version counters on the tensors made here
    def _tag_posts(
        self,
        checked: list[CheckedPost],
        visual: tuple[torch.Tensor, torch.Tensor, list[list[Detection]]] | None = None,
    ) -> list[PostPrediction]:
        """Entities of checked posts; ``visual``: their :meth:`visual_inputs`, when already computed."""
        if self.config.task != "ner":
            raise InputError("this run is an MRE model; it does not tag entities")
        results = []
        for start in range(0, len(checked), self.batch_size):
            chunk = checked[start : start + self.batch_size]
            captions = [post.caption for post in chunk]
            if self.caption_encoder is not None:
                features, mask = self.caption_inputs(captions)
                detections = [[] for _ in chunk]
            elif visual is None:
                features, mask, detections = self.visual_inputs(
                    [post.image for post in chunk], [post.prepared for post in chunk]
                )
            else:
                end = start + len(chunk)
                features, mask, detections = visual[0][start:end], visual[1][start:end], visual[2][start:end]
            batch = self.make_batch([post.words for post in chunk], features, mask, captions)
            fused = self.model.encode(batch, losses=False).fused
            tag_ids = self.model.head.decode(fused, batch.word_mask)
            marginals = self.model.head.marginals(fused, batch.word_mask).cpu()
            for row, post in enumerate(chunk):
                text, tokens = post.text, post.tokens
                tags = [self.config.labels[i] for i in tag_ids[row]]
                entities = []
                for entity_type, first, last in extract_spans(tags):  # words [first, last)
                    confidence = marginals[row, torch.arange(first, last), tag_ids[row][first:last]].mean()
                    begin, end = tokens[first].start, tokens[last - 1].end
                    entities.append(
                        Entity(text[begin:end], entity_type, begin, end, round(float(confidence), 4))
                    )
                results.append(
                    PostPrediction(text, tokens, entities, [], detections[row], bool(mask[row].any()))
                )
        return results

    def _given_entity(self, text: str, tokens: list[Token], given: str | tuple[int, int]) -> Entity:
        """An entity named by its surface string (first occurrence on word boundaries) or character span."""
        if isinstance(given, str):
            starts = {t.start for t in tokens}
            ends = {t.end for t in tokens}
            position = text.find(given)
            while position != -1 and not (position in starts and position + len(given) in ends):
                position = text.find(given, position + 1)
            if not given.strip() or position == -1:
                raise InputError(f"entity {given!r} is not a whole-word span of the text")
            begin, end = position, position + len(given)
        else:
            begin, end = int(given[0]), int(given[1])
            if not 0 <= begin < end <= len(text):
                raise InputError(f"entity span {given} is outside the text (length {len(text)})")
        return Entity(text[begin:end], "", begin, end, 1.0)

    @staticmethod
    def _word_span(tokens: list[Token], entity: Entity) -> tuple[int, int]:
        inside = [i for i, t in enumerate(tokens) if t.start < entity.end and t.end > entity.start]
        if not inside:
            raise InputError(f"entity {entity.text!r} covers no word of the text")
        return inside[0], inside[-1] + 1

    @torch.inference_mode()
    def _classify_pairs(
        self,
        text: str,
        tokens: list[Token],
        image: Image.Image | None,
        pairs: list[tuple[Entity, Entity]],
        visual: tuple[torch.Tensor, torch.Tensor] | None = None,
        caption: str | None = None,
    ) -> list[Relation]:
        """Relation of each (head, tail) pair of one post: the post is encoded once, pairs pooled from C.
        ``visual``: the post's features (1, m+1, F) and mask (1, m+1), when already computed."""
        if not pairs:
            return []
        if self.caption_encoder is not None:
            features, mask = self.caption_inputs([caption])
        else:
            features, mask = visual if visual is not None else self.visual_inputs([image])[:2]
        words = [t.text for t in tokens]
        spans = [(self._word_span(tokens, head), self._word_span(tokens, tail)) for head, tail in pairs]
        if self.config.entity_markers:  # one marked text per pair, each with the post's image side
            marked = [mark_entities(words, head, tail) for head, tail in spans]
            batch = self.make_batch(
                [row for row, _, _ in marked],
                features.expand(len(pairs), *features.shape[1:]),
                mask.expand(len(pairs), *mask.shape[1:]),
                [caption] * len(pairs),
            )
            batch.pair_post = torch.arange(len(pairs), device=self.device)
            spans = [(head, tail) for _, head, tail in marked]
        else:  # the post is encoded once and every pair pooled from its C, eq. (19)
            batch = self.make_batch([words], features, mask, [caption])
            batch.pair_post = torch.zeros(len(pairs), dtype=torch.long, device=self.device)
        batch.heads = torch.tensor([head for head, _ in spans], device=self.device)
        batch.tails = torch.tensor([tail for _, tail in spans], device=self.device)
        fused = self.model.encode(batch, losses=False).fused
        logits = self.model.head.logits(fused, batch.pair_post, batch.heads, batch.tails)
        probabilities = logits.softmax(-1).cpu()
        best = probabilities.max(-1)
        return [
            Relation(head, tail, self.config.labels[int(label)], round(float(p), 4))
            for (head, tail), p, label in zip(pairs, best.values, best.indices, strict=True)
        ]


__all__ = ["Entity", "Extractor", "InputError", "PostPrediction", "Relation"]
