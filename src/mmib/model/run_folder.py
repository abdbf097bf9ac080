"""The run folder: the one owner of its on-disk layout, and saving/loading a trained MMIB model.

Training writes a run folder, evaluation and prediction read it; every file name is written here and
nowhere else::

    model_config.json          MMIBConfig (task, labels, encoder names, variant, sizes)
    train_config.json          the training run's settings (mmib.training.TrainConfig)
    text_encoder/              the encoder's HF config and tokenizer files (no hub needed to reload)
    best/model.safetensors     weights of the best dev epoch
    last.pt                    weights, optimiser, scheduler and RNG states of the last epoch (--resume)
    metrics.jsonl              one line per epoch
    summary.json               best epoch, timings, hardware, whether the run finished
    scores_<split>.json        mmib evaluate's scores
    predictions/<split>.conll  (MNER) or .jsonl (MRE): mmib evaluate's predictions
    onnx/text_encoder.onnx     mmib export --format onnx: the fine-tuned text encoder
    onnx/image_encoder.onnx    ... and the folded CNN (pixel runs)

This module owns paths and small files only; the model's own loading and saving (``MMIBModel.from_pretrained``,
:func:`mmib.model.mmib.build_model`) sits beside the model, not in the training package, so that prediction
loads a run without importing any training code (as a Hugging Face model's ``from_pretrained`` needs no
trainer).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from mmib.errors import SettingError
from mmib.model.config import SAVED_BEFORE_THE_SETTING

# Training settings added after runs had been recorded, with the value those runs trained with (a run's
# train_config.json without the key); the model's own are in model/config.py.
TRAIN_SAVED_BEFORE_THE_SETTING = {"bucket_by_length": False}


class RunFolder:
    """Paths and small reads/writes of one run folder."""

    MODEL_CONFIG = "model_config.json"
    TRAIN_CONFIG = "train_config.json"
    TEXT_ENCODER = "text_encoder"
    BEST_WEIGHTS = "best/model.safetensors"
    LAST_STATE = "last.pt"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    ONNX_FOLDER = "onnx"
    ONNX_TEXT_ENCODER = "text_encoder.onnx"
    ONNX_IMAGE_ENCODER = "image_encoder.onnx"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    # -- paths --------------------------------------------------------------------------------------

    @property
    def model_config(self) -> Path:
        return self.path / self.MODEL_CONFIG

    @property
    def train_config(self) -> Path:
        return self.path / self.TRAIN_CONFIG

    @property
    def text_encoder(self) -> Path:
        return self.path / self.TEXT_ENCODER

    @property
    def best_weights(self) -> Path:
        return self.path / self.BEST_WEIGHTS

    @property
    def last_state(self) -> Path:
        return self.path / self.LAST_STATE

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def onnx_folder(self) -> Path:
        return self.path / self.ONNX_FOLDER

    @property
    def onnx_text_encoder(self) -> Path:
        return self.onnx_folder / self.ONNX_TEXT_ENCODER

    @property
    def onnx_image_encoder(self) -> Path:
        return self.onnx_folder / self.ONNX_IMAGE_ENCODER

    def scores(self, split: str) -> Path:
        return self.path / f"scores_{split}.json"

    def predictions(self, split: str, task) -> Path:
        """The prediction file of a split; ``task`` (a :class:`mmib.processing.Task`) names its suffix."""
        return self.path / "predictions" / f"{split}.{task.prediction_suffix}"

    # -- checks and small files ---------------------------------------------------------------------

    def require(self, training_config: bool = False) -> RunFolder:
        """This folder, or a FileNotFoundError that says what is missing."""
        needed = [self.MODEL_CONFIG, *([self.TRAIN_CONFIG] if training_config else [])]
        missing = [name for name in needed if not (self.path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.path}: not a run folder (no {' / '.join(missing)})")
        return self

    def read_train_config(self) -> dict:
        """The run's recorded settings; model settings added since the run was recorded take the value it
        trained with (``SAVED_BEFORE_THE_SETTING``), as :meth:`MMIBConfig.load` reads them."""
        values = {
            **TRAIN_SAVED_BEFORE_THE_SETTING,
            **json.loads(self.train_config.read_text(encoding="utf-8")),
        }
        if isinstance(values.get("model"), dict):
            values["model"] = {**SAVED_BEFORE_THE_SETTING, **values["model"]}
        else:  # flat settings, recorded before the model's settings were nested
            values = {**SAVED_BEFORE_THE_SETTING, **values}
        return values

    def write_json(self, path: Path, value: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")

    def read_metrics(self) -> list[dict]:
        return [json.loads(line) for line in self.metrics.read_text(encoding="utf-8").splitlines() if line]

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop the metrics lines of epochs after ``epoch`` (logged before a kill, but not in ``last.pt``), so
        that a resumed run logs every epoch exactly once."""
        kept = [record for record in self.read_metrics() if record["epoch"] <= epoch]
        temporary = self.metrics.with_name(self.METRICS + ".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        temporary.replace(self.metrics)

    def append_metrics(self, record: dict) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- the resumable training state ---------------------------------------------------------------

    def save_last(self, payload: dict) -> None:
        temporary = self.last_state.with_name(self.LAST_STATE + ".tmp")
        torch.save(payload, temporary)
        temporary.replace(self.last_state)  # atomic: a kill mid-save leaves the old file

    def load_last(self, needed: tuple[str, ...] = ("model",)) -> dict:
        """``last.pt``; a truncated, tampered or foreign file, or one without the ``needed`` entries, is a
        one-line ValueError naming it."""
        unreadable = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError)
        try:
            payload = torch.load(self.last_state, map_location="cpu", weights_only=True)
        except unreadable as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SettingError(
                f"{self.last_state}: cannot be read as an mmib checkpoint ({first})"
            ) from error
        missing = [key for key in needed if not isinstance(payload, dict) or key not in payload]
        if missing:
            raise SettingError(f"{self.last_state}: not an mmib checkpoint (no {', '.join(missing)} in it)")
        return payload
