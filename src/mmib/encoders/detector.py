"""Object crops for new images: a pluggable detector, and the offline default SSD-MobileNetV2 (OpenImages v4).

The paper takes the top m = 3 objects of a visual-grounding toolkit as the image's local regions (Section
III-A2). Benchmark files ship those crops; new posts do not, so prediction detects them itself. Any object
with a ``detect(image) -> list[Detection]`` method can be plugged into :class:`mmib.Extractor`.

The default is the SSD-MobileNetV2 detector (23 OpenImages classes) that the npm package
``@mediapipe/objectron`` carries inside a packed asset file; ``mmib models fetch-detector`` extracts it.
It runs with ``ai-edge-litert``. Its raw outputs are per-anchor box offsets and class logits, so anchor
generation, box decoding and non-maximum suppression live here: they are the standard SSD post-processing
(the TF Object Detection API's anchor generator and box coder), which no installable library offers
without TensorFlow or torchvision (neither imports beside the CPU torch wheel used here).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from mmib.encoders.text import mmib_home

NPM_PACKAGE = "@mediapipe/objectron@0.4.1675468480"
PACKED_ASSETS = "package/objectron_solution_packed_assets.data"
LABEL_BYTES = (0, 184)  # newline-separated label map, index 0 = background
MODEL_BYTES = (184, 9987912)  # a float16 .tflite file
DETECTOR_NAME = "ssd-mobilenetv2-oidv4"
INPUT_SIZE = 300


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels of the input image

    def as_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4), "box": [round(v, 1) for v in self.box]}


class Detector(Protocol):
    name: str

    def detect(self, image: Image.Image) -> list[Detection]: ...


# ---------------------------------------------------------------------------------------------------------
# SSD post-processing


def _scale(index: int, count: int, min_scale: float = 0.2, max_scale: float = 0.95) -> float:
    return (
        (min_scale + max_scale) / 2
        if count == 1
        else min_scale + (max_scale - min_scale) * index / (count - 1)
    )


def ssd_anchors(
    input_size: int = INPUT_SIZE,
    strides: tuple[int, ...] = (16, 32, 64, 128, 256, 512),
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333),
) -> np.ndarray:
    """Anchors (A, 4) as (y_center, x_center, height, width), normalised to [0, 1].

    The SSD scheme of the detector's training config: one layer per stride, scales linear from 0.2 to 0.95,
    each cell gets one anchor per aspect ratio plus one at the geometric mean of this and the next scale; the
    lowest layer uses three (scale 0.1 at ratio 1, then ratios 2 and 0.5). 300 px gives 1917 anchors.
    """
    anchors = []
    for layer, stride in enumerate(strides):
        scale = _scale(layer, len(strides))
        if layer == 0:
            shapes = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            following = 1.0 if layer == len(strides) - 1 else _scale(layer + 1, len(strides))
            shapes = [(scale, ratio) for ratio in aspect_ratios] + [(math.sqrt(scale * following), 1.0)]
        cells = math.ceil(input_size / stride)
        for y in range(cells):
            for x in range(cells):
                for anchor_scale, ratio in shapes:
                    root = math.sqrt(ratio)
                    anchors.append(
                        ((y + 0.5) / cells, (x + 0.5) / cells, anchor_scale / root, anchor_scale * root)
                    )
    return np.asarray(anchors, dtype=np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, scales=(10.0, 10.0, 5.0, 5.0)) -> np.ndarray:
    """Box offsets (A, 4) as (ty, tx, th, tw) -> boxes (A, 4) as normalised (x0, y0, x1, y1)."""
    y_center = raw[:, 0] / scales[0] * anchors[:, 2] + anchors[:, 0]
    x_center = raw[:, 1] / scales[1] * anchors[:, 3] + anchors[:, 1]
    height = np.exp(raw[:, 2] / scales[2]) * anchors[:, 2]
    width = np.exp(raw[:, 3] / scales[3]) * anchors[:, 3]
    return np.stack(
        [x_center - width / 2, y_center - height / 2, x_center + width / 2, y_center + height / 2], axis=1
    )


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (K, 4) boxes, all (x0, y0, x1, y1)."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Greedy NMS: indices of kept boxes, best first."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order and len(kept) < limit:
        best = order.pop(0)
        kept.append(int(best))
        if order:
            overlaps = box_iou(boxes[best], boxes[order])
            order = [
                index for index, overlap in zip(order, overlaps, strict=True) if overlap <= iou_threshold
            ]
    return kept


# ---------------------------------------------------------------------------------------------------------
# The default detector


def detector_folder() -> Path:
    return mmib_home() / "models" / DETECTOR_NAME


def fetch_detector(target: Path | None = None) -> Path:
    """Download the npm package with ``npm pack`` and extract the detector and its labels into ``target``."""
    target = Path(target or detector_folder())
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("fetching the detector needs npm (Node.js); install it or copy the files by hand")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=scratch, check=True, capture_output=True)
        tarball = next(Path(scratch).glob("*.tgz"))
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(PACKED_ASSETS)
            if member is None:
                raise RuntimeError(f"{PACKED_ASSETS} missing from {tarball.name}")
            packed = member.read()
    labels = packed[slice(*LABEL_BYTES)].decode("utf-8").strip().split("\n")
    model = packed[slice(*MODEL_BYTES)]
    if model[4:8] != b"TFL3" or len(labels) != 24:
        raise RuntimeError("unexpected layout of the packed asset file; was the package version changed?")
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.tflite").write_bytes(model)
    (target / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return target


class SsdMobileNetDetector:
    """SSD-MobileNetV2 on OpenImages v4 (23 classes) through ai-edge-litert, 300 x 300 input.

    Safe to call from several threads at once: each calling thread gets its own interpreter (a TFLite
    interpreter cannot run two images at once), made on its first call. ``threads``: each interpreter's CPU
    threads. One by default, because prediction detects in the threads that open posts ahead, beside the
    networks: one thread per interpreter spends the least CPU time per image (23 ms on one thread against
    17 ms on two, 34 ms of CPU, on the 2-core machines here), and on a busy machine CPU time is what counts.
    Measured there, 100 synthetic posts under ONNX Runtime, 5 interleaved passes: 27.0 posts/s with one
    interpreter of one thread per opening thread (and the CNN beside the text encoder) against 23.4 with one
    shared interpreter of two threads behind a lock. A single image waits about 6 ms longer."""

    name = DETECTOR_NAME
    thread_safe = True  # Extractor calls it without a lock

    def __init__(
        self,
        folder: Path | str | None = None,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.45,
        max_detections: int = 10,
        threads: int = 1,
    ) -> None:
        folder = Path(folder or detector_folder())
        self.labels = (folder / "labels.txt").read_text(encoding="utf-8").strip().split("\n")
        self.model_path = folder / "model.tflite"
        self.threads = threads
        self._per_thread = threading.local()
        self._interpreter()  # a missing runtime or a broken model file fails here, not on the first image
        self.anchors = ssd_anchors()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections

    def _interpreter(self) -> _Interpreter:
        """This thread's interpreter, made on its first call."""
        made = getattr(self._per_thread, "interpreter", None)
        if made is None:
            made = self._per_thread.interpreter = _Interpreter.load(self.model_path, self.threads)
        return made

    def raw_outputs(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """Box offsets (1917, 4) and class logits (1917, 24) for an RGB image."""
        pixels = np.asarray(image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR), np.float32)
        return self._interpreter().run((pixels / 127.5 - 1.0)[None])  # [-1, 1]

    def detect(self, image: Image.Image) -> list[Detection]:
        """Detections above the score threshold, best first, after class-agnostic NMS."""
        raw_boxes, logits = self.raw_outputs(image)
        scores = 1.0 / (1.0 + np.exp(-logits[:, 1:]))  # sigmoid per class, background column dropped
        best_class = scores.argmax(1)
        best_score = scores.max(1)
        candidates = np.flatnonzero(best_score >= self.score_threshold)
        boxes = np.clip(decode_boxes(raw_boxes[candidates], self.anchors[candidates]), 0.0, 1.0)
        kept = non_max_suppression(boxes, best_score[candidates], self.iou_threshold, self.max_detections)
        width, height = image.size
        detections = []
        for index in kept:
            x0, y0, x1, y1 = boxes[index]
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                continue
            label = self.labels[best_class[candidates[index]] + 1]
            box = (float(x0 * width), float(y0 * height), float(x1 * width), float(y1 * height))
            detections.append(Detection(label, float(best_score[candidates[index]]), box))
        return detections


@dataclass(frozen=True)
class _Interpreter:
    """One TFLite interpreter of the detector and the indices of its input and outputs."""

    interpreter: object
    input_index: int
    box_index: int
    score_index: int

    @classmethod
    def load(cls, model_path: Path, threads: int) -> _Interpreter:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        interpreter.allocate_tensors()
        outputs = sorted(interpreter.get_output_details(), key=lambda d: d["shape"][-1])  # (.., 4), (.., 24)
        return cls(
            interpreter, interpreter.get_input_details()[0]["index"], outputs[0]["index"], outputs[1]["index"]
        )

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 300, 300, 3) in [-1, 1] -> box offsets (1917, 4) and class logits (1917, 24)."""
        self.interpreter.set_tensor(self.input_index, pixels)
        self.interpreter.invoke()
        boxes, logits = (
            self.interpreter.get_tensor(self.box_index),
            self.interpreter.get_tensor(self.score_index),
        )
        return boxes[0], logits[0]


def load_default_detector() -> SsdMobileNetDetector | None:
    """The default detector, or None where its files or ai-edge-litert are not installed."""
    if not (detector_folder() / "model.tflite").exists():
        return None
    try:
        return SsdMobileNetDetector()
    except ImportError:
        return None


def crop_regions(image: Image.Image, detections: list[Detection], limit: int) -> list[Image.Image]:
    """The top ``limit`` detected regions as images, as the paper's top-m object crops."""
    crops = []
    for detection in detections[:limit]:
        x0, y0, x1, y1 = (round(v) for v in detection.box)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            crops.append(image.crop((x0, y0, x1, y1)))
    return crops
