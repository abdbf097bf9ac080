"""Prediction on new posts: the Extractor API, the tweet tokenizer, object detection and serving."""

import sys

from mmib.devices import passive_openmp

if "torch" not in sys.modules:  # OpenMP reads its wait policy when torch loads (mmib.devices.passive_openmp)
    passive_openmp()

from mmib.predict.extractor import Entity, Extractor, InputError, PostPrediction, Relation

__all__ = ["Entity", "Extractor", "InputError", "PostPrediction", "Relation"]
