"""Cutting images into the "words" a Vision Transformer reads (ViT paper, section 3.1).

Each cut exists twice on purpose: once by hand with view/permute, once with einops. The model,
the app's tiling tab and the tests all call these functions, so what a user sees is what the model
embeds, and a test proves the two versions agree.

Shapes: images are (B, C, H, W); pieces come back as (B, N, C, h, w), N pieces in reading order.
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


def patchify(images: torch.Tensor, tile_size: int) -> torch.Tensor:
    """The model's view: tiles flattened into vectors, (B, C, H, W) -> (B, N, C*t*t)."""
    return tiles(images, tile_size).flatten(2)  # (B, N, C*t*t)
