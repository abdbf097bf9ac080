"""Training configuration: one YAML file (spaCy-style: everything in one place), flags override it."""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from mmib.errors import SettingError
from mmib.model.config import MMIBConfig

# Model settings as earlier runs recorded them, flat beside the training settings (train_config.json of runs
# written before the nesting); read into ``model`` by :meth:`TrainConfig.from_dict`.
MODEL_KEYS = {f.name for f in fields(MMIBConfig)}


@dataclass
class TrainConfig:
    """One training run, spaCy-style: everything in one YAML file, the model's settings nested under
    ``model:`` (an :class:`MMIBConfig`; its task, labels and sizes are filled in from the data and the
    encoders when the run starts). Command-line flags override any key, dotted for nested ones
    (``--model.beta1 0.2``)."""

    data: str = ""  # dataset folder (see mmib.data.discover)
    output_dir: str = "runs/mmib"
    images: str | None = None  # image root; default: the dataset folder when it holds a layout
    feature_cache: str | None = None  # default: $MMIB_HOME/features (~/.cache/mmib/features)
    # caption file, '<IMGID>.jpg :<caption>' per line (read when model.image_source is captions)
    captions: str | None = None
    model: MMIBConfig = field(default_factory=MMIBConfig)
    # A linear KL warm-up over this share of the steps (beta_i ramps from 0)
    kl_warmup_ratio: float = 0.0
    # Optimisation (paper: AdamW, lr 3e-5, weight decay 0.01, batch 8)
    epochs: int = 10
    batch_size: int = 8  # the effective batch: posts per optimiser step, whatever the hardware
    # Evaluation runs posts shortest first (batches pad to their own length) and without autograd, so a
    # larger batch costs no padding: 64 (was 32) ran MNRE dev in fewer, fuller matrix products.
    eval_batch_size: int = 64
    # Training batches bucketed by length (batching.BUCKET_WINDOW): each pads to posts of its own length.
    # Runs recorded before the setting trained with plain shuffled batches (read back as False).
    bucket_by_length: bool = True
    learning_rate: float = 3e-5  # the pretrained text encoder
    # New, randomly initialised layers (W_v, APEnc encoders, fusion, discriminator, CRF/classifier) learn
    # at head_learning_rate: at 3e-5 a fresh CRF transition matrix hardly moves in the few epochs a CPU
    # run affords (the HVPNeT family uses a larger rate for its CRF for the same reason).
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # linear warm-up over this share of steps, then linear decay
    # The decay ends at final_lr_ratio x the peak rate when the epoch budget ends, so that early stopping,
    # not a learning rate run down to zero, decides when training ends (0: decay to zero, as before).
    final_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    patience: int = 3  # stop after this many epochs without a better dev F1 (0: never)
    seed: int = 13
    max_train_samples: int | None = None  # first N training records (smoke runs only)
    stop_after_epochs: int | None = None  # end this process after N epochs; --resume continues
    threads: int | None = None  # torch intra-op threads; default: all cores
    # Hardware (training/hardware.py): batch_size above is the effective batch on any of them
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, mps
    precision: str = "no"  # no (fp32), bf16, fp16 (GPU only)
    grad_accum: int = 1  # micro-batches per optimiser step and process (memory, not the recipe)
    dist_timeout_minutes: float = 10.0  # several processes: how long one waits for a stalled peer, then fails
    log_every: int = 50  # without a terminal (logs), a progress line every N training steps (0: none)
    # Also score the test split after every epoch into metrics.jsonl ("test_each_epoch"): never read for
    # selection or early stopping (dev alone decides), only to measure what selecting on test, as the
    # released MNER code does, would add (benchmarks/train_eval.py: protocol_gap).
    score_test_each_epoch: bool = False

    def __post_init__(self) -> None:
        """Numbers that cannot make a run are refused here, in one line, before anything is loaded."""
        checks = (
            ("epochs", self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("eval_batch_size", self.eval_batch_size >= 1, "at least 1"),
            ("grad_accum", self.grad_accum >= 1, "at least 1"),
            ("patience", self.patience >= 0, "0 (never stop early) or more"),
            ("learning_rate", self.learning_rate > 0, "above 0"),
            ("head_learning_rate", self.head_learning_rate > 0, "above 0"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
            ("final_lr_ratio", 0 <= self.final_lr_ratio <= 1, "in [0, 1]"),
            ("kl_warmup_ratio", 0 <= self.kl_warmup_ratio <= 1, "in [0, 1]"),
            ("max_grad_norm", self.max_grad_norm > 0, "above 0"),
            (
                "max_train_samples",
                self.max_train_samples is None or self.max_train_samples >= 1,
                "at least 1",
            ),
            (
                "stop_after_epochs",
                self.stop_after_epochs is None or self.stop_after_epochs >= 0,
                "0 or more",
            ),
            ("threads", self.threads is None or self.threads >= 1, "at least 1"),
            ("dist_timeout_minutes", self.dist_timeout_minutes > 0, "above 0"),
            ("log_every", self.log_every >= 0, "0 (no lines) or more"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise SettingError(f"{name} must be {expected}, not {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict, where: str = "") -> TrainConfig:
        """Nested (``{"model": {...}}``) or flat (model keys beside the others, as runs recorded before the
        nesting, and as :meth:`create` takes them) settings. Unknown keys are an error naming them."""
        values = dict(values)
        model = dict(values.pop("model", None) or {})
        model.update({k: values.pop(k) for k in list(values) if k in MODEL_KEYS})
        if model.get("task", "") is None:  # flat configs said "task: null" for "from the data"
            model["task"] = ""
        prefix = f"{where}: " if where else ""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known) + sorted(f"model.{k}" for k in set(model) - MODEL_KEYS)
        if unknown:
            raise SettingError(
                f"{prefix}unknown keys {unknown}; known keys: {sorted(known - {'model'})} and model.<key> for "
                f"{sorted(MODEL_KEYS)}"
            )
        return cls(
            **as_typed(cls, values, prefix),
            model=MMIBConfig(**as_typed(MMIBConfig, model, prefix + "model.")),
        )

    @classmethod
    def create(cls, **values) -> TrainConfig:
        """Keyword form of :meth:`from_dict`: ``TrainConfig.create(data=..., text_only=True, epochs=2)``."""
        return cls.from_dict(values)

    @classmethod
    def from_yaml(cls, path: Path | str) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise SettingError(f"{path}: expected a mapping of settings, found {type(raw).__name__}")
        return cls.from_dict(raw, where=str(path))

    def with_overrides(self, **overrides) -> TrainConfig:
        """A copy with the given settings replaced, model keys by their bare name (``beta1=0.2``); None
        leaves a setting as it is."""
        top_level = {f.name for f in fields(self)}
        return self.with_dotted(
            {
                f"model.{key}" if key in MODEL_KEYS and key not in top_level else key: value
                for key, value in overrides.items()
                if value is not None
            }
        )

    def with_dotted(self, assignments: dict[str, object]) -> TrainConfig:
        """A copy with ``{"model.beta1": 0.2, "epochs": 3}``-style settings replaced."""
        values = self.to_dict()
        for key, value in assignments.items():
            section, _, name = key.rpartition(".")
            if section not in ("", "model"):
                raise SettingError(f"--{key}: only model.<key> settings are nested")
            (values["model"] if section == "model" else values)[name] = value
        return TrainConfig.from_dict(values)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_absolute_paths(self) -> TrainConfig:
        """A copy whose file and folder settings are absolute: what a run records, so that it can be
        evaluated, resumed or analysed from any working directory. Hub names stay as they are."""

        def absolute(value: str | None) -> str | None:
            return str(Path(value).expanduser().resolve()) if value else value

        paths = ("data", "output_dir", "images", "captions", "feature_cache")
        return replace(self, **{name: absolute(getattr(self, name)) for name in paths})


def parse_dotted(arguments: list[str]) -> dict[str, object]:
    """``["--model.beta1", "0.2", "--epochs=3"]`` -> ``{"model.beta1": 0.2, "epochs": 3}``; values are read as
    YAML scalars (numbers, true/false, null, text)."""
    found: dict[str, object] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or len(argument) == 2:
            raise SettingError(
                f"unexpected argument {argument!r} (settings are --key VALUE or --model.key VALUE)"
            )
        key, equals, value = argument[2:].partition("=")
        if not equals:
            if index + 1 >= len(arguments):
                raise SettingError(f"--{key} needs a value")
            index += 1
            value = arguments[index]
        found[key.replace("-", "_")] = yaml.safe_load(value) if value != "" else ""
        index += 1
    return found


def as_typed(settings_class: type, values: dict, prefix: str = "") -> dict:
    """``values`` checked against the settings' declared types, text read as numbers where one belongs.

    Settings come from YAML files and ``--KEY VALUE`` alike, read by PyYAML, which follows YAML 1.1: ``3e-5``
    (no dot) is text there. A value of the wrong kind (``--epochs true``, ``--model.use_alignment maybe``)
    would otherwise pass silently (a bool is an int; any text is truthy) or fail deep in a check with a
    TypeError; here it is one line naming the setting."""
    hints = typing.get_type_hints(settings_class)
    checked = dict(values)
    for key, value in values.items():
        kinds = _kinds(hints.get(key))
        if kinds is None or (value is None and type(None) in kinds):
            continue
        checked[key] = _as_kind(value, kinds, f"{prefix}{key}")
    return checked


def _kinds(hint) -> set | None:
    """The plain types a setting accepts (``int | None`` -> {int, NoneType}); None for containers."""
    if hint is None:
        return None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return set(typing.get_args(hint))
    return {hint} if typing.get_origin(hint) is None else None


def _as_kind(value, kinds: set, name: str):
    if bool in kinds:
        if isinstance(value, bool):
            return value
        raise SettingError(f"{name} must be true or false, not {value!r}")
    if float in kinds or int in kinds:
        number = "a number" if float in kinds else "a whole number"
        try:
            if isinstance(value, bool):
                raise ValueError
            if float in kinds:
                return float(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise SettingError(f"{name} must be {number}, not {value!r}") from None
    if str in kinds:
        if isinstance(value, bool) or value is None:
            raise SettingError(f"{name} must be text, not {value!r}")
        return str(value)
    return value
