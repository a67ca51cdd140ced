"""The things drawn for the non-digit set, each as strokes in a unit box (y downwards): letters no reader takes for
a digit, signs, doodles and scribbles. Letters that look like digits (O, I, l, S, Z, B, G, b, g, q, T, J) and
signs that do ($, which reads as S or 5) are left out on purpose.
"""

from typing import Callable

import numpy as np

from .strokes import arc, curve, join, line

Shape = list[np.ndarray]


def _hump(left: float, right: float, top: float = 0.4, bottom: float = 1.0) -> np.ndarray:
    """An arch from the stem at `left` down to `bottom` at `right`, as in n, m and h."""
    return join(curve((left, top + 0.2), (left + 0.3 * (right - left), top), (right - 0.1 * (right - left), top + 0.05),
                      (right, top + 0.25)), line((right, top + 0.25), (right, bottom)))


CAPITALS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "A": lambda rng: [line((0.1, 1), (0.5, 0), (0.9, 1)), line((0.28, 0.6), (0.72, 0.6))],
    "E": lambda rng: [line((0.8, 0), (0.2, 0), (0.2, 1), (0.8, 1)), line((0.2, 0.5), (0.68, 0.5))],
    "F": lambda rng: [line((0.8, 0), (0.2, 0), (0.2, 1)), line((0.2, 0.48), (0.65, 0.48))],
    "H": lambda rng: [line((0.2, 0), (0.2, 1)), line((0.8, 0), (0.8, 1)), line((0.2, 0.5), (0.8, 0.5))],
    "K": lambda rng: [line((0.2, 0), (0.2, 1)), line((0.8, 0), (0.2, 0.58)), line((0.38, 0.44), (0.85, 1))],
    "M": lambda rng: [line((0.08, 1), (0.15, 0), (0.5, 0.65), (0.85, 0), (0.92, 1))],
    "N": lambda rng: [line((0.2, 1), (0.2, 0), (0.8, 1), (0.8, 0))],
    "R": lambda rng: [line((0.2, 1), (0.2, 0)),
                      join(line((0.2, 0), (0.55, 0)), arc((0.55, 0.25), (0.27, 0.25), -90, 90),
                           line((0.55, 0.5), (0.2, 0.5))),
                      line((0.45, 0.5), (0.85, 1))],
    "W": lambda rng: [line((0.02, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (0.98, 0))],
    "X": lambda rng: [line((0.15, 0), (0.85, 1)), line((0.85, 0), (0.15, 1))],
    "Y": lambda rng: [line((0.12, 0), (0.5, 0.5)), line((0.88, 0), (0.5, 0.5), (0.5, 1))],
}

SMALL: dict[str, Callable[[np.random.Generator], Shape]] = {
    "a": lambda rng: [join(arc((0.72, 0.55), (0.3, 0.2), -60, -180), arc((0.45, 0.75), (0.28, 0.25), 180, 60),
                           line((0.6, 0.95), (0.72, 0.6), (0.75, 1.0)))],
    "e": lambda rng: [join(line((0.2, 0.7), (0.78, 0.7)), arc((0.5, 0.7), (0.28, 0.3), 0, -310))],
    "h": lambda rng: [line((0.2, 0), (0.2, 1)), _hump(0.2, 0.75)],
    "k": lambda rng: [line((0.25, 0), (0.25, 1)), line((0.72, 0.4), (0.25, 0.75), (0.78, 1))],
    "m": lambda rng: [line((0.1, 0.4), (0.1, 1)), _hump(0.1, 0.48), _hump(0.48, 0.88)],
    "n": lambda rng: [line((0.2, 0.4), (0.2, 1)), _hump(0.2, 0.8)],
    "r": lambda rng: [line((0.3, 0.4), (0.3, 1)), curve((0.3, 0.62), (0.42, 0.44), (0.62, 0.38), (0.8, 0.45))],
    "w": lambda rng: [line((0.05, 0.4), (0.27, 1), (0.5, 0.55), (0.73, 1), (0.95, 0.4))],
    "x": lambda rng: [line((0.2, 0.4), (0.8, 1)), line((0.8, 0.4), (0.2, 1))],
    "y": lambda rng: [line((0.2, 0.4), (0.52, 0.85)), curve((0.8, 0.4), (0.5, 1.05), (0.35, 1.3), (0.2, 1.3))],
}


def _arrow(rng: np.random.Generator) -> Shape:
    return [line((0.0, 0.5), (1.0, 0.5)), line((0.72, 0.25), (1.0, 0.5), (0.72, 0.75))]  # turned by the hand


SIGNS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "plus": lambda rng: [line((0.5, 0.05), (0.5, 0.95)), line((0.05, 0.5), (0.95, 0.5))],
    "equals": lambda rng: [line((0.05, 0.38), (0.95, 0.38)), line((0.05, 0.68), (0.95, 0.68))],
    "hash": lambda rng: [line((0.4, 0), (0.3, 1)), line((0.72, 0), (0.62, 1)), line((0.08, 0.33), (0.95, 0.33)),
                         line((0.05, 0.66), (0.92, 0.66))],
    "question mark": lambda rng: [join(arc((0.5, 0.25), (0.28, 0.22), 190, 380), curve((0.77, 0.3), (0.5, 0.5),
                                                                                  (0.5, 0.72))),
                                  line((0.5, 0.93), (0.51, 0.95))],
    "ampersand": lambda rng: [curve((0.9, 1.0), (0.45, 0.5), (0.3, 0.25), (0.45, 0.02), (0.62, 0.2), (0.5, 0.4),
                                    (0.18, 0.65), (0.3, 0.97), (0.62, 0.9), (0.88, 0.6))],
    "at sign": lambda rng: [arc((0.5, 0.5), (0.16, 0.2), 0, 360), join(line((0.66, 0.3), (0.66, 0.65)),
                                                                      arc((0.5, 0.5), (0.46, 0.46), 20, -300))],
    "percent": lambda rng: [line((0.85, 0.02), (0.15, 0.98)), arc((0.22, 0.2), (0.14, 0.16), 0, 360),
                            arc((0.78, 0.8), (0.14, 0.16), 0, 360)],
    "arrow": _arrow,
    "check mark": lambda rng: [line((0.05, 0.55), (0.33, 0.92), (0.95, 0.05))],
}


def _cloud(rng: np.random.Generator) -> Shape:
    angles = np.radians(np.linspace(0, 360, 240))
    bumps = 1 + 0.14 * np.abs(np.sin(angles * rng.integers(3, 6)))
    return [np.stack([0.5 + 0.5 * bumps * np.cos(angles), 0.5 + 0.3 * bumps * np.sin(angles)], axis=1)]


def _sun(rng: np.random.Generator) -> Shape:
    rays = rng.integers(7, 11)
    spokes = [line((0.5 + 0.32 * np.cos(a), 0.5 + 0.32 * np.sin(a)), (0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)))
              for a in np.linspace(0, 2 * np.pi, rays, endpoint=False)]
    return [arc((0.5, 0.5), (0.22, 0.22), 0, 360)] + spokes


def _spiral(rng: np.random.Generator) -> Shape:
    turns = rng.uniform(2.2, 3.5)
    angle = np.linspace(0, 2 * np.pi * turns, 300)
    radius = 0.5 * angle / angle[-1]
    return [np.stack([0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)], axis=1)]


def _zigzag(rng: np.random.Generator) -> Shape:
    teeth = rng.integers(4, 8)
    xs = np.linspace(0, 1, teeth + 1)
    return [np.stack([xs, 0.35 + 0.3 * (np.arange(teeth + 1) % 2)], axis=1)]


def _wave(rng: np.random.Generator) -> Shape:
    xs = np.linspace(0, 1, 200)
    return [np.stack([xs, 0.5 + 0.15 * np.sin(2 * np.pi * rng.uniform(1.5, 3) * xs)], axis=1)]


def _star(rng: np.random.Generator) -> Shape:
    corners = [(0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in np.radians(-90 + 144 * np.arange(6))]
    return [line(*corners)]


DOODLES: dict[str, Callable[[np.random.Generator], Shape]] = {
    "smiley": lambda rng: [arc((0.5, 0.5), (0.48, 0.48), 0, 360), line((0.35, 0.33), (0.35, 0.4)),
                           line((0.65, 0.33), (0.65, 0.4)), arc((0.5, 0.52), (0.24, 0.2), 20, 160)],
    "heart": lambda rng: [curve((0.5, 0.28), (0.28, 0.05), (0.05, 0.25), (0.15, 0.6), (0.5, 0.95), (0.85, 0.6),
                                (0.95, 0.25), (0.72, 0.05), (0.5, 0.28))],
    "star": _star,
    "house": lambda rng: [line((0.15, 0.45), (0.15, 1), (0.85, 1), (0.85, 0.45), (0.15, 0.45)),
                          line((0.05, 0.5), (0.5, 0.05), (0.95, 0.5)), line((0.42, 1), (0.42, 0.72), (0.58, 0.72),
                                                                            (0.58, 1))],
    "sun": _sun,
    "spiral": _spiral,
    "zigzag": _zigzag,
    "wave": _wave,
    "cloud": _cloud,
    "tree": lambda rng: [line((0.42, 1), (0.44, 0.55)), line((0.58, 1), (0.56, 0.55)),
                         curve((0.44, 0.55), (0.12, 0.5), (0.15, 0.15), (0.5, 0.0), (0.85, 0.15), (0.88, 0.5),
                               (0.56, 0.55))],
    "fish": lambda rng: [join(arc((0.45, 0.9), (0.4, 0.6), -125, -55), line((0.7, 0.4), (1.0, 0.2), (1.0, 0.8),
                                                                          (0.7, 0.6)), arc((0.45, 0.1), (0.4, 0.6),
                                                                                           55, 125)),
                         line((0.25, 0.45), (0.26, 0.47))],
}


def _scribble(rng: np.random.Generator) -> Shape:
    return [curve(*rng.uniform(0, 1, (rng.integers(8, 16), 2)))]


def _two_strokes(rng: np.random.Generator) -> Shape:
    return [curve(*rng.uniform(0, 1, (rng.integers(2, 4), 2))) for _ in range(2)]


def _cross_hatch(rng: np.random.Generator) -> Shape:
    count = rng.integers(4, 7)
    offsets = np.linspace(0, 1, count)
    return ([line((o - 0.3, 0), (o + 0.3, 1)) for o in offsets]
            + [line((o + 0.3, 0), (o - 0.3, 1)) for o in offsets[:: 1 + rng.integers(0, 2)]])


SCRIBBLES: dict[str, Callable[[np.random.Generator], Shape]] = {
    "scribble": _scribble, "two strokes": _two_strokes, "cross-hatch": _cross_hatch,
}

GROUPS = {"letter": {f"capital {k}": v for k, v in CAPITALS.items()} | {f"small {k}": v for k, v in SMALL.items()},
          "sign": SIGNS, "doodle": DOODLES, "scribble": SCRIBBLES}
KINDS: dict[str, tuple[str, Callable[[np.random.Generator], Shape]]] = {
    kind: (group, make) for group, shapes in GROUPS.items() for kind, make in shapes.items()}
