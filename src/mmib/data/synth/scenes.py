"""Drawing the synthetic scenes with Pillow: each motif is a recognisable object at a known box.

A scene is a background plus motifs; every motif's box becomes an object crop, the way a visual
grounding tool returns boxes for a real photo. Colours, sizes and positions vary per image so that the
object category, not a fixed pixel pattern, is what identifies a motif.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
SIZE = 224


def _colour(rng: random.Random, low: int = 30, high: int = 225) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def draw_person(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) // 2
    skin = rng.choice([(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172)])
    head_r = max(4, min(w, h) // 6)
    draw.ellipse((cx - head_r, y0, cx + head_r, y0 + 2 * head_r), fill=skin, outline=(0, 0, 0))
    torso_top = y0 + 2 * head_r
    shirt = _colour(rng)
    draw.rectangle((cx - w // 4, torso_top, cx + w // 4, y0 + int(h * 0.65)), fill=shirt)
    draw.line((cx - w // 4, torso_top + 4, x0, y0 + h // 2), fill=skin, width=max(2, w // 12))
    draw.line((cx + w // 4, torso_top + 4, x1, y0 + h // 2), fill=skin, width=max(2, w // 12))
    legs = _colour(rng, 10, 120)
    draw.line((cx - w // 8, y0 + int(h * 0.65), cx - w // 5, y1), fill=legs, width=max(2, w // 8))
    draw.line((cx + w // 8, y0 + int(h * 0.65), cx + w // 5, y1), fill=legs, width=max(2, w // 8))


def draw_landscape(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(rng.randint(90, 160), rng.randint(170, 220), 255))
    for _ in range(rng.randint(2, 3)):
        peak_x = rng.randint(x0, x1)
        half = rng.randint((x1 - x0) // 4, (x1 - x0) // 2)
        grey = rng.randint(80, 150)
        draw.polygon(
            [(peak_x - half, y1), (peak_x, y0 + rng.randint(10, (y1 - y0) // 2)), (peak_x + half, y1)],
            fill=(grey, grey + 10, grey),
        )
    sun_r = rng.randint(8, 16)
    sx, sy = rng.randint(x0 + sun_r, x1 - sun_r), y0 + sun_r + 2
    draw.ellipse((sx - sun_r, sy - sun_r, sx + sun_r, sy + sun_r), fill=(255, 215, 0))
    draw.rectangle((x0, y1 - (y1 - y0) // 6, x1, y1), fill=(rng.randint(40, 90), rng.randint(130, 180), 50))


def draw_building(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    """An office building with a company sign (a logo disc and letters): an organisation's cue."""
    x0, y0, x1, y1 = box
    wall = (rng.randint(150, 200),) * 3
    sign_bottom = y0 + (y1 - y0) // 4
    draw.rectangle((x0, sign_bottom, x1, y1), fill=wall, outline=(60, 60, 60))
    for wy in range(sign_bottom + 6, y1 - 8, 12):
        for wx in range(x0 + 5, x1 - 8, 12):
            draw.rectangle((wx, wy, wx + 6, wy + 7), fill=(90, 140, 200))
    sign = _colour(rng)
    draw.rectangle((x0, y0, x1, sign_bottom - 2), fill=sign, outline=(0, 0, 0))
    r = (sign_bottom - y0) // 3
    draw.ellipse((x0 + 4, y0 + r // 2, x0 + 4 + 2 * r, y0 + r // 2 + 2 * r), fill=(255, 255, 255))
    letters = "".join(rng.choice("ABCDEFGHKLMNPRSTXZ") for _ in range(3))
    draw.text((x0 + 10 + 2 * r, y0 + r // 2), letters, fill=(255, 255, 255))


def draw_trophy(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    gold = rng.choice([(212, 175, 55), (255, 200, 40), (192, 192, 192)])
    draw.pieslice((x0 + w // 6, y0 - h // 3, x1 - w // 6, y0 + h // 2), 0, 180, fill=gold)
    draw.arc((x0, y0 + h // 12, x0 + w // 3, y0 + h // 3), 90, 270, fill=gold, width=3)
    draw.arc((x1 - w // 3, y0 + h // 12, x1, y0 + h // 3), 270, 90, fill=gold, width=3)
    draw.rectangle(
        (x0 + w // 2 - w // 14, y0 + h // 12 + h // 6, x0 + w // 2 + w // 14, y1 - h // 5), fill=gold
    )
    draw.rectangle((x0 + w // 5, y1 - h // 5, x1 - w // 5, y1), fill=(90, 60, 30))


def draw_house(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    mid = y0 + (y1 - y0) // 3
    draw.polygon(
        [(x0, mid), ((x0 + x1) // 2, y0), (x1, mid)], fill=rng.choice([(170, 40, 40), (120, 60, 30)])
    )
    draw.rectangle((x0 + 4, mid, x1 - 4, y1), fill=_colour(rng, 150, 240))
    dw = (x1 - x0) // 6
    draw.rectangle(((x0 + x1) // 2 - dw, y1 - (y1 - mid) // 2, (x0 + x1) // 2 + dw, y1), fill=(100, 60, 20))


def draw_heart(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    red = rng.choice([(220, 20, 60), (255, 0, 80), (200, 0, 0)])
    draw.ellipse((x0, y0, x0 + w // 2 + 2, y0 + h // 2 + 2), fill=red)
    draw.ellipse((x0 + w // 2 - 2, y0, x1, y0 + h // 2 + 2), fill=red)
    draw.polygon([(x0 + 1, y0 + h // 3), (x1 - 1, y0 + h // 3), ((x0 + x1) // 2, y1)], fill=red)


def draw_ball(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    draw.ellipse(box, fill=(250, 250, 250), outline=(0, 0, 0), width=2)
    cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 6
    draw.regular_polygon((cx, cy, r), 5, fill=(0, 0, 0))
    for dx, dy in ((-2, -2), (2, -2), (0, 2)):
        draw.ellipse(
            (cx + dx * r - r // 2, cy + dy * r - r // 2, cx + dx * r + r // 2, cy + dy * r + r // 2),
            fill=(0, 0, 0),
        )


def draw_tree(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w = x1 - x0
    draw.rectangle((x0 + w * 2 // 5, y0 + (y1 - y0) // 2, x1 - w * 2 // 5, y1), fill=(110, 70, 30))
    draw.ellipse((x0, y0, x1, y0 + (y1 - y0) * 2 // 3), fill=(30, rng.randint(110, 170), 40))


def draw_car(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = _colour(rng)
    draw.rectangle((x0, y0 + h // 3, x1, y1 - h // 5), fill=body)
    draw.polygon(
        [(x0 + w // 5, y0 + h // 3), (x0 + w // 3, y0), (x1 - w // 3, y0), (x1 - w // 5, y0 + h // 3)],
        fill=body,
    )
    r = h // 5
    for cx in (x0 + w // 4, x1 - w // 4):
        draw.ellipse((cx - r, y1 - 2 * r, cx + r, y1), fill=(20, 20, 20))


def draw_cup(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w = x1 - x0
    colour = _colour(rng)
    draw.rectangle((x0, y0, x1 - w // 4, y1), fill=colour, outline=(0, 0, 0))
    draw.arc((x1 - w // 2, y0 + (y1 - y0) // 5, x1, y1 - (y1 - y0) // 5), 270, 90, fill=colour, width=4)


def draw_flower(draw: ImageDraw.ImageDraw, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, y0 + (y1 - y0) // 3
    r = (x1 - x0) // 5
    draw.line((cx, cy, cx, y1), fill=(30, 140, 30), width=3)
    petal = _colour(rng, 150, 255)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        draw.ellipse((cx + dx * r - r, cy + dy * r - r, cx + dx * r + r, cy + dy * r + r), fill=petal)
    draw.ellipse((cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2), fill=(250, 210, 0))


MOTIFS: dict[str, Callable[[ImageDraw.ImageDraw, Box, random.Random], None]] = {
    "person": draw_person,
    "landscape": draw_landscape,
    "building": draw_building,
    "trophy": draw_trophy,
    "house": draw_house,
    "heart": draw_heart,
    "ball": draw_ball,
    "tree": draw_tree,
    "car": draw_car,
    "cup": draw_cup,
    "flower": draw_flower,
}
DISTRACTORS = ("tree", "car", "cup", "flower", "ball")


def _place(rng: random.Random, size: int, scale: tuple[float, float], taken: list[Box]) -> Box:
    """A random box of the given relative size, overlapping earlier boxes as little as tries allow."""
    best: Box | None = None
    best_overlap = None
    for _ in range(12):
        side = int(size * rng.uniform(*scale))
        w, h = side, int(side * rng.uniform(1.0, 1.4)) if rng.random() < 0.5 else side
        h = min(h, size - 2)
        x0, y0 = rng.randint(0, size - w - 1), rng.randint(0, size - h - 1)
        box = (x0, y0, x0 + w, y0 + h)
        overlap = sum(_intersection(box, other) for other in taken)
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = box, overlap
        if overlap == 0:
            break
    assert best is not None
    return best


def _intersection(a: Box, b: Box) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def render_scene(
    cues: list[str], distractors: list[str], rng: random.Random, size: int = SIZE
) -> tuple[Image.Image, list[tuple[str, Box]]]:
    """Draw cue motifs (large) and distractors (small) on a plain background.

    A ``landscape`` cue fills the background; other motifs get their own boxes. Returns the picture
    and every motif with its box, cues first.
    """
    image = Image.new("RGB", (size, size), _colour(rng, 180, 250))
    draw = ImageDraw.Draw(image)
    objects: list[tuple[str, Box]] = []
    taken: list[Box] = []
    if "landscape" in cues:
        box = (0, 0, size - 1, rng.randint(size * 2 // 3, size - 1))
        draw_landscape(draw, box, rng)
        objects.append(("landscape", box))
    for motif in [c for c in cues if c != "landscape"]:
        box = _place(rng, size, (0.32, 0.5), taken)
        MOTIFS[motif](draw, box, rng)
        objects.append((motif, box))
        taken.append(box)
    for motif in distractors:
        box = _place(rng, size, (0.15, 0.26), taken)
        MOTIFS[motif](draw, box, rng)
        objects.append((motif, box))
        taken.append(box)
    return image, objects
