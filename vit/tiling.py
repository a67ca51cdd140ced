"""Cutting images into the "words" a Vision Transformer reads (ViT paper, section 3.1).

Each cut exists twice on purpose: once by hand with view/permute, once with einops. The model,
the app's tiling tab and the tests all call these functions, so what a user sees is what the model
embeds, and a test proves the two versions agree.

Shapes: images are (B, C, H, W); pieces come back as (B, N, C, h, w), N pieces in reading order.

A model reads one of three cuts (its config's `cut`), each a grid of equal rectangles: square tiles of
`size` pixels, horizontal strips `size` rows high (a grid of one column) or vertical strips `size` columns
wide (a grid of one row). Every explanation lays its per-token numbers out on that grid.
"""

import einops
import torch


def divisors(size: int) -> list[int]:
    """Every whole number that divides `size`."""
    return [d for d in range(1, size + 1) if size % d == 0]


def check_divides(size: int, part: int, what: str) -> None:
    """Raise a ValueError naming the sizes that would work when `part` does not divide `size`."""
    if part < 1 or size % part:
        raise ValueError(f"{what} {part} does not divide the image size {size}; "
                         f"choose one of {divisors(size)}")


def horizontal_strips(images: torch.Tensor, count: int) -> torch.Tensor:
    """Cut into `count` horizontal strips, by hand: (B, C, H, W) -> (B, count, C, H/count, W)."""
    b, c, h, w = images.shape
    check_divides(h, count, "strip count")
    return images.view(b, c, count, h // count, w).permute(0, 2, 1, 3, 4)  # (B, k, C, H/k, W)


def horizontal_strips_einops(images: torch.Tensor, count: int) -> torch.Tensor:
    """Cut into `count` horizontal strips with einops."""
    check_divides(images.shape[2], count, "strip count")
    return einops.rearrange(images, "b c (k h) w -> b k c h w", k=count)


def vertical_strips(images: torch.Tensor, count: int) -> torch.Tensor:
    """Cut into `count` vertical strips, by hand: (B, C, H, W) -> (B, count, C, H, W/count)."""
    b, c, h, w = images.shape
    check_divides(w, count, "strip count")
    return images.view(b, c, h, count, w // count).permute(0, 3, 1, 2, 4)  # (B, k, C, H, W/k)


def vertical_strips_einops(images: torch.Tensor, count: int) -> torch.Tensor:
    """Cut into `count` vertical strips with einops."""
    check_divides(images.shape[3], count, "strip count")
    return einops.rearrange(images, "b c h (k w) -> b k c h w", k=count)


def tiles(images: torch.Tensor, tile_size: int) -> torch.Tensor:
    """Cut into square tiles row by row, by hand: (B, C, H, W) -> (B, H/t * W/t, C, t, t)."""
    b, c, h, w = images.shape
    check_divides(h, tile_size, "tile size")
    check_divides(w, tile_size, "tile size")
    rows, cols = h // tile_size, w // tile_size
    grid = images.view(b, c, rows, tile_size, cols, tile_size)  # (B, C, rows, t, cols, t)
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, t, t)
    return grid.reshape(b, rows * cols, c, tile_size, tile_size)  # (B, N, C, t, t)


def tiles_einops(images: torch.Tensor, tile_size: int) -> torch.Tensor:
    """Cut into square tiles row by row with einops."""
    check_divides(images.shape[2], tile_size, "tile size")
    check_divides(images.shape[3], tile_size, "tile size")
    return einops.rearrange(images, "b c (h t1) (w t2) -> b (h w) c t1 t2", t1=tile_size, t2=tile_size)


def untile(pieces: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Put tiles back together: (B, N, C, t, t) -> (B, C, height, width)."""
    tile_size = pieces.shape[-1]
    return einops.rearrange(pieces, "b (h w) c t1 t2 -> b c (h t1) (w t2)",
                            h=height // tile_size, w=width // tile_size)


def unstrip_horizontal(pieces: torch.Tensor) -> torch.Tensor:
    """Stack horizontal strips back into images: (B, k, C, h, W) -> (B, C, k*h, W)."""
    return einops.rearrange(pieces, "b k c h w -> b c (k h) w")


def unstrip_vertical(pieces: torch.Tensor) -> torch.Tensor:
    """Put vertical strips side by side again: (B, k, C, H, w) -> (B, C, H, k*w)."""
    return einops.rearrange(pieces, "b k c h w -> b c h (k w)")


CUTS = ("tiles", "horizontal-strips", "vertical-strips")


def piece_shape(cut: str, size: int, image_size: int) -> tuple[int, int]:
    """(height, width) in pixels of each piece a cut makes of a square image; bad kinds and sizes raise."""
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {CUTS}, not {cut!r}")
    what = "tile size" if cut == "tiles" else "strip width"
    check_divides(image_size, size, what)
    return {"tiles": (size, size), "horizontal-strips": (size, image_size),
            "vertical-strips": (image_size, size)}[cut]


def grid_shape(cut: str, size: int, image_size: int) -> tuple[int, int]:
    """(rows, columns) of pieces: 7×7 for tiles of 4, 14×1 for horizontal strips 2 rows high."""
    height, width = piece_shape(cut, size, image_size)
    return image_size // height, image_size // width


def pieces(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cut into rectangles `height` × `width`, row by row, by hand: (B, C, H, W) -> (B, N, C, height, width).
    Tiles are squares; a horizontal strip is a rectangle as wide as the image, a vertical one as high."""
    b, c, h, w = images.shape
    check_divides(h, height, "piece height")
    check_divides(w, width, "piece width")
    grid = images.view(b, c, h // height, height, w // width, width).permute(0, 2, 4, 1, 3, 5)  # (B, r, c, C, h, w)
    return grid.reshape(b, -1, c, height, width)


def pieces_einops(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cut into rectangles `height` × `width` with einops."""
    check_divides(images.shape[2], height, "piece height")
    check_divides(images.shape[3], width, "piece width")
    return einops.rearrange(images, "b c (r h) (k w) -> b (r k) c h w", h=height, w=width)


def unpieces(parts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Put rectangles back together: (B, N, C, h, w) -> (B, C, height, width)."""
    return einops.rearrange(parts, "b (r k) c h w -> b c (r h) (k w)", r=height // parts.shape[-2],
                            k=width // parts.shape[-1])


def cut_pieces(images: torch.Tensor, cut: str, size: int) -> torch.Tensor:
    """The pieces a model with this cut reads, (B, N, C, h, w)."""
    return pieces(images, *piece_shape(cut, size, images.shape[-1]))


def patchify(images: torch.Tensor, tile_size: int, cut: str = "tiles") -> torch.Tensor:
    """The model's view: pieces flattened into vectors, (B, C, H, W) -> (B, N, C*h*w)."""
    return cut_pieces(images, cut, tile_size).flatten(2)  # (B, N, C*h*w)


def piece_noun(cut: str) -> str:
    """What one piece of the cut is called in a sentence: "tile" or "strip"."""
    return "tile" if cut == "tiles" else "strip"


def cut_words(cut: str, size: int, image_size: int = 28) -> str:
    """The pieces in words: "tiles of 4×4 pixels", "horizontal strips 2 rows high", "vertical strips 2 columns
    wide"."""
    piece_shape(cut, size, image_size)  # raises on a bad cut
    unit = "row" if cut == "horizontal-strips" else "column"
    return {"tiles": f"tiles of {size}×{size} pixel{'s' * (size > 1)}",
            "horizontal-strips": f"horizontal strips {size} {unit}{'s' * (size > 1)} high",
            "vertical-strips": f"vertical strips {size} {unit}{'s' * (size > 1)} wide"}[cut]
