"""``mmib analyze``: Section V of the paper on trained runs (image use, contributions, t-SNE, errors, curves)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mmib.cli_support import App

analyze_app = App(
    help="Analysis of trained runs: image-use, contributions, tsne, errors (Section V of the paper).",
    no_args_is_help=True,
)
RunArg = Annotated[Path, typer.Argument(help="Run folder written by mmib train.")]


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
