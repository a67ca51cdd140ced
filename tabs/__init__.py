"""The app's tabs, one module each: pure views first (a model and the visitor's choices in; pictures,
Markdown and data out), then the handlers the events call, then `build`, which lays the tab out, wires its
own events and says what it shows for a model (shared.TabWiring)."""

from . import about, compare, confusion, labels, positions, predict, teach, tiling, train, trust, walk, worst
from .shared import Context, TabWiring

# In the order they appear.
TABS = (tiling, predict, walk, trust, confusion, worst, positions, labels, compare, train, teach, about)
OPEN_IN_PREDICT = (confusion, worst)  # tabs that open a stored test image in the Predict tab


def build_tabs(context: Context, first) -> list[TabWiring]:
    """Lay out every tab in order; the tabs that open a picture in Predict are given where Predict shows one."""
    wirings, display = [], None
    for tab in TABS:
        if tab is predict:
            wiring, display = predict.build(context, first)
        elif tab in OPEN_IN_PREDICT:
            wiring = tab.build(context, first, display)
        else:
            wiring = tab.build(context, first)
        wirings.append(wiring)
    return wirings
