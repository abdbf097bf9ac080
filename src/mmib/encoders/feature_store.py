"""The on-disk feature cache: content-addressed float16 tensors in safetensors shards.

One owner for the format that image features (one vector per file) and caption features (one token
sequence per caption) share::

    <cache_dir>/<encoder name>--<weights fingerprint>/shard-<number>-<first key>.safetensors

Keys are sha256 digests of what was encoded (a file's bytes, or a caption's text with its encoder), so
runs on one machine or many share the cache. The folder carries a fingerprint of the encoder's weights and
preprocessing (:func:`weights_fingerprint`): the same name with other weights (a local folder re-saved, a
fine-tuned copy) never reads the old features. New tensors go to a new shard written under a temporary
name and then renamed: concurrent readers never see a half-written file and a killed run keeps its
finished shards.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SHARD_GLOB = "shard-*.safetensors"


def weights_fingerprint(module: torch.nn.Module, *extra: object) -> str:
    """A short sha256 over a network's parameters and buffers (names, shapes, dtypes and bytes) and any
    ``extra`` settings that change its output (normalisation statistics, a length limit)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    for value in extra:
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()[:12]


class ShardedFeatureStore:
    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, Path] = {}
        for shard in sorted(self.folder.glob(SHARD_GLOB)):
            with safe_open(shard, framework="pt") as handle:
                self._index.update((key, shard) for key in handle.keys())  # noqa: SIM118

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def keys(self) -> set[str]:
        return set(self._index)

    def read(self, keys: list[str]) -> dict[str, torch.Tensor]:
        """float32 tensors of stored keys, each shard opened once."""
        by_shard: dict[Path, list[str]] = {}
        for key in keys:
            by_shard.setdefault(self._index[key], []).append(key)
        found = {}
        for shard, shard_keys in by_shard.items():
            with safe_open(shard, framework="pt") as handle:
                found.update((key, handle.get_tensor(key).float()) for key in shard_keys)
        return found

    def write(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Store tensors as one float16 shard; return them as the store holds them (float32 of the
        float16 values), so a first run and a cached rerun see the same numbers."""
        if not tensors:
            return {}
        stored = {k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}
        number = len(list(self.folder.glob("shard-*")))
        shard = self.folder / f"shard-{number:05d}-{next(iter(stored))[:8]}.safetensors"
        partial = shard.with_suffix(".partial")
        save_file(stored, str(partial))
        partial.rename(shard)
        self._index.update((k, shard) for k in stored)
        return {k: v.float() for k, v in stored.items()}
