"""Contribution scores of Section V-B (Fig. 3): how much each token and each image region feeds Z.

For one post, A^T = X^T (Z^T)^T is (n+2) x (n+2) and A^V = X^V (Z^V)^T is (m+1) x (m+1); the row sums
Â^T_i, Â^V_i say how much token i / region i contributes to the learned representation. The paper compares
MMIB with MMIB w/o L_rr; the heat map here puts both models' scores over the same tokens and regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from mmib.errors import SettingError
from mmib.model.mmib import Batch, MMIBModel


@dataclass
class Contributions:
    tokens: list[str]  # the post's words (without [CLS]/[SEP])
    text: list[float]  # Â^T per word
    regions: list[float]  # Â^V per present region: whole image, then crops
    label: str  # the model's name in the figure


@torch.no_grad()
def contribution_scores(model: MMIBModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Â^T (P, n+2) and Â^V (P, m+1) for a batch, with Z at its mean (inference); zeros at padding."""
    if model.config.text_only:
        raise SettingError("a text-only model has no Z^T/Z^V: contribution scores need an MMIB run")
    model.eval()
    text_states = model.text_encoder(batch.text)  # X^T (P, n+2, d)
    image_states = model.image_projection(batch.image_features) * batch.image_mask.unsqueeze(-1)  # X^V
    text_z = model.text_variational(text_states, batch.text.mask).z  # Z^T (P, n+2, d)
    image_z = model.image_variational(image_states, batch.image_mask).z  # Z^V (P, m+1, d)
    text_z = text_z * batch.text.mask.unsqueeze(-1)
    image_z = image_z * batch.image_mask.unsqueeze(-1)
    text_scores = (
        torch.einsum("pid,pjd->pij", text_states, text_z).sum(-1) * batch.text.mask
    )  # row sums of A^T
    image_scores = torch.einsum("pid,pjd->pij", image_states, image_z).sum(-1) * batch.image_mask
    return text_scores, image_scores


def post_contributions(model: MMIBModel, batch: Batch, words: list[str], label: str) -> Contributions:
    """Scores of the first post of ``batch`` (words are positions 1..n; position 0 is [CLS])."""
    text_scores, image_scores = contribution_scores(model, batch)
    regions = image_scores[0][batch.image_mask[0]].tolist()
    return Contributions(words, text_scores[0, 1 : len(words) + 1].tolist(), regions, label)


def plot_contributions(
    rows: list[Contributions], region_images: list[Image.Image], path: Path, title: str = ""
) -> None:
    """One row per model: the words as cells, then the image regions, coloured by normalised score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    colours = ["Reds", "Greens", "Blues", "Purples"]
    words = rows[0].tokens
    fig = plt.figure(figsize=(max(8.0, 0.75 * len(words) + 1.6 * len(region_images)), 1.9 * len(rows) + 0.6))
    for row_number, row in enumerate(rows):
        cmap = colormaps[colours[row_number % len(colours)]]
        text = _normalise(row.text)
        regions = _normalise(row.regions)
        axis = fig.add_axes((0.01, 1 - (row_number + 1) / len(rows) + 0.08, 0.98, 0.8 / len(rows)))
        axis.set_axis_off()
        axis.set_xlim(0, len(words) + 1.3 * len(region_images))
        axis.set_ylim(0, 1.4)
        axis.text(0, 1.3, f"{row.label}", fontsize=10, weight="bold", va="top")
        for index, (word, value) in enumerate(zip(words, text, strict=True)):
            axis.add_patch(plt.Rectangle((index, 0.35), 0.95, 0.5, color=cmap(0.15 + 0.8 * value)))
            axis.text(index + 0.47, 0.6, word, ha="center", va="center", fontsize=8, rotation=30)
        for index, (image, value) in enumerate(zip(region_images, regions, strict=False)):
            left = len(words) + 0.3 + 1.3 * index
            axis.imshow(image.resize((96, 96)), extent=(left, left + 1.0, 0.2, 1.0), aspect="auto")
            axis.add_patch(
                plt.Rectangle((left, 0.2), 1.0, 0.8, fill=False, lw=4, edgecolor=cmap(0.15 + 0.8 * value))
            )
            name = "image" if index == 0 else f"crop {index}"
            axis.text(left + 0.5, 0.05, f"{name}: {value:.2f}", ha="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10, y=0.995)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _normalise(values: list[float]) -> list[float]:
    """Min-max to [0, 1] within one modality of one model (the colour scale of each heat map row)."""
    if not values:
        return []
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.5 for v in values]


def run_contributions(
    run_dirs: list[Path],
    post: int | None,
    split: str = "test",
    text: str | None = None,
    image: Path | None = None,
) -> tuple[list[Contributions], list[Image.Image]]:
    """Scores of each run for one post: a post of the first run's dataset split, or a new text (+ image)."""
    from mmib.data.images import ImageStore, decode_image
    from mmib.training.evaluate_run import open_run_split

    rows, regions = [], []
    for run_dir in run_dirs:
        label = f"{Path(run_dir).parent.name}/{Path(run_dir).name}"
        if post is not None:
            opened = open_run_split(run_dir, split, progress=False)
            if not 0 <= post < opened.prepared.num_posts:
                raise SettingError(
                    f"--post {post} is outside the {split} split ({opened.prepared.num_posts} posts)"
                )
            batch = opened.collator(opened.prepared, [post])
            record = opened.prepared.records[opened.prepared.post_records[post][0]]
            words = record.tokens
            label = f"{label} ({opened.model.config.variant})"
            if not regions and opened.dataset.image_root is not None:
                store = ImageStore.discover(opened.dataset.image_root, split, opened.model.config.max_crops)
                paths = store.locate(record.image_id, record.index)
                mask = opened.prepared.image_mask[post].tolist()
                regions = [decode_image(p) for p, present in zip(paths, mask, strict=False) if present]
            rows.append(post_contributions(opened.model, batch, words, label))
        else:
            from mmib.encoders.detector import crop_regions
            from mmib.predict.extractor import Extractor
            from mmib.predict.inputs import check_text, open_image
            from mmib.processing import PostInput

            extractor = Extractor.load(run_dir)
            tokens = check_text(text or "")
            picture = open_image(image)
            features, mask, detections = extractor.image_side.inputs([picture])
            batch = extractor.batch([PostInput([t.text for t in tokens])], features, mask)
            if not regions and picture is not None:
                regions = [picture, *crop_regions(picture, detections[0], extractor.config.max_crops)]
            label = f"{label} ({extractor.config.variant})"
            rows.append(post_contributions(extractor.model, batch, [t.text for t in tokens], label))
    return rows, regions


def cue_region_share(run_dir: Path, split: str = "test") -> dict:
    """A number for Fig. 3's claim on the synthetic benchmark: over image-decided posts whose crops include
    the motif of the answer type and at least one other crop, how often the cue crop has the largest Â^V
    among the crops (chance: the mean share of cue crops among the crops)."""
    from mmib.analysis.image_use import read_meta
    from mmib.data.synth.lexicon import TYPE_CUES
    from mmib.training.batching import epoch_batches
    from mmib.training.evaluate_run import open_run_split

    opened = open_run_split(run_dir, split, progress=False)
    meta = {i: m for i, m in read_meta(Path(opened.train.data), split).items() if m["category"] == "image"}
    prepared, top, chance, counted = opened.prepared, 0, 0.0, 0
    for posts in epoch_batches(prepared, opened.train.eval_batch_size, seed=None):
        batch = opened.collator(prepared, posts)
        _, image_scores = contribution_scores(opened.model, batch)
        for row, post in enumerate(posts):
            item = meta.get(prepared.records[prepared.post_records[post][0]].index)
            if item is None:
                continue
            slots = [s for s in range(1, prepared.image_mask.size(1)) if prepared.image_mask[post, s]]
            motifs = [m for m, _ in item["objects"]]
            cue = [s for s in slots if s - 1 < len(motifs) and motifs[s - 1] == TYPE_CUES.get(item["answer"])]
            if not cue or len(slots) < 2:
                continue
            best = max(slots, key=lambda s: float(image_scores[row, s]))
            top += best in cue
            chance += len(cue) / len(slots)
            counted += 1
    return {
        "posts": counted,
        "cue_crop_top": top / max(counted, 1),
        "chance": chance / max(counted, 1),
    }
