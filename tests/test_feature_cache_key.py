"""The feature cache is keyed by the encoder's weights, not its name or folder: after a model folder's
weights change, features are computed again (issue: stale caches)."""

from __future__ import annotations

import torch

from mmib.encoders.image import ImageFeatureCache, build_image_encoder


def _tiny_vision_folder(folder, seed: int):
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    return folder


def test_changed_weights_in_the_same_folder_are_never_served_old_features(sample_image, tmp_path):
    folder = _tiny_vision_folder(tmp_path / "encoder", seed=0)
    images = [sample_image]
    first = ImageFeatureCache(build_image_encoder(str(folder)), tmp_path / "cache")
    old = first.features(images, progress=False)[sample_image]
    again = ImageFeatureCache(build_image_encoder(str(folder)), tmp_path / "cache")
    again.features(images, progress=False)
    assert (first.counts.computed, again.counts.computed, again.counts.from_cache) == (1, 0, 1)
    _tiny_vision_folder(folder, seed=1)  # the same path, other weights
    changed = ImageFeatureCache(build_image_encoder(str(folder)), tmp_path / "cache")
    new = changed.features(images, progress=False)[sample_image]
    assert (changed.counts.computed, changed.counts.from_cache) == (1, 0)
    assert changed.folder != first.folder and not torch.equal(old, new)


def test_caption_cache_follows_the_caption_encoders_weights(tiny_encoder, tmp_path):
    import shutil

    from transformers import AutoModel

    from mmib.encoders.captions import CaptionEncoder, CaptionFeatureCache

    folder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, folder)
    first = CaptionFeatureCache(CaptionEncoder(str(folder)), tmp_path / "cache")
    first.features(["a dog on a beach"], progress=False)
    reread = CaptionFeatureCache(CaptionEncoder(str(folder)), tmp_path / "cache")
    reread.features(["a dog on a beach"], progress=False)
    assert (reread.from_cache, reread.computed) == (1, 0)
    model = AutoModel.from_pretrained(folder)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.mul_(2.0)
    model.save_pretrained(folder)  # the same folder, other weights
    changed = CaptionFeatureCache(CaptionEncoder(str(folder)), tmp_path / "cache")
    changed.features(["a dog on a beach"], progress=False)
    assert (changed.from_cache, changed.computed) == (0, 1)
