"""Training curves of one or more runs, from the ``metrics.jsonl`` each run writes (one line per epoch).

Why this exists beside the ablation table: the table compares best-dev checkpoints, which hides *how fast*
a variant learns and whether a regulariser's loss part (eq. 20-21 for L_rr, eq. 24-26 for L_ar) moves at
all during training; the per-epoch curves show both.

Runs are grouped by their parent folder (one colour per variant, e.g. ``runs/bench/synth-re-full-mmib``),
with one line per seed folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mmib.data.synth.ceiling import DEFAULT_POSTS, ceiling_of_dataset
from mmib.errors import SettingError
from mmib.model.run_folder import RunFolder

LOSS_PARTS = ("task", "refinement", "alignment")  # eq. 27: L = L_task + L_rr + L_ar


@dataclass
class Curve:
    group: str  # the variant: the run folder's parent name
    label: str  # the run folder's own name (e.g. seed-2)
    epochs: list[int]
    dev_f1: list[float]  # (epochs,) in [0, 1]
    # part -> (epochs,) mean training loss; parts the run does not log are absent
    losses: dict[str, list[float]]
    # the lowest L_ar any discriminator can reach on the run's data (synthetic benchmarks only, whose
    # latents are known: data/synth/ceiling.py); None for real data
    alignment_ceiling: float | None = None


def read_curve(run_dir: Path, ceiling_posts: int = DEFAULT_POSTS) -> Curve:
    """One run's per-epoch dev F1 and training losses. Raises ``ValueError`` naming file and line on bad input."""
    path = RunFolder(run_dir).metrics
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {path.name} (is {run_dir} a folder written by mmib train?)")
    epochs, dev_f1, losses = [], [], {part: [] for part in LOSS_PARTS}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            epochs.append(int(record["epoch"]))
            dev_f1.append(float(record["dev"]["f1"]))
            for part in LOSS_PARTS:
                losses[part].append(float(record["train"].get(part, float("nan"))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise SettingError(f"{path}:{number}: not an epoch record ({error!r})") from error
    if not epochs:
        raise SettingError(f"{path}: no epoch finished yet")
    kept = {part: values for part, values in losses.items() if any(v == v for v in values)}  # drop all-NaN
    ceiling = _alignment_ceiling(run_dir, ceiling_posts) if "alignment" in kept else None
    return Curve(run_dir.resolve().parent.name, run_dir.name, epochs, dev_f1, kept, ceiling)


def _alignment_ceiling(run_dir: Path, posts: int) -> float | None:
    run = RunFolder(run_dir)
    if not run.train_config.is_file():
        return None
    data = run.read_train_config().get("data")
    found = ceiling_of_dataset(data, posts) if data else None
    return found.bce if found else None


def curves_markdown(curves: list[Curve]) -> str:
    """Dev F1 (x100) per epoch, one row per run; an epoch a run did not reach is left empty. Where a run
    has L_ar, its last epoch's value stands beside the data's ceiling and the distance between them."""
    epochs = sorted({epoch for curve in curves for epoch in curve.epochs})
    extra = ["L_ar (last epoch)", "L_ar ceiling", "above ceiling"]
    with_alignment = any("alignment" in curve.losses for curve in curves)
    header = [f"epoch {e}" for e in epochs] + (extra if with_alignment else [])
    lines = ["| run | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for curve in curves:
        by_epoch = dict(zip(curve.epochs, curve.dev_f1, strict=True))
        cells = [f"{100 * by_epoch[e]:.2f}" if e in by_epoch else "" for e in epochs]
        if with_alignment:
            cells += _alignment_cells(curve)
        lines.append(f"| {curve.group}/{curve.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _alignment_cells(curve: Curve) -> list[str]:
    last = curve.losses.get("alignment", [float("nan")])[-1]
    if last != last:
        return ["", "", ""]
    if curve.alignment_ceiling is None:
        return [f"{last:.4f}", "unknown (real data)", ""]
    return [f"{last:.4f}", f"{curve.alignment_ceiling:.4f}", f"{last - curve.alignment_ceiling:+.4f}"]


def plot_curves(curves: list[Curve], path: Path) -> None:
    """Left: dev F1 per epoch; right: each training-loss part per epoch (log scale). Colour = variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(c.group for c in curves))
    colours = {group: plt.get_cmap("tab10")(i % 10) for i, group in enumerate(groups)}
    styles = ["-", "--", ":", "-."]
    fig, (f1_axis, loss_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    seen: dict[str, int] = {}
    for curve in curves:
        style = styles[seen.setdefault(curve.group, 0) % len(styles)]
        seen[curve.group] += 1
        f1_axis.plot(
            curve.epochs,
            [100 * f for f in curve.dev_f1],
            style,
            marker="o",
            color=colours[curve.group],
            label=f"{curve.group}/{curve.label}",
        )
        for marker, part in zip("sv^", LOSS_PARTS, strict=True):
            if part in curve.losses:
                loss_axis.plot(
                    curve.epochs, curve.losses[part], style, marker=marker, color=colours[curve.group]
                )
    for ceiling in sorted({c.alignment_ceiling for c in curves if c.alignment_ceiling is not None}):
        loss_axis.axhline(ceiling, color="grey", linestyle=":", linewidth=1)
        loss_axis.annotate(f"L_ar ceiling {ceiling:.3f}", (0.01, ceiling), xycoords=("axes fraction", "data"),
                           fontsize=7, color="grey", va="bottom")  # fmt: skip
    f1_axis.set(xlabel="epoch", ylabel="dev F1", title="dev F1 per epoch")
    f1_axis.legend(fontsize=7)
    loss_axis.set(
        xlabel="epoch",
        ylabel="mean training loss",
        yscale="log",
        title="training loss parts: task (square), L_rr (down), L_ar (up)",
    )
    for axis in (f1_axis, loss_axis):
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
