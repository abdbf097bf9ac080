"""Training and evaluation: the fourth stage of the data flow."""

from mmib.training.config import TrainConfig

__all__ = ["TrainConfig", "Trainer"]


def __getattr__(name: str):
    # Lazy, so that the CLI (which reads TrainConfig's fields for `mmib train`'s options) starts without torch.
    if name == "Trainer":
        from mmib.training.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'mmib.training' has no attribute {name!r}")
