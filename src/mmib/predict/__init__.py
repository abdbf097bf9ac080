"""Prediction on new posts: the Extractor API, the tweet tokenizer, object detection and serving."""

from mmib.predict.extractor import Entity, Extractor, InputError, PostPrediction, Relation

__all__ = ["Entity", "Extractor", "InputError", "PostPrediction", "Relation"]
