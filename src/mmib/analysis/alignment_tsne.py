"""The alignment picture of Section V-D (Fig. 5): entity and object representations of PER/LOC/ORG in t-SNE,
for models with and without L_ar, plus numbers that say whether text and image points of a type co-locate.

Entity representation: the mean of Z^T over the entity's words. Object representation: Z^V at the crop of
an object whose scene motif shows that type (the synthetic generator records each crop's motif). A pair is
an entity and an object of the same type in the same post; the paper samples 150 pairs and runs t-SNE
(perplexity 10, 500 iterations).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmib.analysis.image_use import read_meta
from mmib.data.synth.lexicon import TYPE_CUES
from mmib.errors import SettingError
from mmib.metrics import extract_spans
from mmib.processing import NerTask
from mmib.training.batching import epoch_batches
from mmib.training.evaluate_run import RunSplit

TYPES = ("PER", "LOC", "ORG")
MOTIF_TYPE = {motif: entity_type for entity_type, motif in TYPE_CUES.items()}


@dataclass
class PairSet:
    text: np.ndarray  # (N, d) entity representations
    image: np.ndarray  # (N, d) object representations
    types: list[str]  # (N,)


def read_objects(dataset_folder: Path, split: str) -> dict[int, list[str]]:
    """Record index -> motif of each crop, in crop order."""
    return {
        index: [motif for motif, _ in item["objects"]]
        for index, item in read_meta(dataset_folder, split).items()
    }


@torch.no_grad()
def collect_pairs(
    opened: RunSplit, objects: dict[int, list[str]], limit: int = 150, seed: int = 0
) -> PairSet:
    model = opened.model.eval()
    if not isinstance(opened.collator.task, NerTask) or model.config.text_only:
        raise SettingError("the alignment picture needs an MMIB NER run (entities with gold types and crops)")
    prepared = opened.prepared
    text_vectors, image_vectors, types = [], [], []
    for posts in epoch_batches(prepared, opened.train.eval_batch_size, seed=None):
        batch = opened.collator(prepared, posts)
        output = model.encode(batch)
        text_z, image_z = output.text_latent.z, output.image_latent.z  # (P, n+2, d), (P, m+1, d)
        for row, post in enumerate(posts):
            record = prepared.records[prepared.post_records[post][0]]
            motifs = objects.get(record.index, [])
            for entity in extract_spans(record.tags):
                for slot, motif in enumerate(motifs[: model.config.max_crops], start=1):
                    if (
                        entity.type in TYPES
                        and MOTIF_TYPE.get(motif) == entity.type
                        and batch.image_mask[row, slot]
                    ):
                        text_vectors.append(text_z[row, entity.first + 1 : entity.last + 1].mean(0).numpy())
                        image_vectors.append(image_z[row, slot].numpy())
                        types.append(entity.type)
                        break
    chosen = sorted(random.Random(seed).sample(range(len(types)), min(limit, len(types))))
    return PairSet(
        np.stack([text_vectors[i] for i in chosen]),
        np.stack([image_vectors[i] for i in chosen]),
        [types[i] for i in chosen],
    )


def colocation(text: np.ndarray, image: np.ndarray, types: list[str], k: int = 10) -> dict:
    """How well same-type text and image points co-locate.

    ``cross_knn``: for each text point, the share of its k nearest image points (cosine, original space)
    with its type, averaged (chance: about 1/3 for three balanced types). ``silhouette``: of the types over
    text and image points together (cosine); near 0 or below when each modality sits apart.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(types)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    v = image / np.linalg.norm(image, axis=1, keepdims=True)
    neighbours = np.argsort(-(t @ v.T), axis=1)[:, :k]
    cross = float((labels[neighbours] == labels[:, None]).mean())
    everything = np.concatenate([text, image])
    silhouette = float(silhouette_score(everything, np.concatenate([labels, labels]), metric="cosine"))
    chance = float(sum((labels == t_).mean() ** 2 for t_ in set(types)))
    return {
        "cross_knn": cross,
        "cross_knn_chance": chance,
        "silhouette": silhouette,
        "k": k,
        "pairs": len(types),
    }


def embed(pairs: PairSet, seed: int = 0) -> np.ndarray:
    """t-SNE of text and image points together (perplexity 10, 500 iterations, as in the paper)."""
    from sklearn.manifold import TSNE

    everything = np.concatenate([pairs.text, pairs.image])
    return TSNE(n_components=2, perplexity=10, max_iter=500, init="pca", random_state=seed).fit_transform(
        everything
    )


def plot_tsne(panels: list[tuple[str, PairSet, np.ndarray, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"PER": "#d62728", "LOC": "#2ca02c", "ORG": "#1f77b4"}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    for axis, (title, pairs, points, numbers) in zip(axes[0], panels, strict=True):
        n = len(pairs.types)
        for entity_type in TYPES:
            rows = [i for i, t in enumerate(pairs.types) if t == entity_type]
            axis.scatter(
                *points[rows].T, c=colours[entity_type], marker="o", s=22, label=f"{entity_type} entity"
            )
            axis.scatter(
                *points[[n + i for i in rows]].T,
                c=colours[entity_type],
                marker="^",
                s=26,
                alpha=0.55,
                label=f"{entity_type} object",
            )
        axis.set_title(
            f"{title}\ncross-modal {numbers['k']}-NN type agreement {numbers['cross_knn']:.2f} "
            f"(chance {numbers['cross_knn_chance']:.2f}), silhouette {numbers['silhouette']:.2f}",
            fontsize=9,
        )
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def run_tsne(run_dirs: list[Path], split: str, limit: int, seed: int, out: Path) -> list[tuple[str, dict]]:
    """One panel per run; returns each run's co-location numbers (also written beside the PNG as JSON)."""
    from mmib.training.evaluate_run import open_run_split

    panels, numbers = [], []
    for run_dir in run_dirs:
        opened = open_run_split(run_dir, split, progress=False)
        pairs = collect_pairs(opened, read_objects(Path(opened.train.data), split), limit, seed)
        scores = colocation(pairs.text, pairs.image, pairs.types)
        label = f"{Path(run_dir).parent.name}/{Path(run_dir).name} ({opened.model.config.variant})"
        panels.append((label, pairs, embed(pairs, seed), scores))
        numbers.append((label, scores))
    plot_tsne(panels, out)
    out.with_suffix(".json").write_text(json.dumps(dict(numbers), indent=2) + "\n")
    return numbers
