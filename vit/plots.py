"""Pictures of what the Vision Transformer sees and learned, as matplotlib Figures.

Every function takes analysis results (tensors or arrays) and returns a `matplotlib.figure.Figure`
built directly, without pyplot, so nothing is shared between the app's visitors; `render` turns a
Figure into pixels and releases it. Grids of small maps (layers x heads, positions x positions) are
drawn as one mosaic image instead of dozens of subplots: one imshow draws many times faster.
"""

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, PowerNorm, TwoSlopeNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogFormatter, MaxNLocator

from .pictures import plural

DPI = 100
TITLE, LABEL, SMALL = 12, 10, 8           # font sizes in points
CUT_COLOUR, CLS_COLOUR = "#ff5a36", "#ffc43d"
GAP_COLOUR = "#c6d5e3"                    # between mosaic cells: neither ink (white) nor background (black)


def as_array(values) -> np.ndarray:
    """A float numpy copy of a tensor or array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.array(values, dtype=float)


def render(figure: Figure, boxes: bool = False):
    """Draw a Figure into an RGB uint8 array (H, W, 3) and release it.

    With boxes=True also return each axes' pixel box (left, top, right, bottom), top-left origin,
    so a click on the picture can be mapped back to the data (the confusion matrix cells).
    """
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    height = image.shape[0]
    axes_boxes = [(box.x0, height - box.y1, box.x1, height - box.y0)
                  for box in (ax.get_window_extent() for ax in figure.axes)]
    figure.clear()  # drop the artists now rather than whenever the garbage collector runs
    return (image, axes_boxes) if boxes else image


def mosaic(cells: np.ndarray, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Lay out cells (R, C, h, w[, 3]) as one image with `gap` pixels of `fill` between them."""
    rows, cols, height, width = cells.shape[:4]
    out = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap, *cells.shape[4:]), fill)
    for r in range(rows):
        for c in range(cols):
            top, left = r * (height + gap), c * (width + gap)
            out[top:top + height, left:left + width] = cells[r, c]
    return out


def _cell_ticks(ax, count_x: int, count_y: int, size_x: int, size_y: int, gap: int,
                x_name: str, y_name: str) -> None:
    """Label a mosaic's columns and rows (1-based) at the cell centres."""
    ax.set_xticks([i * (size_x + gap) + (size_x - 1) / 2 for i in range(count_x)],
                  [f"{x_name} {i + 1}" if count_x <= 8 else str(i + 1) for i in range(count_x)], fontsize=SMALL)
    ax.set_yticks([i * (size_y + gap) + (size_y - 1) / 2 for i in range(count_y)],
                  [f"{y_name} {i + 1}" if count_y <= 8 else str(i + 1) for i in range(count_y)], fontsize=SMALL)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_cuts(ax, image: np.ndarray, kind: str, piece_height: int, piece_width: int) -> None:
    """Lines where the image is cut, on an axes showing the image."""
    height, width = image.shape
    if kind in ("horizontal", "tiles"):
        for y in range(piece_height, height, piece_height):
            ax.axhline(y - 0.5, color=CUT_COLOUR, linewidth=1.2)
    if kind in ("vertical", "tiles"):
        for x in range(piece_width, width, piece_width):
            ax.axvline(x - 0.5, color=CUT_COLOUR, linewidth=1.2)


def _sentence_layout(count: int, height: int, width: int, gap: int, aspect: float) -> int:
    """How many pieces per line make a wrapped sequence look about `aspect` times wider than tall."""
    best, best_error = count, math.inf
    for per_line in range(1, count + 1):
        lines = math.ceil(count / per_line)
        ratio = (per_line * (width + gap)) / (lines * (height + gap))
        error = abs(math.log(ratio / aspect))
        if error < best_error:
            best, best_error = per_line, error
    return best


def tiling_figure(image, pieces, kind: str) -> Figure:
    """The image with its cuts, the pieces as a sequence of words after a CLS token, and the flattened pieces.

    image (H, W) in [0, 1]; pieces (N, h, w) or (N, 1, h, w) in reading order; kind: horizontal | vertical | tiles.
    """
    image, pieces = as_array(image), as_array(pieces)
    pieces = pieces.reshape(pieces.shape[0], pieces.shape[-2], pieces.shape[-1])  # (N, h, w)
    count, piece_height, piece_width = pieces.shape
    figure = Figure(figsize=(11, 4.6), dpi=DPI, layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=[1, 2.7], height_ratios=[1.6, 1])
    _cut_image(figure.add_subplot(grid[:, 0]), image, kind, pieces)
    _sentence(figure.add_subplot(grid[0, 1]), pieces)
    _flattened(figure.add_subplot(grid[1, 1]), pieces)
    names = {"horizontal": "horizontal strip", "vertical": "vertical strip", "tiles": "tile"}
    figure.suptitle(f"{plural(count, names[kind])} of {piece_height}×{piece_width} pixels", fontsize=TITLE)
    return figure


def _cut_image(ax, image: np.ndarray, kind: str, pieces: np.ndarray) -> None:
    """The image with its cuts drawn on it and, where they fit, each piece's number."""
    count, piece_height, piece_width = pieces.shape
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    _draw_cuts(ax, image, kind, piece_height, piece_width)
    if count <= 49 and min(piece_height, piece_width) >= 4:  # number the pieces where they sit in the image
        per_row = image.shape[1] // piece_width
        for index in range(count):  # in each piece's top-left corner, on a dark box: off the digit's ink
            row, col = divmod(index, per_row)
            ax.text(col * piece_width - 0.3, row * piece_height - 0.3, str(index + 1), color=CUT_COLOUR,
                    fontsize=SMALL - 1 if count > 16 else SMALL, ha="left", va="top",
                    bbox=dict(facecolor="black", alpha=0.65, pad=0.8, edgecolor="none"))
    ax.set_title("the image and its cuts", fontsize=LABEL)
    ax.set_axis_off()


def _sentence(ax, pieces: np.ndarray) -> None:
    """The sequence the transformer reads: CLS, then the pieces, wrapped like a line of text."""
    count, piece_height, piece_width = pieces.shape
    tokens = count + 1
    gap = max(1, min(piece_height, piece_width) // 3)
    per_line = _sentence_layout(tokens, piece_height, piece_width, gap, aspect=4.5)
    lines = math.ceil(tokens / per_line)
    cells = np.full((lines, per_line, piece_height, piece_width), np.nan)
    for token in range(1, tokens):
        cells[divmod(token, per_line)] = pieces[token - 1]
    words = colormaps["gray"](mosaic(cells, gap))[..., :3]  # NaN (gaps, CLS) -> the colour map's "bad"
    words[np.isnan(mosaic(cells, gap))] = to_rgb(GAP_COLOUR)
    last_line, last_place = divmod(tokens - 1, per_line)
    top = last_line * (piece_height + gap)
    words[top:top + piece_height, (last_place + 1) * (piece_width + gap) - gap:] = 1.0  # after the last word: white
    ax.imshow(words, interpolation="nearest")
    ax.add_patch(Rectangle((-0.5, -0.5), piece_width, piece_height, facecolor=CLS_COLOUR, edgecolor="none"))
    if piece_width >= 3 and piece_height >= 3:
        ax.text((piece_width - 1) / 2, (piece_height - 1) / 2, "CLS", ha="center", va="center",
                fontsize=SMALL, rotation=90 if piece_height > 2 * piece_width else 0)
    numbered = tokens <= 50
    if numbered:
        for token in range(1, tokens):
            line, place = divmod(token, per_line)
            ax.text(place * (piece_width + gap) + (piece_width - 1) / 2, line * (piece_height + gap) - 0.5,
                    str(token), ha="center", va="bottom", fontsize=SMALL - 1, color="#555555")
    # the first line's numbers stand above the image, where the title would sit: lift it over them
    ax.set_title(f"the sequence the transformer reads: CLS + {plural(count, 'word')} = {tokens} tokens",
                 fontsize=LABEL, pad=6 + 1.5 * (SMALL - 1) if numbered else 6)
    ax.set_axis_off()


def _flattened(ax, pieces: np.ndarray) -> None:
    """Each piece flattened into a column of pixel values, as the linear embedding reads it."""
    count = len(pieces)
    flat = pieces.reshape(count, -1).T  # (h*w, N): one column per piece
    ax.imshow(flat, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
              extent=(0.5, count + 0.5, flat.shape[0] + 0.5, 0.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if count <= 8:  # a few words: one tick each, never a half word
        ax.set_xticks(range(1, count + 1))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    if flat.shape[0] < 4:
        ax.set_yticks(range(1, flat.shape[0] + 1))
    numbers = f"{flat.shape[0]} numbers" if flat.shape[0] > 1 else "1 number"
    ax.set_title(f"flattened: each word becomes a column of {numbers}, which one linear layer turns into a token",
                 fontsize=LABEL)
    ax.set_xlabel("word", fontsize=SMALL)
    ax.set_ylabel("pixel", fontsize=SMALL)
    ax.tick_params(labelsize=SMALL)


def confusion_figure(matrix, accuracy: float, class_names: list[str],
                     selected: tuple[int, int] | None = None, *, measure: str = "test accuracy",
                     counted: str = "images") -> Figure:
    """Counts of (true, predicted) test pairs on a log colour scale; `selected` cell outlined. `measure` and
    `counted` name the accuracy and what is counted (a taught model's: its held-out drawings)."""
    matrix = as_array(matrix).astype(int)
    classes = len(class_names)
    figure = Figure(figsize=(6.4, 5.6), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    counts = np.ma.masked_equal(matrix, 0)  # log scale: empty cells are drawn blank
    norm = LogNorm(vmin=1, vmax=max(2, int(matrix.max())))
    image = ax.imshow(counts, cmap=colormaps["Blues"].with_extremes(bad="white"), norm=norm)
    for true in range(classes):
        for predicted in range(classes):
            count = matrix[true, predicted]
            if count:
                dark = norm(count) > 0.6
                ax.text(predicted, true, str(count), ha="center", va="center",
                        fontsize=SMALL if count < 1000 else SMALL - 1,
                        color="white" if dark else "#1d3557", fontweight="bold" if true == predicted else "normal")
    if selected is not None:
        true, predicted = selected
        ax.add_patch(Rectangle((predicted - 0.5, true - 0.5), 1, 1, fill=False, edgecolor=CUT_COLOUR, linewidth=2.5))
    slanted = max(map(len, class_names)) > 2  # a garment's whole name, slanted so that neighbours never meet
    ax.set_xticks(range(classes), class_names, fontsize=SMALL, rotation=45 if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor")
    ax.set_yticks(range(classes), class_names, fontsize=SMALL)
    ax.set_xlabel("predicted", fontsize=LABEL)
    ax.set_ylabel("true", fontsize=LABEL)
    ax.set_title(f"{measure} {accuracy * 100:.2f} % ({int(matrix.sum()):,} {counted})", fontsize=TITLE)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label(f"{counted} (log scale)", fontsize=SMALL)
    colorbar.ax.tick_params(labelsize=SMALL)
    return figure


def training_figure(history: list[dict]) -> Figure:
    """Loss and error rate per epoch, training and validation; the error on a log scale, where 1 % and 0.5 %
    differ. Folders written before the validation split existed followed the test split: shown as "test"."""
    figure = Figure(figsize=(9, 3.2), dpi=DPI, layout="constrained")
    ax_loss, ax_error = figure.subplots(1, 2)
    marker = "o" if len(history) <= 20 else None
    held_out = "val" if any("val_accuracy" in record for record in history) else "test"
    for split in ("train", held_out):
        name = {"train": "training", "val": "validation", "test": "test"}[split]
        records = [record for record in history if f"{split}_loss" in record]
        ax_loss.plot([r["epoch"] for r in records], [r[f"{split}_loss"] for r in records], marker=marker,
                     markersize=3, label=name)
        records = [record for record in history if f"{split}_accuracy" in record]
        ax_error.plot([r["epoch"] for r in records], [max(100 * (1 - r[f"{split}_accuracy"]), 1e-3) for r in records],
                      marker=marker, markersize=3, label=name)
    ax_loss.set_title("loss", fontsize=LABEL)
    ax_error.set_title("error (%, log scale)", fontsize=LABEL)
    if any(f"{held_out}_accuracy" in record for record in history):
        ax_error.set_yscale("log")
        ax_error.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.5, 1, 10: not 10^0
        # within a decade the minor ticks are labelled too, as plain numbers (2, 3): not 2×10^0
        ax_error.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        last = history[-1].get(f"{held_out}_accuracy", 0) * 100
        best = max(record.get(f"{held_out}_accuracy", 0) for record in history) * 100
        ax_error.set_title(f"{'validation' if held_out == 'val' else 'test'} error (%, log scale)\naccuracy "
                           f"at the last epoch {last:.2f} % (kept), best {best:.2f} %", fontsize=LABEL)
    for ax in (ax_loss, ax_error):
        ax.set_xlabel("epoch", fontsize=SMALL)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=SMALL, which="both")
        ax.grid(alpha=0.3, which="both")
        if any(line.get_xdata().size for line in ax.get_lines()):
            ax.legend(fontsize=SMALL)
    figure.suptitle("training history" if history else "no training history stored", fontsize=TITLE)
    return figure


def live_figure(history: list[dict], budget: float) -> Figure:
    """A watched run (vit.live) so far: the training loss and the validation accuracy against the seconds spent, on
    axes spanning the whole budget, so the curves grow across them as it trains."""
    figure = Figure(figsize=(8, 2.8), dpi=DPI, layout="constrained")
    ax_loss, ax_accuracy = figure.subplots(1, 2)
    seconds = [record["seconds"] for record in history]
    ax_loss.plot(seconds, [record["train_loss"] for record in history], marker="o", markersize=3)
    ax_accuracy.plot(seconds, [100 * record["val_accuracy"] for record in history], marker="o", markersize=3,
                     color="#dd8452")
    last = f": {100 * history[-1]['val_accuracy']:.1f} %" if history else ""
    ax_loss.set_title("training loss", fontsize=LABEL)
    ax_accuracy.set_title(f"validation accuracy{last}", fontsize=LABEL)
    ax_accuracy.set_ylim(0, 100)
    for ax in (ax_loss, ax_accuracy):
        ax.set_xlim(0, budget * 1.02)
        ax.set_xlabel("seconds", fontsize=SMALL)
        ax.tick_params(labelsize=SMALL)
        ax.grid(alpha=0.3)
    return figure


def reliability_figure(before: dict, after: dict) -> Figure:
    """Reliability diagrams (vit.calibration.reliability) before and after temperature scaling: per confidence
    bin, how often the model was right; a calibrated model's bars sit on the diagonal."""
    figure = Figure(figsize=(9, 3.6), dpi=DPI, layout="constrained")
    for ax, bins, title in zip(figure.subplots(1, 2), (before, after), ("raw softmax", "after temperature scaling")):
        width = 1 / bins["bins"]
        left = np.arange(bins["bins"]) * width
        used = np.asarray(bins["counts"]) > 0
        accuracy, confidence = np.asarray(bins["accuracy"]), np.asarray(bins["confidence"])
        ax.bar(left[used], accuracy[used], width=width, align="edge", color="#4c72b0", edgecolor="white",
               label="accuracy in the bin")
        ax.bar(left[used], confidence[used] - accuracy[used], bottom=accuracy[used], width=width, align="edge",
               color="#dd8452", alpha=0.6, edgecolor="white", label="gap to its mean confidence")
        ax.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle="--", label="calibrated")
        for x, count, top in zip(left[used], np.asarray(bins["counts"])[used], np.maximum(accuracy, confidence)[used]):
            ax.text(x + width / 2, min(top + 0.02, 1.02), f"{count:,}", ha="center", va="bottom", fontsize=6,
                    rotation=90)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.15)
        ax.set_xlabel("confidence of the answer", fontsize=SMALL)
        ax.set_ylabel("share right", fontsize=SMALL)
        ax.set_title(f"{title}: ECE {bins['ece'] * 100:.2f} %", fontsize=LABEL)
        ax.tick_params(labelsize=SMALL)
    # one legend under both panels: inside either one it covered the low-confidence bars and their counts
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=SMALL)
    figure.suptitle("reliability on the test set (numbers: answers per bin)", fontsize=TITLE)
    return figure


def risk_coverage_figure(coverage: list[float], risk: list[float], accepted: float, risk_accepted: float,
                         aurc: float) -> Figure:
    """Selective prediction (Geifman & El-Yaniv 2017) over the proxy sets' digits and non-digits: answering only
    the surest share (the coverage), how many of those answers are wrong (the risk); a dot where the app stops."""
    figure = Figure(figsize=(9, 3.6), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    ax.plot(coverage, risk, color="#4c72b0", linewidth=2, label=f"surest first (area {aurc:.3f})")
    ax.plot([accepted], [risk_accepted], "o", color="#dd8452", markersize=7,
            label=f"what the app answers: {accepted:.0%}, {risk_accepted:.0%} of it wrong")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.05, max(risk) * 1.1))
    ax.set_xlabel("coverage: share of the pictures answered, surest first", fontsize=SMALL)
    ax.set_ylabel("risk: share of answers wrong", fontsize=SMALL)
    ax.tick_params(labelsize=SMALL)
    ax.legend(fontsize=SMALL, loc="upper left")
    figure.suptitle("risk and coverage on the proxy sets", fontsize=TITLE)
    return figure


def positional_similarity_figure(similarity, grid: tuple[int, int] | None = None) -> Figure:
    """Cosine similarity of each tile position's embedding with every other one, in the tile layout (ViT fig. 7).

    similarity (N, N) with N = g*g positions; cell (r, c) of the big grid shows row r*g+c as a small g×g map.
    Strips (a grid of one row or one column) have no 2-D layout: their N × N matrix is shown as it is.
    """
    similarity = as_array(similarity)
    if grid is not None and min(grid) == 1:
        return strip_similarity_figure(similarity, "row" if grid[1] == 1 else "column")
    grid = math.isqrt(similarity.shape[0])
    cells = similarity.reshape(grid, grid, grid, grid)  # (row, col, other row, other col)
    gap = 1
    figure = Figure(figsize=(6.6, 5.8), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(mosaic(cells, gap), cmap=colormaps["viridis"].with_extremes(bad="white"), vmin=-1, vmax=1,
                      interpolation="nearest")
    _cell_ticks(ax, grid, grid, grid, grid, gap, "col", "row")
    ax.set_xlabel("tile column", fontsize=LABEL)
    ax.set_ylabel("tile row", fontsize=LABEL)
    ax.set_title("each small map: one position's similarity to all positions", fontsize=LABEL)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("cosine similarity", fontsize=SMALL)
    colorbar.ax.tick_params(labelsize=SMALL)
    figure.suptitle("position embedding similarity", fontsize=TITLE)
    return figure


def strip_similarity_figure(similarity: np.ndarray, direction: str) -> Figure:
    """Cosine similarity of every pair of strip positions, (N, N), strip 1 at the top (or left) of the image."""
    figure = Figure(figsize=(5.6, 4.8), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(similarity, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    ticks = range(0, len(similarity), max(1, len(similarity) // 7))
    ax.set_xticks(ticks, [str(t + 1) for t in ticks], fontsize=SMALL)
    ax.set_yticks(ticks, [str(t + 1) for t in ticks], fontsize=SMALL)
    ax.set_xlabel(f"strip ({'top' if direction == 'row' else 'left'} = 1)", fontsize=LABEL)
    ax.set_ylabel("strip", fontsize=LABEL)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("cosine similarity", fontsize=SMALL)
    colorbar.ax.tick_params(labelsize=SMALL)
    figure.suptitle("position embedding similarity (strips)", fontsize=TITLE)
    return figure


def embedding_matrix_figure(embedding) -> Figure:
    """The raw position embeddings (T, D) as an image: one row per token, CLS first."""
    embedding = as_array(embedding)
    limit = max(float(np.abs(embedding).max()), 1e-9)
    figure = Figure(figsize=(6.6, 4.2), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(embedding, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    ax.set_xlabel("embedding dimension", fontsize=LABEL)
    ax.set_ylabel("token (0 = CLS, then tiles in reading order)", fontsize=LABEL)
    ax.tick_params(labelsize=SMALL)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.ax.tick_params(labelsize=SMALL)
    figure.suptitle(f"raw position embeddings ({embedding.shape[0]} tokens × {embedding.shape[1]} dimensions)",
                    fontsize=TITLE)
    return figure


def attention_by_label_figure(maps: dict, class_names: list[str], view: str = "matrix",
                              difference: bool = False, grid: tuple[int, int] | None = None) -> Figure:
    """Median attention per layer (rows) and head (columns) for each chosen label, side by side.

    maps: label -> (L, H, T, T). view "matrix" draws the full T×T maps (row = query token, CLS first);
    view "cls" draws the CLS row in the tile layout (grid: the model's rows and columns of pieces, square when
    not given; a strip is drawn as wide as the picture). Each layer and head is scaled by its maximum over the
    labels; difference instead subtracts the mean over the chosen labels, leaving what is specific to each.
    """
    labels = list(maps)
    if not labels:
        figure = Figure(figsize=(6, 1.2), dpi=DPI)
        figure.text(0.5, 0.5, "choose at least one label", ha="center", va="center", fontsize=TITLE)
        return figure
    stacked = np.stack([as_array(maps[label]) for label in labels])  # (K, L, H, T, T)
    if view == "cls":
        rows, columns = grid or (math.isqrt(stacked.shape[-1] - 1),) * 2
        stacked = stacked[:, :, :, 0, 1:].reshape(*stacked.shape[:3], rows, columns)  # (K, L, H, rows, columns)
        stacked = stacked.repeat(max(columns // rows, 1), axis=3).repeat(max(rows // columns, 1), axis=4)
    if difference:
        stacked = stacked - stacked.mean(axis=0, keepdims=True)
        limit = max(float(np.abs(stacked).max()), 1e-9)
        cmap, norm = colormaps["RdBu_r"].with_extremes(bad="white"), TwoSlopeNorm(0, -limit, limit)
    else:  # each layer and head on its own scale, shared by the labels so that they can be compared
        stacked = stacked / np.maximum(stacked.max(axis=(0, 3, 4), keepdims=True), 1e-9)
        cmap, norm = colormaps["viridis"].with_extremes(bad="white"), PowerNorm(0.5, 0, 1)
    count, layers, heads, size = stacked.shape[:3] + (stacked.shape[-1],)
    gap = max(1, size // 8)
    cell = 0.9 if count * heads > 4 else 1.2  # inches per map: never smaller, so ten labels wrap onto more rows
    panel = 0.35 + heads * cell
    per_row = max(1, min(count, int(14.5 // panel)))
    rows = math.ceil(count / per_row)
    figure = Figure(figsize=(max(8, per_row * panel + 1.2), 0.6 + rows * (0.6 + layers * cell)), dpi=DPI,
                    layout="constrained")
    grid_axes = figure.subplots(rows, per_row, squeeze=False).ravel()
    for ax in grid_axes[count:]:
        ax.set_axis_off()
    axes = grid_axes[:count]
    for ax, label, cells in zip(axes, labels, stacked):
        image = ax.imshow(mosaic(cells, gap), cmap=cmap, norm=norm, interpolation="nearest")
        _cell_ticks(ax, heads, layers, size, size, gap, "head", "block")
        ax.xaxis.set_ticks_position("top")
        ax.set_xlabel(f"label {class_names[label]}", fontsize=TITLE)
    colorbar = figure.colorbar(image, ax=list(axes), shrink=0.8)
    colorbar.set_label("difference from the mean" if difference else "÷ the layer and head's maximum (√ scale)",
                       fontsize=SMALL)
    colorbar.ax.tick_params(labelsize=SMALL)
    what = "CLS → tiles, in the tile layout" if view == "cls" else "full attention matrices (row = query, CLS first)"
    figure.suptitle(f"median attention by label: {what}", fontsize=TITLE)
    return figure


def filter_components_figure(components, share) -> Figure:
    """The principal components of the tile-embedding filters (ViT paper, figure 7 left), each with its number
    and share of the filters' variance under it; components (K, C, t, t) of analysis.filter_components."""
    components = as_array(components)[:, 0]  # (K, t, t): the first channel (MNIST has one)
    share = as_array(share)
    height, width = components.shape[-2:]  # a tile's, or a strip's (2×28: flat rows, no empty space between)
    # 6 columns, about 670 px: a half-width column shows it at 0.9 of its size (8 columns: 0.68, captions 7 px
    # high), and on a phone, where a figure keeps 620 px and scrolls sideways, it is never letterboxed
    cols = min(len(components), 6)
    rows = math.ceil(len(components) / cols)
    figure = Figure(figsize=(1.05 * 6 + 0.4, rows * (0.9 * min(height / width, 1) + 0.25) + 0.7), dpi=DPI,
                    layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    for ax, component, part, number in zip(axes, components, share, range(1, len(components) + 1)):
        limit = max(float(np.abs(component).max()), 1e-9)
        ax.imshow(component, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        # under the map, not over it: over the first row, the last title sat below the picture's buttons
        ax.set_xlabel(f"{number}: {part * 100:.0f} %", fontsize=SMALL, labelpad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    for ax in axes[len(components):]:
        ax.set_axis_off()
    figure.suptitle(f"what the {height}×{width} filters vary along: principal components, share of variance",
                    fontsize=LABEL)
    return figure


def attention_distance_figure(distances, uniform: float, pieces: str) -> Figure:
    """Mean attention distance per head against depth (ViT paper, figure 7 right): a dot per head and layer,
    with the distance uniform attention would give as a dashed line; distances (L, H) in pixels."""
    distances = as_array(distances)
    layers, heads = distances.shape
    figure = Figure(figsize=(5.4, 3.6), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    depth = np.arange(1, layers + 1)
    for head in range(heads):
        ax.scatter(depth, distances[:, head], s=28, label=f"head {head + 1}", zorder=3)
    ax.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="uniform attention")
    ax.set_xlabel("block (depth)", fontsize=LABEL)
    ax.set_ylabel("mean attention distance (pixels)", fontsize=LABEL)
    ax.set_xticks(depth)
    ax.set_ylim(0, max(float(distances.max()), uniform) * 1.15)
    ax.tick_params(labelsize=SMALL)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=SMALL, ncols=2 if heads > 2 else 1, loc="lower right")
    ax.set_title(pieces, fontsize=LABEL)  # under the title, not in it: a strip's name made it reach the buttons
    figure.suptitle("how far each head looks", fontsize=TITLE)
    return figure


def logit_lens_figure(probabilities, class_names: list[str], answer: int) -> Figure:
    """The logit lens: the probability of every class when the CLS token is read out after each block
    (0 = before the first), a line per class, the final answer's in bold; probabilities (L + 1, classes)."""
    probabilities = as_array(probabilities)
    depth = np.arange(probabilities.shape[0])
    figure = Figure(figsize=(6.4, 3.6), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    palette = colormaps["tab10"]
    for index, name in enumerate(class_names):
        chosen = index == answer
        ax.plot(depth, probabilities[:, index], marker="o", markersize=4 if chosen else 2,
                linewidth=2.6 if chosen else 1, alpha=1 if chosen else 0.55,
                color="black" if chosen else palette(index % 10),
                label=name, zorder=3 if chosen else 2)
    ax.set_xticks(depth, ["start"] + [f"after {layer}" for layer in depth[1:]])
    ax.set_xlabel("read out after block", fontsize=LABEL)
    ax.set_ylabel("probability", fontsize=LABEL)
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(labelsize=SMALL)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=SMALL, ncols=2, loc="center left", bbox_to_anchor=(1.0, 0.5), title="class",
              title_fontsize=SMALL)
    figure.suptitle(f"the logit lens: when does the answer {class_names[answer]} form?", fontsize=TITLE)
    return figure


METHOD_COLOURS = {"attention": "#8c8c8c", "rollout": "#dd8452", "saliency": "#55a868", "integrated gradients": "#4c72b0",
                  "occlusion": "#c44e52", "relevance": "#8172b3", "random": "black"}


def perturbation_figure(steps: list[int], deletion: dict, insertion: dict, class_name: str) -> Figure:
    """Deletion and insertion curves (vit.faithfulness.picture_test): p(class) as each method's top tiles are
    blanked, or put back into a blank picture; the random orders' mean dashed. Areas in the legend."""
    figure = Figure(figsize=(9, 3.4), dpi=DPI, layout="constrained")
    x = np.asarray(steps, dtype=float) / steps[-1]
    for ax, curves, title in zip(figure.subplots(1, 2), (deletion, insertion),
                                 ("deletion: top tiles blanked first\n(lower: better)",
                                  "insertion: top tiles put back first\n(higher: better)")):  # clear of the buttons
        for name, curve in curves.items():
            values = as_array(curve)
            ax.plot(x, values, color=METHOD_COLOURS.get(name, None), linestyle="--" if name == "random" else "-",
                    linewidth=1.4, label=f"{name} ({np.trapezoid(values, x):.2f})")
        ax.set_title(title, fontsize=LABEL)
        ax.set_xlabel("share of the tiles", fontsize=SMALL)
        ax.set_ylabel(f"p({class_name})", fontsize=SMALL)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=SMALL)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=SMALL - 1, title="method (area)", title_fontsize=SMALL - 1)
    return figure


def randomisation_figure(stages: list[str], correlations: dict) -> Figure:
    """The cascading randomisation test: each method's rank correlation with the trained model's maps as the
    weights are re-drawn from the head down (ViT-sized version of Adebayo et al. 2018, figure 2)."""
    figure = Figure(figsize=(7.5, 3.4), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    x = np.arange(len(stages))
    for name, values in correlations.items():
        ax.plot(x, values, marker="o", markersize=3, color=METHOD_COLOURS.get(name), label=name)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, ["+ " + stage if index else stage for index, stage in enumerate(stages)], rotation=30,
                  ha="right")
    ax.set_xlabel("re-drawn at random, cumulatively from the top", fontsize=SMALL)
    ax.set_ylabel("rank correlation with the trained maps", fontsize=SMALL)
    ax.set_ylim(-0.5, 1.05)
    ax.tick_params(labelsize=SMALL)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=SMALL - 1, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle("sanity check: does the map change when the model forgets what it learned?", fontsize=LABEL)
    return figure


def zoo_figure(names: list[str], similarities: list, distances: list, uniforms: list[float]) -> Figure:
    """The zoo side by side: each model's position-embedding similarity (N × N, positions in reading order) over
    its mean attention distance per layer (a dot per head, the mean as a line, uniform attention dashed), the
    distances on one shared scale so the models can be compared."""
    count = len(names)
    figure = Figure(figsize=(2.25 * count + 0.6, 5.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(2, count, squeeze=False, gridspec_kw={"height_ratios": [1.1, 1]})
    top = max(max(float(as_array(d).max()) for d in distances), max(uniforms)) * 1.15
    image = None
    for column, (name, similarity, distance, uniform) in enumerate(zip(names, similarities, distances, uniforms)):
        above, below = axes[0, column], axes[1, column]
        image = above.imshow(as_array(similarity), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
        above.set_title(name, fontsize=SMALL)
        above.set_xticks([])
        above.set_yticks([])
        distance = as_array(distance)
        depth = np.arange(1, distance.shape[0] + 1)
        for head in range(distance.shape[1]):
            below.scatter(depth, distance[:, head], s=10, color="#7a8fa6", zorder=3)
        below.plot(depth, distance.mean(axis=1), color="#d1495b", linewidth=2)
        below.axhline(uniform, color="grey", linestyle="--", linewidth=1)
        below.set_ylim(0, top)
        below.set_xticks(depth)
        below.tick_params(labelsize=SMALL)
        below.grid(alpha=0.3)
        below.set_xlabel("block", fontsize=SMALL)
        if column == 0:
            above.set_ylabel("position similarity", fontsize=SMALL)
            below.set_ylabel("attention distance (px)", fontsize=SMALL)
    colorbar = figure.colorbar(image, ax=axes[0, :].tolist(), shrink=0.8, pad=0.01)
    colorbar.ax.tick_params(labelsize=SMALL)
    figure.suptitle("positions learned (top: cosine similarity of every pair, −1 to 1) and how far heads look "
                    "(bottom: red = mean over heads, dashed = uniform)", fontsize=LABEL)
    return figure
