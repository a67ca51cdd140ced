"""What every tab uses: class menus, how a tab is wired in, and small picture and text helpers.

The models come from vit.registry: handlers name a model by its menu name and look it up there, so each handler
is a plain module-level function. The visitor's current picture is tabs.picture's.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
from PIL import Image

from vit import pictures
from vit.analysis import filter_components
from vit.bundle import ModelBundle
from vit.pictures import plural
from vit.registry import bundle, cached, model_names
from vit.tiling import cut_words

from .glossary import term


ROOT = Path(__file__).resolve().parent.parent

class _ClassMenu:
    """A menu of a model's classes. A model switch gives it the new model's classes, but a redraw the page sent
    just before can still carry an old one (a "7" once the menu lists garments): gradio would refuse it with an
    error toast, so it is passed on as it is and the tab's view falls back to the model's own classes."""

    def get_block_name(self) -> str:
        gradio_base = next(base for base in type(self).__mro__ if base.__module__.startswith("gradio"))
        return gradio_base.__name__.lower()  # the name picks the Svelte component: gradio's own draws it

    def preprocess(self, payload):
        choices = [value for _, value in self.choices]
        if any(value not in choices for value in (payload if isinstance(payload, list) else [payload])):
            return payload
        return super().preprocess(payload)


class ClassRadio(_ClassMenu, gr.Radio):
    """A radio of a model's classes (see _ClassMenu)."""


class ClassDropdown(_ClassMenu, gr.Dropdown):
    """A dropdown of a model's classes (see _ClassMenu)."""


class ClassBoxes(_ClassMenu, gr.CheckboxGroup):
    """Tick boxes of a model's classes (see _ClassMenu)."""


@dataclass
class TabWiring:
    """What a tab shows for a model, so that one model-switch listener can update every tab.

    A lazy tab (matplotlib figures) is drawn when it opens; a model switch redraws it only while it is open.
    """
    id: str
    tab: object                    # the gr.Tab
    refresh: Callable[..., tuple]  # (model name, *inputs) -> a value per output
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    lazy: bool = False
    # Controls named after the model's classes (a label menu), set on every switch, open or not: a lazy tab
    # opened later must not offer the digits to a Fashion-MNIST model. (model name) -> a value per control.
    controls: Callable[[str], tuple] | None = None
    control_outputs: list = field(default_factory=list)
    # A gr.Walkthrough in the tab (the walk's): a shared link names its step (its Steps' elem_id is "walk-step-N")
    # and reopens it.
    walkthrough: object = None


@dataclass
class Context:
    """The app-level blocks a tab may use."""
    demo: object                         # the gr.Blocks, for its load event
    model_choice: object                 # gr.Dropdown of model names
    current: object                      # gr.State holding a Picture or None
    layout: object                       # gr.Tabs, to jump to the Predict tab
    own: object = None                   # gr.State: the visitor's own models, [(menu label, model name), ...]


def zipped(folder: Path) -> str:
    """A model folder a visitor made, as a zip written beside it (its download), the folder inside by its name."""
    return shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=folder.name)


def unused_label(label: str, own: list[tuple[str, str]] | None) -> str:
    """How the menu names a model the visitor made: `label`, numbered when one of theirs already has it, so that
    two runs or two lessons can be told apart."""
    taken, count, shown = {shown_label for shown_label, _ in own or []}, 2, label
    while shown in taken:
        shown, count = f"{label} ({count})", count + 1
    return shown


def menu_with(own: list[tuple[str, str]] | None, label: str, name: str) -> tuple[list, object]:
    """A model the visitor made joins their menu, chosen (so every tab explains it): (their own models with it, the
    menu's update). The menu lists the served models and then theirs; nobody else's menu changes."""
    own = [*(own or []), (label, name)]
    return own, gr.Dropdown(choices=[(served, served) for served in model_names()] + own, value=name)


def enlarged(pixels: np.ndarray, scale: int = 4) -> Image.Image:
    """A stored uint8 (28, 28) test image, enlarged without blurring, for galleries."""
    array = np.asarray(pixels, dtype=np.uint8)
    return Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.NEAREST)


def captioned(pixels: np.ndarray, caption: str) -> Image.Image:
    """A stored test image enlarged with its caption written under it: a gallery's own caption would cover the
    lower third of the digit, the part that tells a 4 from a 9."""
    digit = np.asarray(enlarged(pixels).convert("RGB"))
    return Image.fromarray(pictures.captioned(digit, caption))


def shown_source(source: str) -> str:
    """A Hub "repo@revision" as is; a bundled folder relative to the app, e.g. weights/mnist."""
    try:
        return str(Path(source).resolve().relative_to(ROOT))
    except ValueError:
        return source


def model_summary(bundle: ModelBundle) -> str:
    """One line about the model, for the header and the About tab."""
    model = bundle.model
    parameters = model.parameter_count
    measured = (term('held-out drawings', 'accuracy on held-out drawings') if bundle.evaluation.taught else
                term('test split', 'test accuracy'))
    accuracy = f" · {measured} **{bundle.accuracy * 100:.2f} %**" if bundle.accuracy is not None else ""
    return (f"**{bundle.name}**: {cut_words(model.cut, model.tile_size)} → {model.num_tiles} words + "
            f"{term('CLS token', 'CLS')} = "
            f"{term('token', plural(model.num_tiles + 1, 'token'))} · "
            f"{term('block', plural(model.num_layers, 'block'))} × {term('head', plural(model.num_heads, 'head'))} · "
            f"{term('parameters', f'{parameters:,} parameters')}"
            f"{accuracy}  \nsource: `{shown_source(bundle.source)}`")


@cached(maxsize=None)
def components_picture(model_name: str) -> np.ndarray:
    """Figure 7 left (the principal components of the tile filters), drawn once per model: the What-it-learned
    tab and the walk's step 2 both show it."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    return plots.render(plots.filter_components_figure(*filter_components(bundle(model_name).model)))


def components_alt(model_name: str) -> str:
    """components_picture in words: how many patterns, their size, and how much of the filters' variance they hold."""
    vit = bundle(model_name).model
    components, share = filter_components(vit)
    return (f"The {len(share)} patterns the {vit.tile_embedding.weight.shape[0]} tile filters vary along most (their "
            f"principal components), each {components.shape[-2]}×{components.shape[-1]} pixels: the first holds "
            f"{float(share[0]) * 100:.0f} % of the filters' variance, the first three "
            f"{float(share[:3].sum()) * 100:.0f} %.")
