"""SSD post-processing (anchors, box decoding, NMS) and the offline detector on known images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmib.encoders.detector import (
    box_iou,
    decode_boxes,
    detector_folder,
    non_max_suppression,
    ssd_anchors,
)

from .conftest import shared_path


def test_anchor_layout_matches_the_ssd_config():
    anchors = ssd_anchors()
    assert anchors.shape == (1917, 4)  # 19*19*3 + (10*10 + 5*5 + 3*3 + 2*2 + 1) * 6
    # first cell of the lowest layer: scale 0.1 at ratio 1, then scale 0.2 at ratios 2 and 1/2
    c = 0.5 / 19
    expected = [
        (c, c, 0.1, 0.1),
        (c, c, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)),
        (c, c, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)),
    ]
    assert np.allclose(anchors[:3], expected, atol=1e-6)
    # second layer (10 x 10, scale 0.35): ratio 1 first, interpolated scale sqrt(0.35 * 0.5) last
    assert np.allclose(anchors[1083], (0.05, 0.05, 0.35, 0.35), atol=1e-6)
    assert np.allclose(anchors[1088, 2:], (math.sqrt(0.35 * 0.5),) * 2, atol=1e-6)
    # the single 1 x 1 cell of the top layer ends with scale sqrt(0.95 * 1.0)
    assert np.allclose(anchors[-1], (0.5, 0.5, math.sqrt(0.95), math.sqrt(0.95)), atol=1e-6)


def test_zero_offsets_decode_to_the_anchor_and_scales_apply():
    anchors = np.array([[0.5, 0.4, 0.2, 0.1]], dtype=np.float32)
    assert np.allclose(decode_boxes(np.zeros((1, 4), np.float32), anchors), [[0.35, 0.4, 0.45, 0.6]])
    raw = np.array([[10.0, -10.0, 5.0, 0.0]], dtype=np.float32)  # y += 1 height, x -= 1 width, h *= e
    y, x, h, w = 0.5 + 0.2, 0.4 - 0.1, 0.2 * math.e, 0.1
    assert np.allclose(decode_boxes(raw, anchors), [[x - w / 2, y - h / 2, x + w / 2, y + h / 2]], atol=1e-6)


def test_nms_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert non_max_suppression(boxes, scores, 0.5, 10) == [3, 2]
    assert non_max_suppression(boxes, scores, 0.95, 2) == [3, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 40)] * 4, st.floats(0.01, 1.0)), min_size=1, max_size=25))
def test_nms_properties(rows):
    boxes = np.array(
        [(min(a, c), min(b, d), max(a, c) + 1, max(b, d) + 1) for a, b, c, d, _ in rows], np.float32
    )
    scores = np.array([row[4] for row in rows])
    kept = non_max_suppression(boxes, scores, 0.5, 100)
    assert list(scores[kept]) == sorted(scores[kept], reverse=True)
    for i, first in enumerate(kept):  # survivors never overlap each other above the threshold
        assert all(box_iou(boxes[first], boxes[[k]])[0] <= 0.5 for k in kept[i + 1 :])
    for dropped in set(range(len(rows))) - set(kept):  # each dropped box is covered by a better survivor
        assert any(
            box_iou(boxes[k], boxes[[dropped]])[0] > 0.5 and scores[k] >= scores[dropped] for k in kept
        )


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("ai_edge_litert")
    if not (detector_folder() / "model.tflite").exists():
        pytest.skip("detector not fetched (mmib models fetch-detector)")
    from mmib.encoders.detector import SsdMobileNetDetector

    return SsdMobileNetDetector()


def _image(name: str):
    from mmib.data.images import decode_image

    folder = shared_path("images/mnre-sample/img_org")
    return decode_image(next(folder.glob(f"*/{name}")))


def test_detector_boxes_on_known_images(detector):
    """Boxes recorded from this implementation and checked by eye (each box on a player / the cat)."""
    players = [
        d for d in detector.detect(_image("twitter_stream_2018_09_04_13_0_2_48.jpg")) if d.label == "Person"
    ]
    expected = [(208.0, 157.8, 326.4, 412.9), (66.8, 144.1, 133.2, 367.3), (416.2, 212.6, 505.0, 412.6)]
    assert len(players) >= 3
    for found, box in zip(players[:3], expected, strict=True):
        assert np.allclose(found.box, box, atol=3.0) and found.score > 0.4
    cat = detector.detect(_image("twitter_19_31_14_34.jpg"))[0]
    assert cat.label == "Cat" and cat.score == pytest.approx(0.627, abs=0.02)
    assert np.allclose(cat.box, (77.2, 11.9, 742.5, 588.2), atol=3.0)


def test_detections_stay_inside_the_image(detector):
    image = _image("twitter_19_31_16_6.jpg")
    for detection in detector.detect(image):
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height


def test_threads_calling_the_detector_at_once_get_what_one_thread_gets(detector):
    """Each calling thread gets its own interpreter, so two threads detecting at once neither wait for nor
    disturb each other: every image's detections equal the ones found one image after another."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["twitter_stream_2018_09_04_13_0_2_48.jpg", "twitter_19_31_14_34.jpg", "twitter_19_31_16_6.jpg"]
    images = [_image(name) for name in names] * 4
    one_after_another = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        at_once = list(pool.map(detector.detect, images))
    assert at_once == one_after_another and all(one_after_another)
