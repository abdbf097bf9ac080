"""A FIFO, device or folder named as an image is reported unreadable and never opened (opening a FIFO for
reading blocks until a writer comes, which hung `mmib data check` and training)."""

from __future__ import annotations

import os
import threading

import pytest

from mmib.data.images import ImageUnreadable, decode_image
from mmib.encoders.image import ImageFeatureCache, build_image_encoder


def _within(seconds: float, function):
    """Run ``function`` in a thread; fail (instead of hanging the suite) when it blocks."""
    found: dict = {}

    def call():
        try:
            found["value"] = function()
        except BaseException as error:  # handed back to the test
            found["error"] = error

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"blocked for more than {seconds} s"
    if "error" in found:
        raise found["error"]
    return found.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifos_and_folders_named_as_images_are_unreadable_not_opened(tmp_path, sample_image):
    fifo = tmp_path / "post.jpg"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    cases = [
        (fifo, "not a regular file \\(a FIFO\\)"),
        (folder, "not a regular file \\(a folder\\)"),
        (tmp_path / ("x" * 300 + ".jpg"), "cannot be opened \\(File name too long\\)"),
        (tmp_path / "a\0b.jpg", "cannot be opened \\(a NUL byte in the name\\)"),
    ]
    for path, reason in cases:
        with pytest.raises(ImageUnreadable, match=reason):
            _within(5, lambda path=path: decode_image(path))
    with pytest.raises(FileNotFoundError):  # an absent file stays a missing file
        decode_image(tmp_path / "absent.jpg")
    cache = ImageFeatureCache(build_image_encoder("random-cnn"), tmp_path / "cache")
    features = _within(10, lambda: cache.features([fifo, folder, sample_image], progress=False))
    assert features[fifo] is None and features[folder] is None and features[sample_image] is not None
    assert (cache.counts.unreadable, cache.counts.computed) == (2, 1)
    assert any("FIFO" in problem for problem in cache.counts.problems)
