"""Finding and decoding post images and object crops in the standard benchmark layouts.

Layouts (see ``shared/images/README.md`` of the project's data notes):

* MNER (Twitter-2015/2017): ``<root>/twitter20xx_images/<IMGID>.jpg``; crops in
  ``<root>/twitter20xx_aux_images/<split>/crops/`` named by ``twitter20xx_<split>_dict.pth`` (or
  ``.json``), a mapping keyed by image file name.
* MNRE: ``<root>/img_org/<split>/<img_id>``; crops in ``<root>/img_vg/<split>/crops/`` named by
  ``mre_<split>_dict.pth`` (or ``.json``), keyed by the 0-based instance index of the split.

Missing or unreadable files are never replaced by a stand-in picture: they come back as ``None`` with a
mask, and are counted per split in :class:`ImageCounts`.
"""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from mmib.errors import SettingError

DEFAULT_MAX_CROPS = 3  # m in the paper: the first three visual-grounding crops, as its pipeline keeps
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold (about 0.25 GB at RGBA)

SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "dev": ("dev", "val", "valid"),
    "test": ("test",),
}


class ImageUnreadable(OSError):
    """An image file that exists but cannot be decoded safely (corrupt, truncated, too large, ...)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any Pillow mode: transparency is composited on white, CMYK/grey/palette converted."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping everything to white.
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def regular_file(path: Path) -> Path:
    """``path`` when it is a regular file (or absent: opening it then says FileNotFoundError); a FIFO, a
    device, a socket or a folder named as an image is ImageUnreadable and never opened, since reading a FIFO
    or a terminal blocks forever."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path
    except OSError as error:  # a name too long, no permission
        raise ImageUnreadable(path, f"cannot be opened ({error.strerror or error})") from None
    except ValueError:  # a NUL byte in the name
        raise ImageUnreadable(path, "cannot be opened (a NUL byte in the name)") from None
    if not stat.S_ISREG(mode):
        kind = "folder" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "device or socket"
        raise ImageUnreadable(path, f"not a regular file (a {kind}); not opened")
    return path


def decode_image(source: Path | str | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file or bytes to an upright RGB :class:`PIL.Image.Image`.

    Applies EXIF orientation, converts every mode to RGB, refuses images above ``max_pixels``
    (decompression bombs) and truncated files. Raises :class:`ImageUnreadable` with the reason.
    """
    path = Path("<bytes>") if isinstance(source, bytes) else regular_file(Path(source))
    stream = io.BytesIO(source) if isinstance(source, bytes) else path
    # The size is checked here, from the header, before any pixel is decoded, rather than by setting Pillow's
    # global MAX_IMAGE_PIXELS (and the warning filters) for the call: prediction opens posts from several
    # threads at once, and a global set and restored around each call leaks between them.
    try:
        with Image.open(stream) as image:
            if image.width * image.height > max_pixels:
                raise ImageUnreadable(
                    path,
                    f"refused as a possible decompression bomb ({image.width} x {image.height} pixels, "
                    f"above the limit of {max_pixels})",
                )
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            return to_rgb(upright)
    except Image.DecompressionBombError as error:  # Pillow's own hard limit, twice MAX_IMAGE_PIXELS
        raise ImageUnreadable(path, f"refused as a possible decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise ImageUnreadable(path, "not an image Pillow can identify") from None
    except (FileNotFoundError, ImageUnreadable):
        raise
    except (OSError, SyntaxError, ValueError) as error:
        reason = "truncated file" if "truncated" in str(error) else f"cannot decode ({error})"
        raise ImageUnreadable(path, reason) from None


assert not ImageFile.LOAD_TRUNCATED_IMAGES, "truncated images must raise, not load half-grey"

NOT_FOUND = "not found in the image folder"  # said alike for missing files and names that point outside it


def inside(folder: Path, name: str) -> Path | None:
    """``folder / name`` when it lies under ``folder`` once ``..``, absolute names and symlinks are resolved;
    None otherwise (and for an empty name). The one containment rule for every file named by user data:
    image ids, crop names, and the image names of ``mmib predict``. A name that points outside is never
    opened, so what a caller reports for it cannot differ from a missing file."""
    if not name or not name.strip() or "\0" in name:
        return None
    candidate = folder / name
    try:
        base = folder.resolve(strict=False)
        real = candidate.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return candidate if real != base and real.is_relative_to(base) else None


def load_crop_mapping(path: Path) -> dict[str | int, list[str]]:
    """A crop mapping file (``.pth`` via ``torch.load(weights_only=True)`` or ``.json``).

    Keys are image file names (MNER) or instance indices (MNRE); JSON's string keys that are all
    digits become ints so both files behave the same.
    """
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise SettingError(f"{path}: not a JSON crop mapping ({error})") from None
    else:
        import torch

        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle refusals come as several exception types, each many lines long
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SettingError(
                f"{path}: not a crop mapping that loads safely with weights_only=True ({first}); "
                "save it as a plain dict of lists of strings, or as .json"
            ) from None
    if not isinstance(raw, dict):
        raise SettingError(
            f"{path}: crop mapping is a {type(raw).__name__}, expected a dict key -> [crop names]"
        )
    if raw and all(isinstance(k, str) and k.isascii() and k.isdigit() for k in raw):  # not "²"
        raw = {int(k): v for k, v in raw.items()}
    for key, names in raw.items():  # a string would read as crops named by its letters; a number as nothing
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise SettingError(
                f"{path}: the crops of key {key!r} are {type(names).__name__} {str(names)[:40]!r}, "
                "expected a list of crop file names"
            )
    return {k: list(v) for k, v in raw.items()}


@dataclass
class ImageCounts:
    """Per-split image and crop bookkeeping over distinct files: each lands in exactly one bucket."""

    images_found: int = 0
    images_missing: int = 0
    images_unreadable: int = 0
    posts_without_image: int = 0  # no image id, or no image folder for the split
    crops_found: int = 0
    crops_missing: int = 0
    crops_unreadable: int = 0
    posts_without_crop_entry: int = 0
    problems: list[str] = field(default_factory=list)  # first few paths with reasons, for messages
    _seen: set[Path] = field(default_factory=set, repr=False)

    def record(self, path: Path, kind: str, status: str, reason: str = "") -> None:
        """Count ``path`` once as ``{kind}s_{status}`` (kind: image/crop; status: found/missing/unreadable)."""
        if path in self._seen:
            return
        self._seen.add(path)
        key = f"{kind}s_{status}"
        setattr(self, key, getattr(self, key) + 1)
        if status != "found" and len(self.problems) < 20:
            self.problems.append(f"{path}: {reason or status}")

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k not in ("problems", "_seen")}


@dataclass
class PostVisuals:
    """The whole image and up to m crops of a post; ``None`` where a file is absent or unreadable.

    ``mask[i]`` is True where ``images[i]`` is present; index 0 is the whole image (x_0^v in the
    paper), 1..m the object crops. The model masks the absent ones; nothing is substituted.
    """

    images: list[Image.Image | None]
    paths: list[Path | None]

    @property
    def mask(self) -> list[bool]:
        return [image is not None for image in self.images]


def _find_split_dir(parent: Path, split: str) -> Path | None:
    for alias in SPLIT_ALIASES.get(split, (split,)):  # a single file is split "all": no split folder
        if (parent / alias).is_dir():
            return parent / alias
    return None


@dataclass
class ImageStore:
    """Locates whole images and crops for one split of a dataset under an image root."""

    root: Path
    split: str
    image_dir: Path | None
    crop_dir: Path | None
    crop_mapping: dict[str | int, list[str]] | None
    max_crops: int = DEFAULT_MAX_CROPS

    @classmethod
    def discover(cls, root: Path | str, split: str, max_crops: int = DEFAULT_MAX_CROPS) -> ImageStore:
        """Find the image folder, crop folder and crop mapping of ``split`` under ``root``."""
        root = Path(root)
        image_dir = crop_dir = None
        if (root / "img_org").is_dir():  # MNRE layout
            image_dir = _find_split_dir(root / "img_org", split)
            if (root / "img_vg").is_dir() and (vg := _find_split_dir(root / "img_vg", split)):
                crop_dir = vg / "crops" if (vg / "crops").is_dir() else vg
        else:  # Twitter layout: <name>_images/ holds every split; <name>_aux_images/<split>/crops
            image_dirs = sorted(
                p for p in root.glob("*_images") if p.is_dir() and not p.name.endswith("_aux_images")
            )
            image_dir = image_dirs[0] if image_dirs else (root if any(root.glob("*.jpg")) else None)
            for aux in sorted(root.glob("*_aux_images")):
                if split_dir := _find_split_dir(aux, split):
                    crop_dir = split_dir / "crops" if (split_dir / "crops").is_dir() else split_dir
        mapping_path = _find_crop_mapping(root, split)
        mapping = load_crop_mapping(mapping_path) if mapping_path else None
        return cls(root, split, image_dir, crop_dir, mapping, max_crops)

    def _contained(self, folder: Path, name: str) -> Path:
        """``folder / name``, or, for a name that points outside the folder, a path under the folder that
        does not exist: it is then counted and reported as missing, exactly like an absent file."""
        found = inside(folder, name)
        if found is not None:
            return found
        return folder / "outside-the-folder" / Path(name).name

    def image_path(self, image_id: str | None) -> Path | None:
        if image_id is None or self.image_dir is None:
            return None
        name = image_id if Path(image_id).suffix else f"{image_id}.jpg"
        return self._contained(self.image_dir, name)

    def crop_names(self, image_id: str | None, index: int) -> list[str] | None:
        """The first m crop names of a post, or None when the mapping has no entry for it."""
        if self.crop_mapping is None:
            return None
        keys: Iterable[str | int] = (index,)
        if image_id is not None:
            keys = (index, image_id, image_id if Path(image_id).suffix else f"{image_id}.jpg")
        for key in keys:
            if key in self.crop_mapping:
                return self.crop_mapping[key][: self.max_crops]
        return None

    def locate(
        self, image_id: str | None, index: int, counts: ImageCounts | None = None
    ) -> list[Path | None]:
        """Paths of the whole image and its first m crops (None where there is none to look for)."""
        crop_names = self.crop_names(image_id, index)
        if counts is not None:
            counts.posts_without_image += self.image_path(image_id) is None
            counts.posts_without_crop_entry += crop_names is None and self.crop_mapping is not None
        crop_paths = [
            self._contained(self.crop_dir, n) if self.crop_dir else None for n in (crop_names or [])
        ]
        return [self.image_path(image_id), *crop_paths, *[None] * (self.max_crops - len(crop_paths))]

    def load(self, image_id: str | None, index: int, counts: ImageCounts | None = None) -> PostVisuals:
        """Whole image plus up to m crops; absent and unreadable files are None and counted."""
        paths = self.locate(image_id, index, counts)
        images = [_try_load(p, counts, "image" if i == 0 else "crop") for i, p in enumerate(paths)]
        return PostVisuals(images, paths)


def _try_load(path: Path | None, counts: ImageCounts | None, kind: str) -> Image.Image | None:
    if path is None:
        return None
    try:
        image = decode_image(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        if counts is not None:
            counts.record(path, kind, "missing", NOT_FOUND)
        return None
    except ImageUnreadable as error:
        if counts is not None:
            counts.record(path, kind, "unreadable", error.reason)
        return None
    if counts is not None:
        counts.record(path, kind, "found")
    return image


def audit_crop_mapping(store: ImageStore, indices: set[int], image_ids: set[str]) -> dict[str, int]:
    """How the crop mapping file relates to the text and to the crop folder.

    Counts every crop name listed (not only the first m), and how many are on disk: a release's
    mapping can list crops for instances whose crop files were never shipped.
    """
    if store.crop_mapping is None:
        return {}
    on_disk = (
        {p.name for p in store.crop_dir.iterdir()} if store.crop_dir and store.crop_dir.is_dir() else set()
    )
    listed = [name for names in store.crop_mapping.values() for name in names]
    keys_with_text = sum(1 for key in store.crop_mapping if key in indices or key in image_ids)
    return {
        "mapping_entries": len(store.crop_mapping),
        "mapping_entries_without_text_record": len(store.crop_mapping) - keys_with_text,
        "crops_listed": len(listed),
        "crops_listed_on_disk": sum(name in on_disk for name in listed),
        "crops_listed_absent": sum(name not in on_disk for name in listed),
    }


def _find_crop_mapping(root: Path, split: str) -> Path | None:
    """``*_<split>_dict.{pth,json}`` in the root or its ``txt/`` folder, any split alias."""
    for folder in (root, root / "txt"):
        for alias in SPLIT_ALIASES.get(split, (split,)):  # a single file is split "all": no split folder
            for suffix in (".pth", ".json"):
                found = sorted(folder.glob(f"*_{alias}_dict{suffix}"))
                if found:
                    return found[0]
    return None
