"""Inference-only speed-ups change no prediction: the image side of a batch is encoded in one pass (equal to
one image at a time), and batch norms folded into convolutions give the same features."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mmib.data import load_dataset
from mmib.data.images import decode_image
from mmib.encoders.image import build_image_encoder, fold_batch_norms
from mmib.predict import Extractor


class BoxDetector:
    """Two fixed boxes per image: crops without the detector runtime."""

    name = "boxes"

    def detect(self, image):
        from mmib.encoders.detector import Detection

        width, height = image.size
        return [
            Detection("thing", 0.9, (0.0, 0.0, width / 2, height / 2)),
            Detection("thing", 0.8, (width / 3, height / 3, width, height)),
        ]


@pytest.fixture(scope="module")
def extractor(tiny_ner_run):
    return Extractor.load(tiny_ner_run, detector=BoxDetector())


def test_a_batch_of_images_and_crops_equals_one_image_at_a_time(extractor, synth_ner):
    paths = sorted((synth_ner / "synth_images").glob("*.jpg"))[:5]
    images = [decode_image(p) for p in paths[:2]] + [None] + [decode_image(p) for p in paths[2:]]
    together, mask, detections = extractor.image_side.inputs(images)
    for row, image in enumerate(images):
        alone, alone_mask, alone_detections = extractor.image_side.inputs([image])
        assert mask[row].tolist() == alone_mask[0].tolist()
        assert detections[row] == alone_detections[0]
        assert torch.allclose(together[row], alone[0], atol=1e-3)  # float16 rounding of near-equal floats
    assert mask[2].sum() == 0 and mask[0].tolist() == [True, True, True, False]


def test_batched_predictions_equal_one_post_at_a_time(extractor, synth_ner):
    dataset = load_dataset(synth_ner)
    posts = dataset.splits["test"][:12]
    folder = synth_ner / "synth_images"
    inputs = [(" ".join(p.tokens), folder / f"{p.image_id}.jpg" if p.image_id else None) for p in posts]
    batched = extractor.analyze_many(inputs)
    for (text, image), result in zip(inputs, batched, strict=True):
        alone = extractor.analyze(text, image)
        assert [(e.text, e.type, e.start) for e in result.entities] == [
            (e.text, e.type, e.start) for e in alone.entities
        ]
        for a, b in zip(result.entities, alone.entities, strict=True):
            assert abs(a.confidence - b.confidence) <= 1e-4


def test_folding_batch_norms_keeps_the_features():
    from torch import nn

    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8)
    )
    for module in network:
        if isinstance(module, nn.BatchNorm2d):  # statistics as a trained network has them
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
    network.eval()
    folded = fold_batch_norms(network)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    pixels = torch.randn(2, 3, 16, 16)
    assert torch.allclose(folded(pixels), network(pixels), atol=1e-5)


@pytest.mark.slow
def test_folded_efficientnet_gives_todays_features():
    """The offline default CNN: 49 batch norms folded; features equal within 1e-3 (they are stored as
    float16, whose step at these magnitudes is about 4e-3)."""
    from torch import nn

    encoder = build_image_encoder("efficientnet-lite0")
    folded = encoder.folded()
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 0
    images = [Image.new("RGB", (120, 90), colour) for colour in ("red", "navy", "olive")]
    pixels = torch.stack([encoder.preprocess(i) for i in images])
    assert torch.allclose(folded(pixels), encoder(pixels), atol=1e-3)


def test_images_prepared_ahead_give_the_same_features_and_detections(extractor, synth_ner):
    paths = sorted((synth_ner / "synth_images").glob("*.jpg"))[:3]
    images = [decode_image(paths[0]), None, decode_image(paths[1]), decode_image(paths[2])]
    prepared = [extractor.image_side.prepare(i) if i is not None else None for i in images]
    assert prepared[0].pixels.shape == (3, 3, 224, 224)  # whole image, then the two boxes' crops
    prepared[3] = None  # a post whose image was not prepared ahead is detected and preprocessed as before
    ahead, ahead_mask, ahead_detections = extractor.image_side.inputs(images, prepared)
    plain, plain_mask, plain_detections = extractor.image_side.inputs(images)
    assert torch.equal(ahead, plain) and torch.equal(ahead_mask, plain_mask)
    assert ahead_detections == plain_detections and len(plain_detections[0]) == 2


def test_the_detector_is_called_by_one_thread_at_a_time(tiny_ner_run, synth_ner):
    """Posts are opened ahead by two threads; the default detector's interpreter cannot run twice at once."""
    import threading
    import time

    class WatchedDetector(BoxDetector):
        def __init__(self):
            self.inside, self.most_inside, self.calls = 0, 0, 0
            self.guard = threading.Lock()

        def detect(self, image):
            with self.guard:
                self.inside += 1
                self.calls += 1
                self.most_inside = max(self.most_inside, self.inside)
            time.sleep(0.01)  # long enough for the other opening thread to arrive
            with self.guard:
                self.inside -= 1
            return super().detect(image)

    image = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    detector = WatchedDetector()
    small = Extractor.load(tiny_ner_run, detector=detector, batch_size=3)
    results = small.analyze_many([("Kobe Bryant at Staples Center", image)] * 10)
    assert detector.calls == 10 and detector.most_inside == 1
    assert all(len(r.objects) == 2 for r in results)


def test_a_detector_that_says_it_is_thread_safe_is_called_by_two_threads_at_once(tiny_ner_run, synth_ner):
    """No lock around a ``thread_safe`` detector (the default one keeps an interpreter per thread): the two
    opening threads each wait at a barrier inside ``detect`` for the other, which only passes if both are
    inside at once."""
    import os
    import threading

    if (os.cpu_count() or 1) < 2:
        pytest.skip("posts are opened by one thread on a one-core machine")

    class MeetingDetector(BoxDetector):
        thread_safe = True

        def __init__(self):
            self.barrier = threading.Barrier(2, timeout=10)
            self.met = 0

        def detect(self, image):
            self.barrier.wait()  # raises BrokenBarrierError if the other thread cannot come in
            self.met += 1
            return super().detect(image)

    image = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    detector = MeetingDetector()
    small = Extractor.load(tiny_ner_run, detector=detector, batch_size=2)
    results = small.analyze_many([("Kobe Bryant at Staples Center", image)] * 4)
    assert detector.met == 4 and all(len(r.objects) == 2 for r in results)


def test_the_cnn_runs_in_its_own_thread_a_batch_ahead(tiny_ner_run, synth_ner):
    """The CNN encodes batch k+1 in its thread while the caller's thread tags batch k: every CNN call comes
    from the CNN's thread, every text encoder call from the caller's."""
    import threading

    small = Extractor.load(tiny_ner_run, detector=BoxDetector(), batch_size=2)
    events: list[str] = []
    encode_regions, text_encoder_forward = small.image_side.encode_regions, small.model.text_encoder.forward

    def watched_encode(regions):
        events.append(f"cnn in {threading.current_thread().name.split('_')[0]}")
        return encode_regions(regions)

    def watched_text(*args, **kwargs):
        events.append(f"text in {threading.current_thread().name}")
        return text_encoder_forward(*args, **kwargs)

    small.image_side.encode_regions = watched_encode
    small.model.text_encoder.forward = watched_text
    image = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    results = small.analyze_many([("Kobe Bryant at Staples Center", image)] * 5)  # batches of 2, 2, 1
    assert len(results) == 5 and all(r.image_used for r in results)
    caller = threading.current_thread().name
    assert events.count("cnn in mmib-cnn") == 3 and events.count(f"text in {caller}") == 3
    assert len(events) == 6


def test_posts_opened_ahead_over_several_batches_keep_order_and_predictions(tiny_ner_run, synth_ner):
    dataset = load_dataset(synth_ner)
    folder = synth_ner / "synth_images"
    inputs = [
        (" ".join(p.tokens), folder / f"{p.image_id}.jpg" if p.image_id else None)
        for p in dataset.splits["test"][:11]
    ]
    small = Extractor.load(tiny_ner_run, detector=BoxDetector(), batch_size=3)  # 4 batches, 6 posts ahead
    batched = small.analyze_many(inputs)
    assert [r.text for r in batched] == [text for text, _ in inputs]
    for (text, image), result in zip(inputs, batched, strict=True):
        alone = small.analyze(text, image)
        assert [(e.text, e.type, e.start, e.confidence) for e in result.entities] == [
            (e.text, e.type, e.start, e.confidence) for e in alone.entities
        ]


def test_the_first_bad_post_is_named_when_posts_are_opened_ahead(tiny_ner_run, synth_ner, tmp_path):
    from mmib.predict.inputs import InputError

    image = sorted((synth_ner / "synth_images").glob("*.jpg"))[0]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    inputs = [("Kobe Bryant at Staples Center", image)] * 7 + [("fine text", broken), ("", None)]
    small = Extractor.load(tiny_ner_run, detector=None, batch_size=3)
    with pytest.raises(InputError, match=r"^post 7: image .*broken\.jpg"):
        small.analyze_many(inputs)
    with pytest.raises(InputError, match=r"^post 1: text is empty"):
        small.analyze_many([inputs[0], ("", None), ("fine text", broken)])
