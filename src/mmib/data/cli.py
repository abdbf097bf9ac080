"""``mmib data``: stats, check and synth (read, validate, summarise, generate a dataset)."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mmib.cli_support import App, refuse
from mmib.data.discover import load_dataset

data_app = App(
    help="Datasets: stats, check, synth (read, validate, summarise, generate).", no_args_is_help=True
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class SynthTask(StrEnum):
    ner = "ner"
    re = "re"


class SynthSize(StrEnum):
    small = "small"
    full = "full"


PathArg = Annotated[Path, typer.Argument(help="Dataset folder (split files inside or in txt/) or one file.")]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="Image root (twitter20xx_images/ or img_org/ layouts); default: the dataset folder if it holds one.",
    ),
]
LenientOpt = Annotated[
    bool, typer.Option("--lenient", help="Skip malformed records and report them instead of stopping.")
]
TypesOpt = Annotated[
    str | None,
    typer.Option(
        "--types",
        help="Comma-separated entity types to accept (default: Twitter types for IMGID files, any for plain CoNLL).",
    ),
]


def _load(path: Path, lenient: bool, images: Path | None, types: str | None):
    entity_types = {t.strip() for t in types.split(",") if t.strip()} if types else None
    try:
        return load_dataset(path, lenient=lenient, entity_types=entity_types, image_root=images)
    except UnicodeDecodeError as error:  # not among the user errors everywhere: here it is the file's
        raise refuse(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


@data_app.command("stats")
def data_stats(
    path: PathArg,
    images: ImagesOpt = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text table or JSON.")
    ] = OutputFormat.text,
    lenient: LenientOpt = False,
    types: TypesOpt = None,
) -> None:
    """Per split: posts, tokens, entities per type (NER) or instances, images, relations (MRE), and
    image/crop files found, missing and unreadable when an image root is known."""
    from mmib.data.stats import dataset_stats, format_stats

    dataset = _load(path, lenient, images, types)
    stats = dataset_stats(dataset, progress=output_format is OutputFormat.text and sys.stderr.isatty())
    typer.echo(json.dumps(stats, indent=2) if output_format is OutputFormat.json else format_stats(stats))


@data_app.command("check")
def data_check(
    path: PathArg,
    images: ImagesOpt = None,
    lenient: LenientOpt = False,
    types: TypesOpt = None,
) -> None:
    """Validate a dataset: every record parses, and every image and crop is found and decodes.

    Exits 0 when the text is well-formed (missing images and crops are reported, not fatal: the model
    masks them), 1 when lenient reading skipped records or an image file is unreadable, 2 on a format
    error in strict mode.
    """
    from mmib.data.stats import dataset_stats, format_stats

    dataset = _load(path, lenient, images, types)
    stats = dataset_stats(dataset, progress=sys.stderr.isatty())
    typer.echo(format_stats(stats))
    problems = []
    for split, split_stats in stats["splits"].items():
        if not dataset.splits[split]:
            problems.append(f"{split}: {dataset.files[split]} holds no records")
        if split_stats["skipped_records"]:
            problems.append(f"{split}: {len(split_stats['skipped_records'])} malformed record(s) skipped")
        files = split_stats.get("image_files")
        if files and (files["images_unreadable"] or files["crops_unreadable"]):
            problems.append(
                f"{split}: {files['images_unreadable']} unreadable image(s), {files['crops_unreadable']} unreadable crop(s)"
            )
        for message in split_stats.get("image_problems", [])[:5]:
            typer.echo(f"  {split}: {message}")
        if files and (files["images_missing"] or files["crops_missing"]):
            typer.echo(
                f"  {split}: {files['images_missing']} image(s) and {files['crops_missing']} listed crop(s) "
                "absent on disk; the model sees them as masked, never replaced"
            )
    if dataset.image_root is None:
        typer.echo("  no image root given or found: text checked only")
    if problems:
        for problem in problems:
            typer.secho(f"problem: {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.secho("ok: every record is well-formed", fg=typer.colors.GREEN)


@data_app.command("synth")
def data_synth(
    task: Annotated[SynthTask, typer.Option("--task", help="ner (Twitter layout) or re (MNRE layout).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    size: Annotated[
        SynthSize, typer.Option("--size", help="small (minutes to train) or full (benchmark size).")
    ] = SynthSize.small,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 13,
    workers: Annotated[int, typer.Option("--workers", help="Processes drawing images.")] = 2,
) -> None:
    """Generate the synthetic multimodal benchmark where the image decides a known share of answers."""
    from mmib.data.synth import SynthConfig, generate

    start = time.perf_counter()
    summary = generate(
        SynthConfig(task=task.value, size=size.value, seed=seed, workers=workers),
        out,
        progress=sys.stderr.isatty(),
    )
    typer.echo(f"wrote {out} in {time.perf_counter() - start:.1f}s: {summary['split_sizes']}")
    for split, oracle in summary["oracles"].items():
        typer.echo(
            f"  {split:<5} categories {summary['categories'][split]}  images absent "
            f"{summary['images_absent'][split]}  text-only oracle F1 {oracle['text_only_f1']:.4f}  "
            f"multimodal oracle F1 {oracle['multimodal_f1']:.4f}"
        )
