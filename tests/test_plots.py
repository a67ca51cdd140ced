"""Each plot function returns a Figure with the expected axes and title, from small hand-made inputs."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vit import plots, tiling

NAMES = [str(digit) for digit in range(10)]


@pytest.fixture
def digit() -> torch.Tensor:
    """A hand-made 28×28 "7": a bar and a diagonal, ink 1 on black."""
    image = torch.zeros(28, 28)
    image[6:8, 6:22] = 1
    for row in range(8, 24):
        image[row, 21 - (row - 8) // 2] = 1
    return image


def suptitle(figure: Figure) -> str:
    return figure._suptitle.get_text() if figure._suptitle else ""


def images_in(figure: Figure) -> list:
    return [image for ax in figure.axes for image in ax.get_images()]


@pytest.mark.parametrize("kind, cut, size, count", [("tiles", tiling.tiles, 7, 16), ("tiles", tiling.tiles, 1, 784),
                                                    ("horizontal", tiling.horizontal_strips, 4, 4),
                                                    ("vertical", tiling.vertical_strips, 28, 28)])
def test_tiling_figure_shows_image_sequence_and_flattened_words(digit, kind, cut, size, count):
    pieces = cut(digit[None, None], size)[0]  # (N, 1, h, w)
    figure = plots.tiling_figure(digit, pieces, kind)
    assert len(figure.axes) == 3
    assert suptitle(figure).startswith(f"{count} ")
    assert f"CLS + {count} words = {count + 1} tokens" in figure.axes[1].get_title()
    assert figure.axes[2].get_images()[0].get_array().shape[1] == count  # one column per word


def test_tiling_figure_sequence_holds_cls_then_every_piece_in_reading_order_line_by_line(digit):
    size, gap = 7, 7 // 3  # 16 tiles of 7x7: with CLS, 17 words, more than one line holds
    pieces = tiling.tiles(digit[None, None], size)[0]
    figure = plots.tiling_figure(digit, pieces, "tiles")
    grey = np.asarray(figure.axes[1].get_images()[0].get_array())[..., 0]  # RGB mosaic: CLS, then the tiles
    per_line, lines = (grey.shape[1] + gap) // (size + gap), (grey.shape[0] + gap) // (size + gap)
    assert lines == 2 and per_line * (lines - 1) < 17 <= per_line * lines  # wrapped onto a second line
    for token in range(1, 17):
        line, place = divmod(token, per_line)
        top, left = line * (size + gap), place * (size + gap)
        np.testing.assert_allclose(grey[top:top + size, left:left + size], pieces[token - 1, 0].numpy(), atol=1e-6,
                                   err_msg=f"word {token}")


def test_confusion_figure_counts_log_scale_and_labels():
    matrix = np.diag([980, 1135, 1000, 1010, 982, 892, 958, 1028, 974, 1009])
    matrix[4, 9] = 7
    figure = plots.confusion_figure(matrix, 0.9993, NAMES, selected=(4, 9))
    ax = figure.axes[0]
    assert ax.get_title() == "test accuracy 99.93 % (9,975 images)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert ax.get_images()[0].norm.__class__.__name__ == "LogNorm"
    texts = {text.get_text() for text in ax.texts}
    assert {"7", "1135"} <= texts and "0" not in texts  # counts in the cells, empty cells left blank
    assert len(ax.patches) == 1  # the selected cell


def test_render_returns_pixels_and_axes_boxes():
    figure = plots.confusion_figure(np.eye(10, dtype=int) * 5, 1.0, NAMES)
    image, boxes = plots.render(figure, boxes=True)
    assert image.dtype == np.uint8 and image.shape == (560, 640, 3)
    left, top, right, bottom = boxes[0]
    assert 0 < left < right < 640 and 0 < top < bottom < 560
    assert figure.axes == []  # released


def test_training_figure_plots_loss_and_accuracy():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.9, "val_accuracy": 0.9 + e / 100}
               for e in (1, 2, 3)]
    figure = plots.training_figure(history)
    assert len(figure.axes) == 2
    assert figure.axes[1].get_title() == ("validation error (%, log scale)\n"
                                          "accuracy at the last epoch 93.00 % (kept), best 93.00 %")
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["training", "validation"]
    assert figure.axes[1].get_yscale() == "log"
    assert len(figure.axes[0].get_lines()) == 2


def test_training_figure_without_history():
    assert suptitle(plots.training_figure([])) == "no training history stored"


def test_positional_similarity_figure_is_a_grid_of_grids():
    embeddings = torch.randn(16, 8)
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    figure = plots.positional_similarity_figure(unit @ unit.T)
    mosaic = figure.axes[0].get_images()[0].get_array()
    assert mosaic.shape == (4 * 5 - 1, 4 * 5 - 1)  # 4×4 small maps of 4×4, 1-pixel gaps
    assert mosaic[0, 0] == pytest.approx(1.0)  # position 1 is most like itself
    assert len(figure.axes) == 2 and suptitle(figure) == "position embedding similarity"


def test_embedding_matrix_figure_shows_tokens_by_dimensions():
    figure = plots.embedding_matrix_figure(torch.randn(17, 16))
    assert figure.axes[0].get_images()[0].get_array().shape == (17, 16)
    assert "17 tokens × 16 dimensions" in suptitle(figure)


@pytest.mark.parametrize("view, difference", [("matrix", False), ("cls", False), ("cls", True)])
def test_attention_by_label_figure_one_panel_per_label(view, difference):
    maps = {label: torch.rand(2, 1, 17, 17).softmax(-1) for label in (3, 7, 8)}
    figure = plots.attention_by_label_figure(maps, NAMES, view, difference)
    panels = [ax for ax in figure.axes if ax.get_images()]
    assert [ax.get_xlabel() for ax in panels] == ["label 3", "label 7", "label 8"]
    size = 17 if view == "matrix" else 4
    assert panels[0].get_images()[0].get_array().shape[1] == size  # one head per row of cells


def test_attention_by_label_figure_without_labels():
    figure = plots.attention_by_label_figure({}, NAMES)
    assert figure.texts[0].get_text() == "choose at least one label"


def test_plots_never_use_pyplot():
    """pyplot keeps figures in global state shared by every visitor; plots.py builds Figures directly."""
    from pathlib import Path
    assert "matplotlib.pyplot" not in Path(plots.__file__).read_text()
    assert "import pyplot" not in Path(plots.__file__).read_text()


def test_ten_labels_wrap_onto_rows_and_keep_each_map_legible():
    maps = {label: torch.rand(2, 4, 17, 17) for label in range(10)}
    figure = plots.attention_by_label_figure(maps, [str(i) for i in range(10)])
    shown = [ax for ax in figure.axes[:-1] if ax.get_visible() and ax.images]  # the last axes is the colour bar
    assert len(shown) == 10
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(figure).draw()  # constrained layout places the axes when drawn
    width_inches = min(ax.get_position().width for ax in shown) * figure.get_figwidth()
    assert width_inches / 4 >= 0.55  # four heads side by side, each over half an inch


def test_tiling_figure_says_one_tile_and_ticks_whole_words():
    image = torch.rand(28, 28)
    figure = plots.tiling_figure(image, image[None, None], "tiles")
    assert suptitle(figure) == "1 tile of 28×28 pixels"
    ticks = figure.axes[2].get_xticks()
    assert list(ticks) == [1]
