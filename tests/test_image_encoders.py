"""Vision backbones from transformers (the paper's ResNet-50, CLIP towers, any AutoModel), offline with
tiny random configurations, and the paper's exact configurations resolving to the right classes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from mmib.encoders.image import ImageFeatureCache, build_image_encoder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory) -> str:
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    folder = tmp_path_factory.mktemp("tiny-resnet")
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    ConvNextImageProcessor().save_pretrained(folder)  # what microsoft/resnet-50 ships (ImageNet statistics)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_clip_tower(tmp_path_factory) -> str:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=24,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=224,
        patch_size=32,
    )
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    return str(folder)


def test_a_resnet_from_transformers_pools_its_last_stage(tiny_resnet):
    encoder = build_image_encoder(tiny_resnet)
    assert type(encoder.backbone).__name__ == "ResNetModel" and encoder.feature_dim == 16
    vectors = encoder(
        torch.stack([encoder.preprocess(Image.new("RGB", (90, 60), c)) for c in ("red", "blue")])
    )
    assert vectors.shape == (2, 16) and not torch.allclose(vectors[0], vectors[1])


def test_a_clip_tower_uses_its_own_normalisation(tiny_clip_tower):
    encoder = build_image_encoder(tiny_clip_tower)
    assert type(encoder.backbone).__name__ == "CLIPVisionModel" and encoder.feature_dim == 24
    assert encoder.mean.flatten().tolist() == pytest.approx([0.4815, 0.4578, 0.4082], abs=1e-4)
    assert encoder(encoder.preprocess(Image.new("RGB", (50, 50), "green")).unsqueeze(0)).shape == (1, 24)


def test_hub_encoder_features_are_cached_under_a_flat_folder(tiny_resnet, tmp_path, sample_image):
    encoder = build_image_encoder(tiny_resnet)
    encoder.name = "microsoft/resnet-50"  # as a hub name reads
    cache = ImageFeatureCache(encoder, tmp_path)
    first = cache.features([sample_image], progress=False)[sample_image]
    folder = cache.folder.name  # the name, flat, and the weights' fingerprint
    assert (
        folder.startswith("microsoft--resnet-50--") and (tmp_path / folder).is_dir() and first.shape == (16,)
    )
    again = ImageFeatureCache(encoder, tmp_path)
    assert torch.equal(again.features([sample_image], progress=False)[sample_image], first)
    assert again.counts.from_cache == 1


def test_an_unknown_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither efficientnet-lite0"):
        build_image_encoder(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize(
    ("name", "task", "max_length"),
    [("paper-twitter2015", "ner", 128), ("paper-twitter2017", "ner", 128), ("paper-mnre", "mre", 80)],
)
def test_paper_configurations_resolve_to_bert_and_resnet(
    name, task, max_length, tiny_encoder, tiny_resnet, monkeypatch
):
    """The shipped paper configurations: bert-base-uncased + microsoft/resnet-50, batch 8, lr 3e-5; with
    tiny stand-ins in place of the hub downloads, they build a BertModel and a ResNetModel."""
    from mmib.encoders import image, text
    from mmib.model.config import MMIBConfig
    from mmib.model.mmib import build_model
    from mmib.training import TrainConfig

    settings = TrainConfig.from_yaml(REPO / "configs" / f"{name}.yaml")
    model = settings.model
    assert (model.text_encoder, model.image_encoder) == ("bert-base-uncased", "microsoft/resnet-50")
    assert (settings.batch_size, settings.learning_rate, model.max_length) == (8, 3e-5, max_length)
    assert (model.beta1, model.beta2) == (0.1, 0.1) and settings.epochs == 10
    stand_ins = {"bert-base-uncased": tiny_encoder, "microsoft/resnet-50": tiny_resnet}
    resolve_text, resolve_image = text.resolve_text_encoder, image.resolve_image_encoder
    monkeypatch.setattr(text, "resolve_text_encoder", lambda n: resolve_text(stand_ins.get(n, n)))
    monkeypatch.setattr(image, "resolve_image_encoder", lambda n: resolve_image(stand_ins.get(n, n)))
    encoder = build_image_encoder(model.image_encoder)
    assert type(encoder.backbone).__name__ == "ResNetModel"
    config = MMIBConfig(
        task=task, labels=["O"], text_encoder=model.text_encoder, image_feature_dim=encoder.feature_dim
    )
    model, _ = build_model(config)
    assert type(model.text_encoder.model).__name__ == "BertModel"
