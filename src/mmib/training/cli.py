"""``mmib train``: every setting of :class:`TrainConfig` and of its model (:class:`MMIBConfig`) is an option,
derived from the dataclass fields (name, type and default), as spaCy derives its overrides from the config.

    mmib train configs/twitter2017.yaml --epochs 4 --model.beta1 0.2 --warmup-ratio 0.2

A training setting is ``--KEY VALUE`` (``--batch-size 16`` or ``--batch_size 16``), a model setting
``--model.KEY VALUE`` (``--model.num_heads 4``; model keys that name no training setting also bare:
``--beta1 0.2``). Values are read as YAML scalars and checked against the field's type, as in a config file.
A few named shortcuts stay for the common variants (``--text-only``, ``--no-rr``, ``--lr`` ...).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mmib.cli_support import without_option
from mmib.errors import SettingError
from mmib.model.config import MMIBConfig
from mmib.training.config import TrainConfig

# Model settings the run fills in from the data and the encoders: never options.
FROM_THE_RUN = {"labels", "image_feature_dim", "hidden_size"}
# Shortcuts: name -> (setting, value when the flag is given, help)
FLAGS = {
    "text_only": ("model.text_only", True, "Encoder + head, no image branch (the text-only baselines)."),
    "no_rr": ("model.use_refinement", False, "Without the refinement regulariser L_rr."),
    "no_ar": ("model.use_alignment", False, "Without the alignment regulariser L_ar."),
    "caption_pair": ("model.caption_pair", True, "With --text-only: the caption as a second text segment."),
}
ALIASES = {  # shortcut -> the setting it names
    "out": "output_dir",
    "lr": "learning_rate",
    "head_lr": "head_learning_rate",
    "kl_warmup": "kl_warmup_ratio",
}


def _kind(hint) -> str:
    """How a field's type reads in the help: INT, FLOAT, TEXT, BOOL, with ``|NULL`` where None is allowed."""
    arguments = typing.get_args(hint) or (hint,)
    names = {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL", type(None): "NULL"}
    return "|".join(names.get(argument, "VALUE") for argument in arguments)


def _option_names(prefix: str, name: str) -> list[str]:
    spelled = {name.replace("_", "-"), name}
    return [f"--{prefix}{spelling}" for spelling in sorted(spelled, key=lambda s: "_" in s)]


def setting_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per setting, typed as text (read as YAML, then checked as a config file is), with
    the field's type and default in its help."""
    top_level = {f.name for f in fields(TrainConfig)}
    parameters = []
    for prefix, settings in (("", TrainConfig), ("model.", MMIBConfig)):
        hints, defaults = typing.get_type_hints(settings), settings()
        for field in fields(settings):
            if field.name == "model" or field.name in FROM_THE_RUN:
                continue
            names = _option_names(prefix, field.name)
            bare = prefix and field.name not in top_level and field.name not in FLAGS
            if bare and hints[field.name] is not bool:  # --beta1 beside --model.beta1
                names += _option_names("", field.name)
            kind, default = _kind(hints[field.name]), getattr(defaults, field.name)
            where = "Model" if prefix else "Training"
            help_text = f"{where} setting {prefix}{field.name} ({kind.lower()}; default {default!r})."
            option = typer.Option(*names, metavar=kind, help=help_text, show_default=False)
            parameters.append(
                inspect.Parameter(
                    f"{prefix.rstrip('.')}__{field.name}" if prefix else field.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[str | None, option],
                )
            )
    return parameters


def assignments(given: dict[str, str | None]) -> dict[str, object]:
    """The derived options the user gave, as ``{"model.beta1": 0.2, "epochs": 3}`` (YAML scalars)."""
    found = {}
    for parameter, text in given.items():
        if text is not None:
            key = parameter.replace("model__", "model.", 1)
            found[key] = yaml.safe_load(text) if text != "" else ""
    return found


def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config; options override it.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a run already in the output folder.")
    ] = False,
    processes: Annotated[
        int, typer.Option("--processes", help="Train with N processes (torchrun); 1 trains in this process.")
    ] = 1,
    text_only: Annotated[bool, typer.Option("--text-only", help=FLAGS["text_only"][2])] = False,
    no_rr: Annotated[bool, typer.Option("--no-rr", help=FLAGS["no_rr"][2])] = False,
    no_ar: Annotated[bool, typer.Option("--no-ar", help=FLAGS["no_ar"][2])] = False,
    caption_pair: Annotated[bool, typer.Option("--caption-pair", help=FLAGS["caption_pair"][2])] = False,
    entity_markers: Annotated[
        bool | None,
        typer.Option(
            "--entity-markers/--no-entity-markers",
            help="MRE: mark head and tail in the text, one encoding per pair (model.entity_markers).",
        ),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="The run folder (output_dir).")] = None,
    lr: Annotated[str | None, typer.Option("--lr", help="The text encoder's rate (learning_rate).")] = None,
    head_lr: Annotated[
        str | None, typer.Option("--head-lr", help="The new layers' rate (head_learning_rate).")
    ] = None,
    kl_warmup: Annotated[
        str | None, typer.Option("--kl-warmup", help="Share of the steps beta ramps over (kl_warmup_ratio).")
    ] = None,
    **settings: str | None,
) -> None:
    """Train MMIB (or an ablation) with dev evaluation each epoch and the best-dev checkpoint kept.

    Options override the YAML config; a setting neither gives keeps its default. With --captions FILE a model
    with an image branch reads the captions as its image side (not the paper's pixel setting)."""
    from mmib.training import Trainer
    from mmib.training.hardware import in_launched_process, launch_command

    if processes > 1 and not in_launched_process():
        raise typer.Exit(
            subprocess.call(launch_command(processes, without_option(sys.argv[1:], "--processes")))
        )
    shortcuts = {"out": out, "lr": lr, "head_lr": head_lr, "kl_warmup": kl_warmup}
    flags = {"text_only": text_only, "no_rr": no_rr, "no_ar": no_ar, "caption_pair": caption_pair}
    settings_ = run_settings(config, resume, assignments(settings), shortcuts, flags, entity_markers)
    summary = Trainer(settings_, progress=sys.stderr.isatty(), overwrite=overwrite).fit(
        resume=resume is not None
    )
    typer.echo(json.dumps(summary, indent=2))


def run_settings(
    config: Path | None,
    resume: Path | None,
    chosen: dict[str, object],
    shortcuts: dict[str, str | None],
    flags: dict[str, bool],
    entity_markers: bool | None,
) -> TrainConfig:
    """The run's settings: the base (:func:`_base`) with the derived options, shortcuts and flags given."""
    chosen = dict(chosen)
    chosen.update(
        {ALIASES[name]: yaml.safe_load(text) for name, text in shortcuts.items() if text is not None}
    )
    chosen.update({FLAGS[name][0]: FLAGS[name][1] for name, given in flags.items() if given})
    if entity_markers is not None:
        chosen["model.entity_markers"] = entity_markers
    settings = _base(config, resume).with_dotted(chosen)
    if chosen.get("captions") is not None and not settings.model.text_only:
        settings = settings.with_dotted({"model.image_source": "captions"})  # captions are its image side
    if resume is not None:
        settings = settings.with_dotted({"output_dir": str(resume)})
    if not settings.data:
        raise SettingError("no dataset: give --data or a config with `data:`")
    return settings


def _base(config: Path | None, resume: Path | None) -> TrainConfig:
    """What the options override: the run's own settings (--resume), a YAML file, or the defaults."""
    if resume is not None:
        from mmib.model.run_folder import RunFolder

        base = TrainConfig.from_dict(RunFolder(resume).require(training_config=True).read_train_config())
        base.stop_after_epochs = None  # the interrupted process's limit does not carry over
        return base
    return TrainConfig.from_yaml(config) if config else TrainConfig()


# Typer reads a command's options from its signature: the fixed ones above, then one per setting.
_fixed = [
    p for p in inspect.signature(train, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD
]
train.__signature__ = inspect.Signature([*_fixed, *setting_parameters()])
