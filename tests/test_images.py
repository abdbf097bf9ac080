"""Image decoding and the image store: modes, orientation, bombs, truncation, layouts, crop mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmib.data import load_dataset
from mmib.data.images import ImageCounts, ImageStore, ImageUnreadable, decode_image
from mmib.data.stats import check_images


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    assert decode_image(path).size == (20, 40)


@pytest.mark.parametrize(
    ("mode", "colour", "suffix"),
    [
        ("L", 128, ".png"),
        ("P", 3, ".png"),
        ("CMYK", (0, 255, 255, 0), ".jpg"),
        ("LA", (0, 0), ".png"),
        ("I;16", 65535, ".png"),
    ],
)
def test_every_mode_becomes_rgb(tmp_path, mode, colour, suffix):
    path = _save(Image.new(mode, (8, 8), colour), tmp_path / f"image{suffix}")
    decoded = decode_image(path)
    assert decoded.mode == "RGB" and decoded.size == (8, 8)


def test_alpha_is_composited_on_white(tmp_path):
    path = _save(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), tmp_path / "clear.png")
    assert decode_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_palette_transparency_is_composited(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0] * 256)
    path = _save(image, tmp_path / "palette.png", transparency=0)
    assert decode_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_decompression_bomb_is_refused(tmp_path):
    path = _save(Image.new("L", (200, 200)), tmp_path / "big.png")
    with pytest.raises(
        ImageUnreadable, match=r"big\.png: refused as a possible decompression bomb \(200 x 200"
    ):
        decode_image(path, max_pixels=1000)
    assert decode_image(path).size == (200, 200)  # and the default limit is left as it was


def test_decoding_leaves_pillows_global_limit_alone(tmp_path, monkeypatch):
    """Posts are opened by several threads at once: a global limit set and restored around each call would
    leak from one thread's call into another's."""
    path = _save(Image.new("L", (20, 20)), tmp_path / "small.png")
    seen, opening = [], Image.open

    def watched_open(*args, **kwargs):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return opening(*args, **kwargs)

    monkeypatch.setattr(Image, "open", watched_open)
    decode_image(path, max_pixels=1000)
    assert seen == [Image.MAX_IMAGE_PIXELS]


def test_truncated_file_is_reported(tmp_path):
    path = _save(Image.effect_noise((256, 256), 64).convert("RGB"), tmp_path / "full.jpg", quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageUnreadable, match="truncated"):
        decode_image(cut)


def test_non_image_is_reported(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(ImageUnreadable, match="not an image"):
        decode_image(path)


def test_bytes_input(tmp_path):
    path = _save(Image.new("RGB", (3, 5)), tmp_path / "a.png")
    assert decode_image(path.read_bytes()).size == (3, 5)


def _mnre_layout(root: Path, mapping_suffix: str) -> None:
    """Two instances sharing one image; crops listed for both, only some on disk; one bad crop."""
    line = (
        "{'token': ['A', 'and', 'B'], 'h': {'name': 'A', 'pos': [0, 1]}, 't': {'name': 'B', 'pos': [2, 3]}, "
        "'img_id': 'p1.jpg', 'relation': 'None'}\n"
    )
    (root / "txt").mkdir(parents=True)
    (root / "txt" / "ours_train.txt").write_text(line + line.replace("p1.jpg", "gone.jpg") + line)
    _save(Image.new("RGB", (30, 30)), root / "img_org" / "train" / "p1.jpg")
    crops = root / "img_vg" / "train" / "crops"
    for name in ("0_c0.png", "0_c1.png", "0_c2.png"):
        _save(Image.new("RGB", (5, 5)), crops / name)
    (crops / "2_c0.png").write_text("broken")
    mapping = {
        0: ["0_c0.png", "0_c1.png", "0_c2.png", "0_c3.png"],
        1: ["1_c0.png"],
        2: ["2_c0.png"],
        7: ["7_c0.png"],
    }
    if mapping_suffix == ".pth":
        torch.save(mapping, root / "txt" / "mre_train_dict.pth")
    else:
        (root / "txt" / "mre_train_dict.json").write_text(json.dumps({str(k): v for k, v in mapping.items()}))


@pytest.mark.parametrize("suffix", [".pth", ".json"])
def test_mnre_layout_counts_everything(tmp_path, suffix):
    _mnre_layout(tmp_path, suffix)
    dataset = load_dataset(tmp_path)
    assert dataset.image_root == tmp_path
    counts = check_images(dataset, "train", progress=False)
    assert counts.as_dict() == {
        "images_found": 1,  # p1.jpg once, though two instances use it
        "images_missing": 1,  # gone.jpg
        "images_unreadable": 0,
        "posts_without_image": 0,
        "crops_found": 3,  # first m = 3 of instance 0; 0_c3.png is beyond m and not looked for
        "crops_missing": 1,  # 1_c0.png
        "crops_unreadable": 1,  # 2_c0.png
        "posts_without_crop_entry": 0,
    }


def test_store_masks_absent_files_never_substitutes(tmp_path):
    _mnre_layout(tmp_path, ".pth")
    store = ImageStore.discover(tmp_path, "train")
    counts = ImageCounts()
    visuals = store.load("gone.jpg", 1, counts)
    assert visuals.mask == [False, False, False, False]
    assert visuals.images == [None] * 4
    visuals = store.load("p1.jpg", 0, counts)
    assert visuals.mask == [True, True, True, True]
    assert [p.name for p in visuals.paths[1:]] == ["0_c0.png", "0_c1.png", "0_c2.png"]


def test_twitter_layout_with_name_keyed_mapping(tmp_path):
    (tmp_path / "train.txt").write_text("IMGID:11\nJohn\tB-PER\n\nIMGID:12\nJane\tB-PER\n\nIMGID:13\nX\tO\n")
    _save(Image.new("RGB", (9, 9)), tmp_path / "twitter2015_images" / "11.jpg")
    _save(Image.new("RGB", (9, 9)), tmp_path / "twitter2015_images" / "12.jpg")
    crops = tmp_path / "twitter2015_aux_images" / "train" / "crops"
    _save(Image.new("RGB", (4, 4)), crops / "11_crop_0.png")
    torch.save({"11.jpg": ["11_crop_0.png"], "12.jpg": []}, tmp_path / "twitter2015_train_dict.pth")
    dataset = load_dataset(tmp_path)
    counts = check_images(dataset, "train", progress=False)
    assert (counts.images_found, counts.images_missing, counts.crops_found) == (2, 1, 1)
    assert counts.posts_without_crop_entry == 1  # 13.jpg has no entry
    visuals = ImageStore.discover(tmp_path, "train").load("11", 0)
    assert visuals.mask == [True, True, False, False]


def test_feature_cache_writes_shards_as_it_goes(tmp_path):
    from mmib.encoders.image import ImageFeatureCache, build_image_encoder

    paths = []
    for index in range(5):
        path = tmp_path / f"{index}.png"
        Image.new("RGB", (40, 30), (index * 40, 10, 200)).save(path)
        paths.append(path)
    encoder = build_image_encoder("random-cnn")
    cache = ImageFeatureCache(encoder, tmp_path / "cache", batch_size=2, shard_size=2)
    first = cache.features(paths, progress=False)
    shards = sorted(cache.folder.glob("shard-*.safetensors"))
    assert len(shards) == 3  # 2 + 2 + 1: a killed run would have kept the finished shards
    assert not list(cache.folder.glob("*.partial"))
    reread = ImageFeatureCache(encoder, tmp_path / "cache").features(paths, progress=False)
    for path in paths:
        assert torch.equal(first[path], reread[path])
