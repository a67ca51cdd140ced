"""vit.pictures: the Predict tab's maps, drawn from arrays without matplotlib."""

import numpy as np
import pytest

from vit import pictures


@pytest.mark.parametrize("name", ["inferno", "viridis", "RdBu_r"])
def test_colour_tables_are_matplotlibs(name):
    from matplotlib import colormaps
    values = np.linspace(0, 1, 1000)
    expected = (colormaps[name](values)[:, :3] * 255)
    assert np.abs(pictures.colour(values, name, 0, 1).astype(float) - expected).max() <= 0.5  # the same entry, rounded to uint8


def test_colour_clips_and_handles_a_flat_scale():
    assert (pictures.colour(np.array([-5.0, 5.0]), "inferno", 0, 1) == pictures.colormap("inferno")[[0, 255]]).all()
    assert pictures.colour(np.zeros(3), "inferno", 0, 0).shape == (3, 3)


def test_heatmap_upscales_tiles_and_outlines_the_ink():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1.0  # a bar of ink
    values = np.arange(49, dtype=float).reshape(7, 7)
    heat = pictures.heatmap(values, image, "viridis", 0, 48, factor=4)
    assert heat.shape == (112, 112, 3) and heat.dtype == np.uint8
    assert (heat[0, 0] == pictures.colormap("viridis")[0]).all()  # tile (0, 0) holds the lowest value
    assert (heat[111, 111] == pictures.colormap("viridis")[255]).all()
    outlined = (heat == pictures.INK).all(axis=2)
    assert outlined[40, 48:64].any() and not outlined[:30].any()  # the border of the bar, nothing far from it


def test_heatmaps_at_once_equal_one_heatmap_each_on_its_own_scale():
    rng = np.random.default_rng(0)
    values, image = rng.random((3, 2, 7, 7)), (rng.random((28, 28)) > 0.7).astype(np.float32)
    together = pictures.heatmaps(values, image, "inferno", factor=4, shared=False)
    for index in np.ndindex(3, 2):
        alone = pictures.heatmap(values[index], image, "inferno", 0, values[index].max(), factor=4)
        assert (together[index] == alone).all()


def test_grey_draws_the_tile_grid_and_strip_borders():
    rgb = pictures.grey(np.zeros((28, 28)), factor=8, piece=7)
    assert (rgb[55] == pictures.GRID).all() and (rgb[54, 10] == 0).all()
    strips = pictures.grey(np.zeros((28, 28)), factor=8, piece=(2, 28))  # horizontal strips: no vertical lines
    assert (strips[15] == pictures.GRID).all() and (strips[14] == 0).all()
    assert not (strips[:, :-1] == pictures.GRID).all(axis=(0, 2)).any()


def test_colour_bar_and_grid_are_pictures():
    bar = pictures.colour_bar("RdBu_r", -0.5, 0.5, 200, "log-odds")
    assert bar.shape[1] == 200 and bar.dtype == np.uint8
    cells = np.zeros((2, 3, 20, 20, 3), np.uint8)
    grid = pictures.labelled_grid(cells, "layer", "head")
    assert grid.shape[0] > 2 * 20 and grid.shape[1] > 3 * 20
    assert pictures.number(0) == "0" and pictures.number(0.0123) == "0.0123" and pictures.number(0.004) == "0.004"


def test_a_map_of_strips_covers_the_whole_picture():
    strips = np.arange(14.0).reshape(14, 1)  # horizontal strips 2 rows high: one value per band of rows
    rgb = pictures.heatmap(strips, np.zeros((28, 28)), "inferno", 0, 13, factor=2)
    assert rgb.shape == (56, 56, 3)
    assert (rgb[:4] == rgb[0, 0]).all() and not (rgb[4] == rgb[0, 0]).all()  # each band 2 rows × factor 2


def test_a_caption_is_never_cut_off_and_each_line_sits_under_the_picture():
    digit = np.zeros((112, 112, 3), np.uint8)
    short = pictures.captioned(digit, "read 5\ntrue 9\nloss 3.9")
    assert short.shape[1] == 112 and short.shape[0] > 112 + 3 * 12  # three lines, the picture's width
    long = pictures.captioned(digit, "read T-shirt/top · true Ankle boot")
    caption = long[112:] < 128  # dark pixels under the picture: the letters
    columns = np.flatnonzero(caption.any(axis=(0, 2)))
    assert long.shape[1] > 112 and columns.min() > 0 and columns.max() < long.shape[1] - 1  # widened, not cut


@pytest.fixture
def written_boxes(monkeypatch) -> list:
    """Every text pictures.write puts on a canvas, as (text, its letters' box (left, top, right, bottom), the
    canvas size (width, height)), for checking that no text is cut off or written over another."""
    boxes, write = [], pictures.write

    def recording(canvas, xy, text, size, anchor="la", fill=pictures.TEXT, rim=0):
        (left, top), letters, _ = pictures._stamp(text, size, anchor, rim)
        x0, y0, x1, y1 = letters.getbbox()  # the inked part of the mask, pasted at the anchor + offset
        x, y = round(xy[0]) + left, round(xy[1]) + top
        boxes.append((text, (x + x0, y + y0, x + x1, y + y1), canvas.size))
        write(canvas, xy, text, size, anchor, fill, rim)
    monkeypatch.setattr(pictures, "write", recording)
    return boxes


def text_problems(boxes: list) -> list[str]:
    problems = [f"{text!r} at {box} leaves the {width}×{height} canvas" for text, box, (width, height) in boxes
                if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height]
    for index, (text, (x0, y0, x1, y1), _) in enumerate(boxes):
        problems += [f"{text!r} at {(x0, y0, x1, y1)} overlaps {other!r} at {box}"
                     for other, box, _ in boxes[index + 1:]
                     if min(x1, box[2]) > max(x0, box[0]) and min(y1, box[3]) > max(y0, box[1])]
    return problems


PAIR = np.zeros((84, 174, 3), np.uint8)  # the Predict tab's two occlusion maps side by side


@pytest.mark.parametrize("draw", [
    lambda: pictures.titled(PAIR, "occlusion (class T-shirt/top)"),
    lambda: pictures.titled(np.zeros((84, 20, 3), np.uint8), "what the model sees (28×28)"),
    lambda: pictures.captioned(PAIR[:, :40], "read Ankle boot\ntrue T-shirt/top\nloss 12.3"),
    lambda: pictures.colour_bar("RdBu_r", -12.5, 12.5, PAIR.shape[1], "log-odds drop when blanked"),
    lambda: pictures.colour_bar("inferno", 0, 0.0123, 120, "share of CLS's attention (one scale for every map)"),
    lambda: pictures.labelled_grid(np.zeros((12, 10, 16, 16, 3), np.uint8), "layer", "head"),
    lambda: pictures.vector_rows([("tile 49 of 49: the longest label here", np.ones(16)), ("v", -np.ones(64))]),
], ids=["occlusion title", "title over a narrow picture", "caption", "occlusion bar", "narrow bar", "grid",
        "vector rows"])
def test_no_written_text_is_cut_off_or_written_over_another(written_boxes, draw):
    draw()
    assert written_boxes and not text_problems(written_boxes)


def test_the_text_measure_finds_a_cut_and_an_overlap(written_boxes):
    """Before titles widened the canvas, the Fashion-MNIST occlusion title lost its first and last letters."""
    canvas = pictures.Image.new("RGB", (60, 30), pictures.PAPER)
    pictures.write(canvas, (30, 3), "occlusion (class T-shirt/top)", 13, "ma")
    pictures.write(canvas, (2, 3), "over", 13)
    problems = text_problems(written_boxes)
    assert len(problems) == 2 and "leaves the 60×30 canvas" in problems[0] and "overlaps 'over'" in problems[1]


def test_a_long_title_widens_the_canvas_and_keeps_the_picture_whole():
    picture = np.full((84, 174, 3), 7, np.uint8)
    out = pictures.titled(picture, "occlusion (class T-shirt/top)")
    title = out[:13 + 8] < 128  # dark pixels above the picture: the letters
    columns = np.flatnonzero(title.any(axis=(0, 2)))
    assert out.shape[1] > 174 and columns.min() > 0 and columns.max() < out.shape[1] - 1  # widened, not cut
    left = (out.shape[1] - 174) // 2
    assert (out[13 + 8:, left:left + 174] == 7).all()  # the picture itself, centred and untouched
    assert pictures.titled(picture, "one tile").shape[1] == 174  # a short title keeps the picture's width
