"""No text of a figure is cut off, hidden under the picture's buttons or drawn over another text: every Figure
function of vit.plots is built from the committed models (and their longest labels: the garments' class names, the
zoo's names), drawn with Agg, and the box of every text actually drawn (titles, tick labels, axis labels, legends,
annotations) is measured."""

import inspect
import typing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vit import ViT, analysis, faithfulness, plots, tiling
from vit.bundle import load_folder
from vit.tiling import cut_words
from vit.walk import walk

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
FOLDERS = {"mnist": "mnist", "mnist-tiny": "mnist-tiny", "fashion-mnist": "fashion/fashion-mnist",
           "fashion-mnist-tiny": "fashion/fashion-mnist-tiny", **{name: f"zoo/{name}" for name in (
               "horizontal-strips-2", "tiles-4", "tiles-7-no-positions", "tiles-7-sinusoidal", "vertical-strips-2")}}
TOLERANCE = 1.0  # pixels: anti-aliasing may touch the edge or a neighbour's box
# The picture's fullscreen and download buttons cover its top-right 46 × 22 screen pixels (measured in Chromium);
# a figure beside another (the filter components at 1280 px) is shown at 0.68 of its size: 70 × 30 figure pixels.
BUTTONS = (70, 30)


# --- Measuring the texts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlacedText:
    """A text as drawn: its string and the corners of its (possibly rotated) box in canvas pixels, (4, 2)."""
    text: str
    corners: np.ndarray

    def __str__(self) -> str:
        low, high = self.corners.min(axis=0), self.corners.max(axis=0)
        return f"{self.text!r} at x {low[0]:.0f}–{high[0]:.0f}, y {low[1]:.0f}–{high[1]:.0f} px"


def _corners(text, renderer) -> np.ndarray:
    """The four corners of a text's box. A rotated text's window extent is the axis-aligned box around it,
    larger than the letters: the box is rebuilt from the unrotated size about the same centre."""
    extent = text.get_window_extent(renderer)
    angle = text.get_rotation()
    if angle % 90 == 0:
        return np.array([[extent.x0, extent.y0], [extent.x1, extent.y0], [extent.x1, extent.y1],
                         [extent.x0, extent.y1]])
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(angle)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [flat.width / 2, flat.height / 2]
    turn = np.radians(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return half @ rotation.T + [(extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2]


def drawn_texts(figure: Figure) -> tuple[list[PlacedText], tuple[int, int]]:
    """Every non-empty text the Agg renderer draws (a tick outside the view or an axes switched off draws none),
    and the canvas size (width, height)."""
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    drawn, draw_text = {}, renderer.draw_text

    def recording(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn[id(mtext)] = mtext
        return draw_text(gc, x, y, s, prop, angle, ismath, mtext)
    renderer.draw_text = recording
    canvas.draw()
    renderer.draw_text = draw_text
    return [PlacedText(text.get_text(), _corners(text, renderer)) for text in drawn.values()], \
        canvas.get_width_height()


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two convex boxes (4, 2) share more than TOLERANCE pixels: no edge direction separates them."""
    for polygon in (a, b):
        for edge in np.diff(np.vstack([polygon, polygon[:1]]), axis=0):
            normal = np.array([-edge[1], edge[0]]) / max(np.hypot(*edge), 1e-9)
            on_a, on_b = a @ normal, b @ normal
            if min(on_a.max(), on_b.max()) - max(on_a.min(), on_b.min()) <= TOLERANCE:
                return False
    return True


def text_problems(name: str, figure: Figure) -> list[str]:
    """Each text that leaves the canvas or sits under the picture's buttons, and each pair of texts drawn over
    each other, in words."""
    texts, (width, height) = drawn_texts(figure)
    problems = [f"{name}: {placed} leaves the {width}×{height} canvas" for placed in texts
                if (placed.corners < -TOLERANCE).any() or (placed.corners[:, 0] > width + TOLERANCE).any()
                or (placed.corners[:, 1] > height + TOLERANCE).any()]
    problems += [f"{name}: {placed} sits under the picture's buttons (top right of the {width}×{height} canvas)"
                 for placed in texts if placed.corners[:, 0].max() > width - BUTTONS[0]
                 and placed.corners[:, 1].max() > height - BUTTONS[1]]  # y counts up from the bottom
    for index, first in enumerate(texts):
        problems += [f"{name}: {first} overlaps {second}" for second in texts[index + 1:]
                     if overlap(first.corners, second.corners)]
    return problems


# --- The figures, built as the tabs build them --------------------------------------------------------------

@pytest.fixture(scope="module")
def bundles() -> dict:
    loaded = {name: load_folder(WEIGHTS / folder) for name, folder in FOLDERS.items()}
    for bundle in loaded.values():
        bundle.model.eval().requires_grad_(False)
    return loaded


def uniform_distance(vit) -> float:
    tokens = vit.num_tiles + 1
    return float(analysis.attention_distance(torch.full((tokens, tokens), 1 / tokens), vit.grid, vit.piece))


def distance_figure(bundle):
    vit = bundle.model
    return plots.attention_distance_figure(analysis.mean_attention_distance(vit, bundle.examples()[0][:50]),
                                           uniform_distance(vit), cut_words(vit.cut, vit.tile_size))


def labels_figure(bundle, labels, view="matrix", difference=False):
    images, stored = bundle.examples()
    chosen = torch.isin(stored, torch.tensor(labels))  # a few images per label keeps it quick; the text is the same
    images, stored = images[chosen][::3], stored[chosen][::3]
    maps = analysis.median_attention_by_label(bundle.model, images, stored, labels)
    return plots.attention_by_label_figure(maps, bundle.class_names, view, difference, bundle.model.grid)


def lens_figure(bundle, label: int):
    steps = walk(bundle.model, torch.from_numpy(bundle.example(label).input), bundle.temperature)
    probabilities = torch.softmax(steps.lens / steps.temperature, dim=1)
    return plots.logit_lens_figure(probabilities, bundle.class_names, label)


def perturbation_figure(bundle, label: int):
    result = faithfulness.picture_test(bundle.model, torch.from_numpy(bundle.example(label).input), label,
                                       bundle.temperature)
    return plots.perturbation_figure(result["steps"], result["deletion"], result["insertion"],
                                     bundle.class_names[label])


def tiling_figure(bundle, kind: str, size: int):
    cut = {"tiles": tiling.tiles, "horizontal": tiling.horizontal_strips, "vertical": tiling.vertical_strips}[kind]
    image = bundle.example(9).input  # an ankle boot for the garments
    return plots.tiling_figure(image, cut(torch.from_numpy(image)[None, None], size)[0], kind)


def zoo_figure(bundles):
    zoo = [bundles[name] for name, folder in FOLDERS.items() if folder.startswith("zoo/")]
    return plots.zoo_figure([b.name for b in zoo], [analysis.positional_similarity(b.model) for b in zoo],
                            [analysis.mean_attention_distance(b.model, b.examples()[0][:50]) for b in zoo],
                            [uniform_distance(b.model) for b in zoo])


def reliability(bundle):
    calibration = bundle.evaluation.calibration
    return plots.reliability_figure(asdict(calibration.before), asdict(calibration.after))


def randomisation(bundle):
    stored = bundle.evaluation.faithfulness.randomisation
    return plots.randomisation_figure(stored.stages, stored.methods)


# function name -> {case: builder(bundles) -> Figure}: the worst cases the app can ask for
# A watched run's reports (vit.live), every two seconds: loss falling, accuracy rising
LIVE = [{"seconds": 2.0 * i, "train_loss": 2.3 / i, "val_accuracy": 1 - 0.9 / i} for i in range(1, 6)]

def selective(sets):
    return plots.risk_coverage_figure(sets.coverage, sets.risk, sets.accepted, sets.risk_accepted, sets.aurc)


CASES = {
    "tiling_figure": {f"{kind} {size}": (lambda b, kind=kind, size=size: tiling_figure(b["fashion-mnist"], kind, size))
                      for kind in ("tiles", "horizontal", "vertical") for size in tiling.divisors(28)},
    "confusion_figure": {name: (lambda b, name=name: plots.confusion_figure(
        b[name].confusion, b[name].accuracy, b[name].class_names, (4, 9))) for name in ("mnist", "fashion-mnist")}
    | {"taught: 5 symbols, the longest names": lambda b: plots.confusion_figure(  # vit.teach's limits
        np.diag([12] * 5) + 1, 0.8, [f"{index} a symbol's long name".ljust(24, "x") for index in range(5)], (1, 2),
        measure="held-out accuracy", counted="drawings")},
    "training_figure": {**{name: (lambda b, name=name: plots.training_figure(b[name].history))
                           for name in ("mnist", "fashion-mnist", "mnist-tiny")},
                        "no history": lambda b: plots.training_figure([])},
    "live_figure": {"first report": lambda b: plots.live_figure(LIVE[:1], 120),
                    "a whole run": lambda b: plots.live_figure(LIVE, 10),
                    "a loss of hundreds": lambda b: plots.live_figure([{**r, "train_loss": 300.0} for r in LIVE], 60)},
    "risk_coverage_figure": {
        **{name: (lambda b, name=name: selective(b[name].evaluation.proxies)) for name in ("mnist", "mnist-tiny")},
        "a perfect model": lambda b: plots.risk_coverage_figure([0, 0.5, 1], [0, 0, 0], 1.0, 0.0, 0.0),
        "every answer wrong": lambda b: plots.risk_coverage_figure([0, 0.5, 1], [1, 1, 1], 0.999, 1.0, 1.0)},
    "reliability_figure": {name: (lambda b, name=name: reliability(b[name]))
                           for name in ("mnist", "fashion-mnist", "mnist-tiny", "vertical-strips-2")},
    "positional_similarity_figure": {name: (lambda b, name=name: plots.positional_similarity_figure(
        analysis.positional_similarity(b[name].model), b[name].model.grid))
        for name in ("mnist", "mnist-tiny", "horizontal-strips-2")},
    "strip_similarity_figure": {name: (lambda b, name=name, direction=direction: plots.strip_similarity_figure(
        analysis.positional_similarity(b[name].model).numpy(), direction))
        for name, direction in (("horizontal-strips-2", "row"), ("vertical-strips-2", "column"))},
    "embedding_matrix_figure": {name: (lambda b, name=name: plots.embedding_matrix_figure(
        b[name].model.pos_embedding[0])) for name in ("mnist", "mnist-tiny", "vertical-strips-2")},
    "attention_by_label_figure": {
        "fashion 10 labels": lambda b: labels_figure(b["fashion-mnist"], list(range(10))),
        "fashion 3 labels cls difference": lambda b: labels_figure(b["fashion-mnist"], [0, 6, 9], "cls", True),
        "fashion 1 label cls": lambda b: labels_figure(b["fashion-mnist"], [9], "cls"),
        "mnist-tiny 3 labels": lambda b: labels_figure(b["mnist-tiny"], [3, 7, 8]),
        "strips cls": lambda b: labels_figure(b["horizontal-strips-2"], [3, 7, 8], "cls"),
        "no label": lambda b: plots.attention_by_label_figure({}, b["mnist"].class_names)},
    "filter_components_figure": {
        **{name: (lambda b, name=name: plots.filter_components_figure(*analysis.filter_components(b[name].model)))
           for name in ("fashion-mnist", "mnist-tiny", "horizontal-strips-2", "vertical-strips-2")},
        "4 components of 2×2 tiles": lambda b: plots.filter_components_figure(*analysis.filter_components(
            ViT(tile_size=2, embed_size=8, num_layers=1, num_heads=1, mlp_size=8)))},
    "attention_distance_figure": {name: (lambda b, name=name: distance_figure(b[name]))
                                  for name in ("mnist", "mnist-tiny", "horizontal-strips-2")},
    "logit_lens_figure": {f"{name} {label}": (lambda b, name=name, label=label: lens_figure(b[name], label))
                          for name, label in (("fashion-mnist", 0), ("fashion-mnist", 9), ("mnist", 7))},
    "perturbation_figure": {f"{name} {label}": (lambda b, name=name, label=label:
                                                perturbation_figure(b[name], label))
                            for name, label in (("fashion-mnist-tiny", 0), ("fashion-mnist-tiny", 9),
                                                ("mnist-tiny", 7))},
    "randomisation_figure": {name: (lambda b, name=name: randomisation(b[name])) for name in ("mnist", "mnist-tiny")},
    "zoo_figure": {"the zoo": zoo_figure},
}


def figure_functions() -> set[str]:
    """Every public function of vit.plots that returns a Figure."""
    return {name for name, function in inspect.getmembers(plots, inspect.isfunction)
            if function.__module__ == plots.__name__ and not name.startswith("_")
            and (name.endswith("_figure") or typing.get_type_hints(function).get("return") is Figure)}


def test_every_figure_function_is_measured():
    assert set(CASES) == figure_functions(), "add the new figure function's worst cases to CASES"


@pytest.mark.parametrize("function, case", [(function, case) for function, cases in CASES.items() for case in cases])
def test_no_text_is_cut_off_hidden_or_drawn_over_another(bundles, function, case):
    figure = CASES[function][case](bundles)
    problems = text_problems(f"{function} ({case})", figure)
    assert not problems, "\n".join(problems)


# --- The measure itself -------------------------------------------------------------------------------------

def test_the_measure_finds_a_text_off_the_canvas_under_the_buttons_and_on_another():
    figure = Figure(figsize=(3, 2), dpi=100)
    figure.text(0.5, 0.5, "here", ha="center")
    figure.text(0.52, 0.52, "there", ha="center")  # on "here"
    figure.text(0.98, 0.1, "half outside")
    figure.text(0.97, 0.97, "8: 6 %", ha="right", va="top")  # the filter components' last title, as it was
    problems = text_problems("test", figure)
    assert len(problems) == 3
    assert "'half outside'" in problems[0] and "leaves the 300×200 canvas" in problems[0]
    assert "'8: 6 %'" in problems[1] and "under the picture's buttons" in problems[1]
    assert "'here'" in problems[2] and "'there'" in problems[2]


def test_the_measure_uses_the_letters_box_of_a_rotated_text():
    """Two 45° labels side by side: their upright boxes overlap, the letters do not."""
    figure = Figure(figsize=(3, 2), dpi=100)
    for x in (0.4, 0.55):
        figure.text(x, 0.3, "Ankle boot", rotation=45, rotation_mode="anchor")
    texts, _ = drawn_texts(figure)
    upright = [placed.corners for placed in texts]
    boxes = [np.array([[c[:, 0].min(), c[:, 1].min()], [c[:, 0].max(), c[:, 1].min()],
                       [c[:, 0].max(), c[:, 1].max()], [c[:, 0].min(), c[:, 1].max()]]) for c in upright]
    assert overlap(*boxes) and not overlap(*upright)
    assert text_problems("test", figure) == []
