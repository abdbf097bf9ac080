"""Work done ahead of the batch being predicted: posts opened (and their images prepared) by a thread pool,
and the CNN run one batch ahead of the text encoder, the MMIB layers and the CRF.

Why threads: PIL, numpy, the detector's runtime and PyTorch's kernels release the GIL, so opening, detecting
and resizing run beside the networks instead of waiting in line with them (measurements where each is used,
predict/extractor.py).
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from mmib.predict.inputs import CheckedPost, InputError

Item = TypeVar("Item")
Result = TypeVar("Result")
_DONE = object()  # the end of the items (an item may itself be None)


@functools.cache
def encoding_pool() -> ThreadPoolExecutor:
    """Runs the CNN on the next batch's regions while the caller's thread runs the text encoder, the MMIB
    layers and the CRF on the current one. One worker: batches go through the CNN in order."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmib-cnn")


@functools.cache
def opening_pool() -> ThreadPoolExecutor:
    """Opens posts ahead of the batch being predicted. A pool apart from the resizing one, so that the crops
    of the current batch never wait in line behind the posts of the next ones."""
    return ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix="mmib-open")


def in_batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive lists of ``size`` items, the last one shorter (itertools.batched needs Python 3.12)."""
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def mapped_ahead(items: Iterable[Item], work: Callable[[Item], Result], ahead: int) -> Iterator[Result]:
    """``work(item)`` of every item, in order, run by the opening pool up to ``ahead`` items ahead of the one
    asked for; an exception is raised when its item is reached."""
    pool, pending = opening_pool(), deque()
    remaining = iter(items)

    def submit() -> None:
        if (item := next(remaining, _DONE)) is not _DONE:
            pending.append(pool.submit(work, item))

    for _ in range(ahead):
        submit()
    while pending:
        done = pending.popleft()
        submit()
        yield done.result()


def opened_ahead(
    posts: Sequence[tuple], open_post: Callable[..., CheckedPost], ahead: int
) -> Iterator[CheckedPost]:
    """``open_post(*post)`` of every post, in order, up to ``ahead`` posts ahead (:func:`mapped_ahead`). Why:
    decoding, detecting and resizing otherwise wait in line with the networks of the
    batch before (profiled on 100 synthetic posts under ONNX Runtime without a detector: 0.15 s of 1.76 s).
    Measured without a detector, 8 interleaved passes each: 47.2 against 45.5 posts/s (medians). The first
    bad post raises :class:`InputError` naming it (the work already done on the
    posts around it is dropped), as when every post was opened before any was predicted."""

    def numbered(item: tuple[int, tuple]) -> CheckedPost:
        number, post = item
        try:
            return open_post(*post)
        except InputError as error:
            raise InputError(f"post {number}: {error}" if len(posts) > 1 else str(error)) from None

    return mapped_ahead(enumerate(posts), numbered, ahead)


def tagged_with_cnn_ahead(
    checked: Iterable[CheckedPost], batch_size: int, encode: Callable | None, tag: Callable
) -> list:
    """``tag(chunk, visual)`` of every batch of ``checked`` posts, with ``encode(images, prepared)`` (the CNN) run
    one batch ahead in its own thread; ``encode`` None: ``tag`` computes the image side itself.

    Why: the CNN and the text encoder each keep a core busy better than one of them split over two (ONNX
    Runtime sessions get half the cores each, onnx_runtime._session). Measured on 2 cores, 100 synthetic
    posts, against the commit before (4fc4e5c), the two alternating in their own processes, 4 rounds of 3
    passes: ONNX Runtime 26.5 / 50.6 posts/s with / without the detector against 23.2 / 44.1; PyTorch
    15.2 / 28.6 against 14.4 / 24.3 (the detector's interpreters single-threaded). A call's only
    batch stays in the caller's thread: nothing would run beside it, so a hand-off would only add to a
    single post's latency."""
    results: list = []
    waiting: deque[tuple[list[CheckedPost], Future | None]] = deque()
    for chunk in in_batches(checked, batch_size):
        images, prepared = [post.image for post in chunk], [post.prepared for post in chunk]
        waiting.append((chunk, encoding_pool().submit(encode, images, prepared) if encode else None))
        if len(waiting) > 1:
            results += _tagged(tag, *waiting.popleft())
    while waiting:
        results += _tagged(tag, *waiting.popleft())
    return results


def _tagged(tag: Callable, chunk: list[CheckedPost], visual: Future | None) -> list:
    return tag(chunk, None if visual is None else visual.result())
