"""The app's tabs, one module each: pure views first (a model and the visitor's choices in; pictures,
Markdown and data out), then the handlers the events call, then `build`, which lays the tab out, wires its
own events and says what it shows for a model (shared.TabWiring)."""

from . import about, compare, confusion, labels, positions, predict, tiling, trust, walk, worst

# In the order they appear. Predict comes before the tabs that send a picture to it or read its picture.
TABS = (tiling, predict, walk, trust, confusion, worst, positions, labels, compare, about)
