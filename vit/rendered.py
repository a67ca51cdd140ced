"""Digits from outside MNIST: typed in every font on the machine, and drawn as pen strokes in styles MNIST's
American writers rarely used (the 1 with a flag and a foot, the 7 with a bar, the open 4), thick and thin.

A stand-in for writers the model never saw; each picture goes through the app's own preprocessing, as a
visitor's drawing does. Reproducible from its seed; which fonts exist depends on the machine, so the
report names them.
"""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .preprocess import to_model_input

FONT_FOLDERS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
PAGE = 336  # the drawing pad's canvas (tabs/pad.py)


def _arc(cx, cy, rx, ry, start, end, steps=24):
    """Points of an elliptic arc; angles in degrees, 0 = right, 90 = down (image coordinates)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


# Each digit: named styles, each a list of strokes, each stroke a list of (x, y) in a unit box (y down).
STYLES: dict[int, dict[str, list[list[tuple[float, float]]]]] = {
    0: {"oval": [_arc(0.5, 0.5, 0.32, 0.46, 0, 360)], "narrow": [_arc(0.5, 0.5, 0.22, 0.46, -90, 270)]},
    1: {"stick": [[(0.5, 0.04), (0.5, 0.96)]],
        "flag": [[(0.28, 0.3), (0.55, 0.04), (0.55, 0.96)]],
        "flag and foot": [[(0.25, 0.28), (0.55, 0.04), (0.55, 0.96)], [(0.3, 0.96), (0.8, 0.96)]],
        "long flag": [[(0.1, 0.5), (0.6, 0.04), (0.6, 0.96)]]},
    2: {"plain": [_arc(0.5, 0.3, 0.3, 0.26, 190, 360) + [(0.2, 0.96), (0.85, 0.96)]],
        "looped": [_arc(0.5, 0.3, 0.3, 0.26, 190, 370) + [(0.25, 0.9)] + _arc(0.33, 0.88, 0.08, 0.08, -90, 200)
                   + [(0.85, 0.95)]]},
    3: {"round": [_arc(0.47, 0.27, 0.28, 0.23, 200, 450), _arc(0.47, 0.72, 0.32, 0.24, -90, 160)],
        "flat top": [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.45)] + _arc(0.47, 0.7, 0.32, 0.25, -80, 160)]},
    4: {"closed": [[(0.65, 0.96), (0.65, 0.04), (0.15, 0.68), (0.88, 0.68)]],
        "open": [[(0.3, 0.04), (0.18, 0.6), (0.85, 0.6)], [(0.66, 0.2), (0.66, 0.96)]],
        "crossed": [[(0.3, 0.04), (0.15, 0.55), (0.9, 0.55)], [(0.7, 0.0), (0.62, 0.96)]]},
    5: {"plain": [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.5, 0.68, 0.3, 0.26, -120, 150)]},
    6: {"plain": [_arc(0.75, 0.55, 0.45, 0.5, 240, 180) + _arc(0.5, 0.72, 0.26, 0.22, 180, 540)]},
    7: {"plain": [[(0.15, 0.06), (0.85, 0.06), (0.4, 0.96)]],
        "barred": [[(0.15, 0.06), (0.85, 0.06), (0.4, 0.96)], [(0.35, 0.5), (0.8, 0.5)]],
        "hooked": [[(0.15, 0.2), (0.15, 0.06), (0.85, 0.06), (0.45, 0.96)]]},
    8: {"plain": [_arc(0.5, 0.27, 0.24, 0.22, 0, 360), _arc(0.5, 0.72, 0.3, 0.24, 0, 360)]},
    9: {"straight": [_arc(0.48, 0.3, 0.27, 0.24, 0, 360), [(0.75, 0.3), (0.72, 0.96)]],
        "curved": [_arc(0.48, 0.3, 0.27, 0.24, 0, 360), [(0.75, 0.3), (0.7, 0.8), (0.45, 0.96)]],
        "hooked": [_arc(0.5, 0.3, 0.3, 0.26, -30, 330) + _arc(0.45, 0.62, 0.33, 0.34, -30, 120)]},
}
PENS = {"thin": 0.035, "medium": 0.07, "thick": 0.12}  # pen width, as a share of the digit's height


def fonts() -> list[Path]:
    """Every TrueType / OpenType font file under the usual folders, sorted by path."""
    found = [p for folder in FONT_FOLDERS if folder.is_dir() for p in folder.rglob("*")
             if p.suffix.lower() in (".ttf", ".otf")]
    return sorted(found)


def typed(digit: int, font: Path) -> Image.Image:
    """A digit typed in a font, black on white."""
    face = ImageFont.truetype(str(font), 200)
    page = Image.new("L", (PAGE, PAGE), 255)
    ImageDraw.Draw(page).text((PAGE / 2, PAGE / 2), str(digit), fill=0, font=face, anchor="mm")
    return page


def drawn(strokes: list[list[tuple[float, float]]], pen: float, rng: np.random.Generator) -> Image.Image:
    """Strokes drawn with a round pen on the drawing pad's page, with a random slant, size and wobble."""
    slant, height = rng.uniform(-0.35, 0.35), rng.uniform(0.55, 0.8) * PAGE
    width_ratio = rng.uniform(0.45, 0.85)
    top, left = (PAGE - height) / 2, PAGE / 2 - height * width_ratio / 2
    page = Image.new("L", (PAGE, PAGE), 255)
    draw = ImageDraw.Draw(page)
    radius = max(1.0, pen * height / 2)
    for stroke in strokes:
        wobble = rng.normal(0, 0.02, (len(stroke), 2))
        points = [(left + (x + wx + slant * (0.5 - y)) * height * width_ratio, top + (y + wy) * height)
                  for (x, y), (wx, wy) in zip(stroke, wobble)]
        draw.line(points, fill=0, width=int(round(2 * radius)), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    return page


def pictures(seed: int = 0, repeats: int = 5) -> list[tuple[Image.Image, int, str]]:
    """(picture, digit, kind) for every font and every drawn style × pen × `repeats` random slants and sizes."""
    rng = np.random.default_rng(seed)
    made = [(typed(d, font), d, f"font {font.stem}") for font in fonts() for d in range(10)]
    for digit, styles in STYLES.items():
        for style, strokes in styles.items():
            for pen, width in PENS.items():
                made += [(drawn(strokes, width, rng), digit, f"drawn {style} {digit}, {pen} pen")
                         for _ in range(repeats)]
    return made


def evaluate(model, seed: int = 0) -> dict:
    """Accuracy on the typed and the drawn digits, overall and per kind, and the fonts used: evaluation.json's
    "other_writers" entry. `model` is a ViT; each picture goes through vit.preprocess as the app's do."""
    made = pictures(seed)
    inputs = torch.stack([to_model_input(picture) for picture, _, _ in made])
    labels = torch.tensor([digit for _, digit, _ in made])
    model.eval()
    with torch.inference_mode():
        right = (model(inputs[:, None]).argmax(-1) == labels).tolist()
    typed_right = [r for r, (_, _, kind) in zip(right, made) if kind.startswith("font")]
    drawn_right = [r for r, (_, _, kind) in zip(right, made) if kind.startswith("drawn")]
    misses: dict[str, int] = {}
    for r, (_, _, kind) in zip(right, made):
        if not r:
            misses[kind] = misses.get(kind, 0) + 1
    share = lambda values: sum(values) / len(values) if values else None  # noqa: E731
    return {"typed": share(typed_right), "typed_count": len(typed_right), "drawn": share(drawn_right),
            "drawn_count": len(drawn_right), "all": share(right), "misses": misses,
            "fonts": [font.stem for font in fonts()], "seed": seed}
