"""The one road between posts and tensors, used by training, evaluation, analysis, prediction and serving.

- :mod:`~mmib.processing.inputs`: :class:`PostInput` / :class:`PairInput`, what a post brings to a batch.
- :mod:`~mmib.processing.task`: the :class:`Task` strategy (:class:`NerTask`, :class:`ReTask`): text rows,
  gold tensors, predictions back to records, scoring and prediction files.
- :mod:`~mmib.processing.image_side`: the :class:`ImageSide` strategy over benchmark posts (none, cached CNN
  features, caption states, the caption pair), chosen once from the model config.
- :mod:`~mmib.processing.live_images`: the same choice at prediction time (a user's image or caption).
- :mod:`~mmib.processing.processor`: :class:`MMIBProcessor`, posts + image side -> ``Batch``, the only
  place a batch is built.
"""

from mmib.processing.image_side import ImageSide, PostImages, cached_image_side, feature_width
from mmib.processing.inputs import PairInput, PostInput
from mmib.processing.processor import MMIBProcessor
from mmib.processing.task import NerTask, ReTask, Task, task_for

__all__ = [
    "ImageSide",
    "MMIBProcessor",
    "NerTask",
    "PairInput",
    "PostImages",
    "PostInput",
    "ReTask",
    "Task",
    "cached_image_side",
    "feature_width",
    "task_for",
]
