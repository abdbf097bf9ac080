"""Prediction on new posts: the Extractor API, the tweet tokenizer, object detection and serving."""

import sys

from mmib.devices import passive_openmp

if "torch" not in sys.modules:  # OpenMP reads its wait policy when torch loads (mmib.devices.passive_openmp)
    passive_openmp()

from mmib.predict.extractor import Extractor
from mmib.predict.inputs import InputError
from mmib.predict.results import PostPrediction, Relation
from mmib.spans import Span

__all__ = ["Extractor", "InputError", "PostPrediction", "Relation", "Span"]
