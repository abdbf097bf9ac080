"""Training and evaluation: the fourth stage of the data flow."""

from mmib.training.config import TrainConfig
from mmib.training.trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
