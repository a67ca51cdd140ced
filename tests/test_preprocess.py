"""Pictures of every kind -> MNIST-like 28x28 inputs; unreadable ones -> a friendly ImageError."""

import io
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from vit.bundle import bundled_folders, load_folder
from vit.data import load_split
from vit import preprocess
from vit import page as page_module
from vit.page import remove_ruled_lines
from vit.preprocess import ImageError, open_image, pen_width, read_page, to_model_input
from paper_photos import CLEAN, KINDS, photographed
from picture_files import drawn_on_pad


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    """Same shape, equal within atol (torch.testing.assert_close would first import torch.distributed: ~4 s)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.allclose(actual.float(), expected.float(), rtol=0, atol=atol), \
        f"largest difference {(actual.float() - expected.float()).abs().max():.3g}"


def seven(size: int = 200, mode: str = "L", ink=255, background=0, at=(0.0, 0.0)) -> Image.Image:
    """An asymmetric '7' with thick strokes, its box starting at fraction `at` of the canvas."""
    image = Image.new(mode, (size, size), background)
    x, y = at[0] * size, at[1] * size
    scale = size * 0.4
    ImageDraw.Draw(image).line([(x + 0.1 * scale, y + 0.1 * scale), (x + 0.9 * scale, y + 0.1 * scale),
                                (x + 0.4 * scale, y + 0.95 * scale)], fill=ink, width=max(1, size // 25))
    return image


def ring(size: int = 200) -> Image.Image:
    """A symmetric ring, white on black, off-centre."""
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).ellipse([0.1 * size, 0.2 * size, 0.4 * size, 0.6 * size], outline=255, width=size // 25)
    return image


def centre_of_mass(digit: torch.Tensor) -> tuple[float, float]:
    index = torch.arange(28.0)
    return float(digit.sum(1) @ index / digit.sum()), float(digit.sum(0) @ index / digit.sum())


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_output_is_28_by_28_float_in_unit_range():
    digit = to_model_input(seven())
    assert digit.shape == (28, 28) and digit.dtype == torch.float32
    assert digit.min() == 0 and digit.max() == 1


def test_black_on_white_gives_the_same_as_white_on_black():
    assert_close(to_model_input(ImageOps.invert(seven())), to_model_input(seven()))


@pytest.mark.parametrize("stroke", [(0, 0, 0, 255), (255, 255, 255, 255)], ids=["dark", "light"])
def test_strokes_on_a_transparent_sheet_work(stroke):
    sketch = seven(mode="RGBA", ink=stroke, background=(0, 0, 0, 0))  # what Gradio's Sketchpad hands over
    assert_close(to_model_input(sketch), to_model_input(seven()))


def test_centre_of_mass_is_within_one_pixel_of_the_centre():
    row, col = centre_of_mass(to_model_input(seven(600, at=(0.55, 0.05))))
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1


def test_ink_is_fitted_into_a_20_by_20_box():
    rows, cols = to_model_input(seven(600, at=(0.55, 0.05))).nonzero().unbind(1)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20


def test_a_hairline_drawing_gets_mnists_pen_width():
    hairline = Image.new("L", (600, 600), 255)
    ImageDraw.Draw(hairline).line([(150, 150), (380, 150), (240, 380)], fill=0, width=3)  # 1/80 of the digit
    assert pen_width(to_model_input(hairline).numpy() >= 0.5) >= 1.2


def test_a_digit_drawn_with_mnists_pen_is_not_thickened(monkeypatch):
    monkeypatch.setattr(preprocess, "_dilate", lambda *args, **kwargs: pytest.fail("thickened"))
    monkeypatch.setattr(preprocess, "_erode", lambda *args, **kwargs: pytest.fail("narrowed"))
    to_model_input(seven())


def test_a_marker_drawing_gets_mnists_pen_width():
    marker = Image.new("L", (600, 600), 255)
    ImageDraw.Draw(marker).line([(150, 150), (380, 150), (240, 420)], fill=0, width=100)  # a third of the digit
    assert pen_width(to_model_input(marker).numpy() >= 0.5) <= 3.0  # 4.1 if it were not narrowed


def test_a_blot_too_thick_to_narrow_is_framed_as_it_is():
    blot = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(blot).ellipse([100, 120, 300, 280], fill=0)
    rows, cols = to_model_input(blot).nonzero().unbind(1)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20


def test_a_symmetric_digit_lands_inside_the_central_20_by_20_box():
    rows, cols = to_model_input(ring()).nonzero().unbind(1)
    assert rows.min() >= 4 and cols.min() >= 4 and rows.max() < 24 and cols.max() < 24


def test_faint_background_noise_is_dropped():
    clean = seven(ink=0, background=255)
    noise = np.random.default_rng(0).normal(0, 4, (200, 200))  # a camera's grain: a few grey levels
    noisy = Image.fromarray(np.clip(np.asarray(clean) + noise, 0, 255).astype(np.uint8))
    assert (to_model_input(noisy) - to_model_input(clean)).abs().mean() < 0.001

@pytest.mark.parametrize("blank", [Image.new("L", (300, 300), 255), Image.new("L", (300, 300), 0),
                                   Image.new("RGBA", (300, 300), (0, 0, 0, 0)),
                                   Image.fromarray(np.random.default_rng(0).integers(250, 256, (300, 300), np.uint8))],
                         ids=["white", "black", "transparent", "faint-noise"])
def test_a_blank_picture_asks_for_a_digit(blank):
    with pytest.raises(ImageError, match="Draw a digit"):
        to_model_input(blank)


def test_a_single_dot_is_refused_as_too_small():
    """One brush dot spans 2 % of the picture, under MIN_SPAN: it asks for a bigger drawing, it is not read."""
    dot = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(dot).ellipse([140, 140, 146, 146], fill=0)
    with pytest.raises(ImageError, match="too small to be a digit"):
        to_model_input(dot)


@pytest.mark.parametrize("size", [(1, 1), (10000, 10), (10, 10000), (3, 200)])
def test_a_picture_too_small_or_thin_for_a_digit_is_refused_clearly(size):
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).line([(0, 0), size], fill=0, width=3)
    with pytest.raises(ImageError, match="too"):
        to_model_input(image)


def test_a_huge_picture_is_shrunk_before_any_big_array_is_made():
    huge = seven(8000, ink=0, background=255)  # 64 MB of pixels
    tracemalloc.start()  # numpy reports its allocations here; one full-size float copy would be 256 MB
    try:
        digit = to_model_input(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    assert (digit - to_model_input(seven())).abs().mean() < 0.02  # the same drawing, only bigger


@pytest.mark.parametrize("convert", [lambda im: im.convert("RGB"), lambda im: im.convert("P"),
                                     lambda im: im.convert("LA"), lambda im: im.convert("1"),
                                     lambda im: Image.fromarray(np.asarray(im).astype(np.uint16) * 257)],
                         ids=["RGB", "palette", "LA", "1-bit", "16-bit"])
def test_every_pixel_mode_gives_the_same_digit(convert):
    image = convert(seven())
    if image.mode.startswith("I;16"):
        assert np.asarray(image).max() == 65535
    assert_close(to_model_input(image), to_model_input(seven()))


def test_a_palette_with_a_transparent_background_works():
    sketch = seven(mode="RGBA", ink=(0, 0, 0, 255), background=(0, 0, 0, 0)).convert("P")
    opened = open_image(png_bytes(sketch, transparency=0))
    assert opened.mode == "P" and "transparency" in opened.info
    assert_close(to_model_input(opened), to_model_input(seven()))


@pytest.mark.parametrize("array", [np.asarray(seven()), np.asarray(seven().convert("RGB")),
                                   np.asarray(seven().convert("RGBA")), np.asarray(seven()) / 255.0,
                                   np.asarray(seven())[..., None]],
                         ids=["HxW-uint8", "HxWx3", "HxWx4", "HxW-float", "HxWx1"])
def test_numpy_arrays_give_the_same_digit(array):
    assert_close(to_model_input(array), to_model_input(seven()))


def test_an_animated_gif_uses_its_first_frame():
    buffer = io.BytesIO()
    first, second = seven(), ImageOps.mirror(seven())
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100)
    opened = open_image(buffer.getvalue())
    assert opened.n_frames == 2
    opened.seek(1)  # a caller left it on another frame
    assert_close(to_model_input(opened), to_model_input(first))


def test_exif_orientation_is_applied():
    upright = seven(ink=0, background=255)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a sideways camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    digit = to_model_input(open_image(buffer.getvalue()))
    assert (digit - to_model_input(upright)).abs().mean() < 0.02
    assert (digit - to_model_input(stored)).abs().mean() > 0.05


def test_open_image_reads_a_path(tmp_path):
    path = tmp_path / "seven.png"
    seven().save(path)
    assert_close(to_model_input(open_image(path)), to_model_input(seven()))


@pytest.mark.parametrize("data, message", [(b"", "empty"), (b"hello, not a picture", "not a picture"),
                                           (png_bytes(seven())[:300], "damaged")],
                         ids=["empty", "not-an-image", "truncated"])
def test_unreadable_files_raise_a_friendly_image_error(data, message):
    with pytest.raises(ImageError, match=message):
        open_image(data)


def test_a_truncated_file_opened_by_the_caller_raises_an_image_error():
    with pytest.raises(ImageError, match="damaged"):
        to_model_input(Image.open(io.BytesIO(png_bytes(seven())[:300])))

def test_a_decompression_bomb_is_refused(monkeypatch):
    data = png_bytes(Image.new("L", (1000, 1000), 255))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # so a small file stands in for a bomb
    with pytest.raises(ImageError, match="too large"):
        open_image(data)


def sketchpad_drawing(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit as a Sketchpad delivers a drawing: black strokes, 10x bigger, off-centre on 600x600 white RGBA."""
    strokes = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
    canvas = Image.new("RGBA", (600, 600), (255, 255, 255, 255))
    canvas.paste(strokes, tuple(int(offset) for offset in rng.integers(0, 320, size=2)))
    return canvas


@pytest.mark.slow
def test_drawings_keep_99_percent_of_the_accuracy_on_the_dataset_itself(data_dir):
    """Every shipped model, on its own dataset's test pictures drawn on a sketchpad-like page and framed as
    the app frames that dataset's pictures (a 20-pixel box by mass for digits; the whole frame, by the box, for
    Fashion-MNIST)."""
    folders = bundled_folders()
    assert folders, "no model folder in weights/: train one first (python train.py)"
    drawn = {}
    for name, folder in folders.items():
        bundle = load_folder(folder)
        if bundle.dataset not in drawn:
            split = load_split(bundle.dataset, "test", data_dir)
            images, labels = split.images[:2000, 0], split.labels[:2000]  # (N, 28, 28) uint8
            rng = np.random.default_rng(0)
            pages = torch.stack([to_model_input(sketchpad_drawing(item.numpy(), rng), bundle.framing)
                                 for item in images])
            drawn[bundle.dataset] = images, labels, pages
        images, labels, pages = drawn[bundle.dataset]
        with torch.no_grad():
            original = (bundle.model(images[:, None].float() / 255).argmax(-1) == labels).float().mean()
            preprocessed = (bundle.model(pages[:, None]).argmax(-1) == labels).float().mean()
        assert preprocessed >= 0.99 * original, f"{name}: {preprocessed:.4f} on drawings, {original:.4f} as stored"


def test_the_pads_data_url_reads_back_as_the_same_picture():
    from vit.preprocess import data_url, open_data_url
    canvas = np.full((336, 336, 4), 255, np.uint8)
    canvas[60:280, 160:176, :3] = 0  # a black "1" on the pad's opaque white, RGBA as a canvas sends it
    assert np.array_equal(np.asarray(open_data_url(data_url(canvas))), canvas)
    for sent in [None, "", "data:image/jpeg;base64,/9j/", "data:image/png;base64,@@", "data:image/png;base64,"]:
        with pytest.raises(ImageError, match="did not arrive as a picture"):
            open_data_url(sent)


# Pictures of paper: the page's light, shadow, tone and ruled lines are divided out before the ink is found.

@pytest.fixture(scope="module")
def validation_digits(data_dir) -> tuple[np.ndarray, list[int]]:
    """The first validation digits (28, 28) uint8 and their labels: pictures for checking, never for training."""
    from vit.data import carve_validation
    _, validation = carve_validation(load_split("mnist", "train", data_dir))
    return validation.images[:3, 0].numpy(), validation.labels[:3].tolist()


@pytest.fixture(scope="module")
def default_model():
    return load_folder(bundled_folders()["mnist"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_digit_photographed_on_paper_comes_out_as_on_clean_paper_and_is_read(kind, validation_digits, default_model):
    for index, (digit, label) in enumerate(zip(*validation_digits)):
        photo = to_model_input(photographed(digit, kind, np.random.default_rng(index)))
        clean = to_model_input(photographed(digit, CLEAN, np.random.default_rng(index)))  # the same place and turn
        # 0.07: without page removal these differ by 0.07 to 0.22 (20 digits of each kind, measured)
        assert (photo - clean).abs().mean() < 0.07, f"digit {index}: {(photo - clean).abs().mean():.3f}"
        assert default_model.read(photo.numpy()).best == label


def shadowed_page(share: float, lit: np.ndarray | float = 0.95, side: int = 400) -> np.ndarray:
    """A blank page (side, side) in grey, lit at `lit`, with a sharp-edged shadow (0.45) over `share` of it, on
    its right, the edge at a slant from top to bottom."""
    rows, cols = np.mgrid[0:side, 0:side] / side
    return np.where(cols + 0.3 * (rows - 0.5) > 1 - share, 0.45, lit).astype(np.float32)


def test_a_sharp_shadow_edge_is_not_taken_for_ink():
    # the page's light is found on a small copy and enlarged: beside the edge it blends both sides, and the
    # paper on the dark side, divided by brighter light than its own, came out 0.47 dark along the whole edge
    # (0.58 % of this page); what is left is where the edge meets the border at a slant (0.06 %)
    flat = page_module.flat_field(shadowed_page(0.3))
    assert (flat < 0.9).mean() < 0.001


def test_a_thin_stroke_on_a_mostly_shadowed_page_is_dark_ink():
    rows, cols = np.mgrid[0:400, 0:400] / 400
    grey = shadowed_page(0.6, lit=0.95 - 0.05 * np.hypot(rows - 0.2, cols - 0.2))  # the lit paper fades outward
    grey[100:220, 150:154] = 0.05  # a thin 1: 0.3 % of the picture, less than the 1 % that counted as its extreme
    small = page_module._resize(grey, page_module._grid_size(grey.shape, page_module.PAGE_GRID))
    assert not page_module._light_ink(small)


def test_the_page_as_read_has_the_shadow_divided_out(validation_digits):
    photo = photographed(validation_digits[0][0], "shadow band", np.random.default_rng(0))
    grey = np.asarray(photo.convert("L"), np.float32) / 255
    page = read_page(photo)
    assert page.flattened and page.flat.shape == page.ink.shape == grey.shape
    paper = page.ink == 0  # the page, away from the ink
    assert np.percentile(grey[paper], 5) < 0.6 < 0.9 < np.percentile(page.flat[paper], 5)  # the shadow, then none


def test_a_page_whose_border_is_lit_alike_but_whose_middle_is_not_has_its_light_divided_out(validation_digits):
    photo = photographed(validation_digits[0][0], "pencil, middle in shadow", np.random.default_rng(0))
    grey = np.asarray(photo.convert("L"), np.float32) / 255
    assert page_module.even_border(grey) and not page_module.even_page(grey)  # its border alone would not tell
    assert read_page(photo).flattened


def test_a_clean_drawing_reads_its_page_from_the_border():
    page = read_page(seven(ink=0, background=255))
    assert not page.flattened and np.array_equal(page.flat, 1 - page.ink)


def test_ruled_lines_go_but_a_stroke_across_them_stays():
    ink = np.zeros((200, 200), np.float32)
    ink[20::30, :] = 0.5     # seven ruled lines, 1 pixel thick
    ink[40:160, 95:103] = 1  # a stroke across three of them
    kept = remove_ruled_lines(ink)
    assert kept[:, :80].max() == 0 and kept[:, 120:].max() == 0  # the lines, away from the stroke
    assert (kept[40:160, 95:103] > 0).all()                      # the stroke, where it crosses them too


def test_a_single_stroke_is_not_taken_for_a_ruled_line():
    ink = np.zeros((200, 200), np.float32)
    ink[10:190, 95:103] = 1  # a "1" from top to bottom: one line, and ruled paper has many
    assert np.array_equal(remove_ruled_lines(ink), ink)


def test_noise_is_never_called_empty():
    # a picture full of grain has no strokes, but it is not empty: a visitor who uploads one is told what it holds
    rng = np.random.default_rng(0)
    said = set()
    for size in (64, 100, 200):
        for channels in ((), (3,)):
            try:
                to_model_input(Image.fromarray(rng.integers(0, 256, (size, size, *channels), dtype=np.uint8)))
            except ImageError as error:
                said.add(str(error))
    assert said and not any("looks empty" in words for words in said), said


def test_a_photo_of_ruled_paper_with_nothing_written_asks_for_a_digit():
    empty = photographed(np.zeros((28, 28), np.uint8), "ruled paper", np.random.default_rng(0))
    with pytest.raises(ImageError, match="Draw a digit"):
        to_model_input(empty)


# Drawings in progress: the pad sends every stroke.

@pytest.mark.parametrize("stroke", [[(0.45, 0.5), (0.6, 0.5)], [(0.25, 0.3), (0.75, 0.33)], [(0.5, 0.5)]],
                         ids=["short-dash", "bar-of-a-7", "dot"])
def test_a_first_stroke_on_the_pad_says_keep_drawing(stroke):
    with pytest.raises(ImageError, match="Keep drawing"):
        to_model_input(drawn_on_pad([stroke]))


def test_a_one_stroke_1_on_the_pad_is_read(default_model):
    one = to_model_input(drawn_on_pad([[(0.52, 0.2), (0.48, 0.8)]]))  # 60 % of the pad tall, slightly slanted
    assert default_model.read(one.numpy()).best == 1


def test_a_photo_with_a_small_digit_is_read_not_asked_for_more(validation_digits, default_model):
    digit, label = validation_digits[0][0], validation_digits[1][0]
    photo = np.asarray(photographed(digit, CLEAN, np.random.default_rng(0)).convert("L"), np.float32)
    page = np.random.default_rng(1).normal(240, 3, (1600, 1600))  # the rest of the page, with the camera's grain
    page[600:1000, 600:1000] = photo  # the digit spans a ninth of the picture: a pad would say "keep drawing"
    small = to_model_input(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)))
    assert default_model.read(small.numpy()).best == label


def test_a_tight_crop_of_a_flat_digit_is_not_asked_for_more(validation_digits):
    digit = validation_digits[0][0]
    flat = Image.fromarray(digit).resize((28, 14), Image.Resampling.BILINEAR)  # twice as wide as tall, cropped
    assert to_model_input(flat).shape == (28, 28)
