"""Augmentation of a whole batch at once: a flag on some 1s, stroke thickness, rotation, zoom, shift, elastic
distortion and mirror images, in one resampling whose grid is built by one einsum (faster on a CPU than
affine_grid: `python -m bench`, "before / now"); then some images as a coarse scan shows them, and in some a
rectangle erased. The flag, thickness, elastic distortion and coarse scans stand in for writers and scanners MNIST
does not have.
"""

import functools
import math

import torch
import torch.nn.functional as F

from .recipe import Recipe


def augment(images: torch.Tensor, recipe: Recipe, generator: torch.Generator,
            labels: torch.Tensor | None = None) -> torch.Tensor:
    """A flag on a share of the 1s (needs `labels`), random stroke thickness, then rotation, zoom, shift and
    elastic distortion of a whole batch (B, C, H, W) in one resampling, a left-right mirror for a share of the
    images, a share seen as a coarse scan and a share with a rectangle erased. The flag, thickness, elastic
    distortion and coarse scans stand in for writers and scanners MNIST does not have."""
    b, _, h, _ = images.shape
    uniform = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    if recipe.flag_ones and labels is not None:
        chosen = ((labels == 1) & (torch.rand(b, generator=generator) < recipe.flag_ones)).nonzero().squeeze(1)
        images = images.clone()
        images[chosen] = add_flag(images[chosen], generator)
    if recipe.thickness:
        images = vary_thickness(images, uniform(b) * recipe.thickness)
    if recipe.flip:
        mirrored = torch.rand(b, generator=generator) < recipe.flip
        images = torch.where(mirrored.view(-1, 1, 1, 1), images.flip(-1), images)
    angle = uniform(b) * math.radians(recipe.rotate)
    zoom = 1 + uniform(b) * recipe.scale
    shift = uniform(b, 2) * recipe.shift * 2 / h  # affine_grid works in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    warp = elastic_field(b, h, recipe.elastic, generator) if recipe.elastic else None
    images = resample(images, theta, warp)
    if recipe.coarse:
        images = coarse_scan(images, torch.rand(b, generator=generator) < recipe.coarse, generator)
    if recipe.erase:
        images = erase(images, torch.rand(b, generator=generator) < recipe.erase, generator)
    return images


def add_flag(ones: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each 1 (N, C, H, W) with a straight stroke from the top of its ink down to the left, as wide as the 1's
    own stroke, 25-50 % of its height long. MNIST's writers seldom drew it; many others always do, and without
    it a flagged 1 reads as a 7. The flag leaves the stem at 20-45 degrees: a 7's bar leaves its stem at 55 or
    more, and a flag that wide would teach the model that 7s are 1s."""
    n, _, h, w = ones.shape
    if not n:
        return ones
    ink = ones[:, 0] > 0.5
    rows = ink.any(2)                                                       # (N, H): rows with ink
    top = rows.float().argmax(1)
    bottom = h - 1 - rows.flip(1).float().argmax(1)
    height = (bottom - top + 1).float()
    start, foot = _ink_centre(ink, top), _ink_centre(ink, bottom)          # (N, 2) as (x, y)
    stem = torch.atan2(foot[:, 1] - start[:, 1], foot[:, 0] - start[:, 0])   # 90 degrees: upright; y points down
    angle = stem + torch.deg2rad(20 + 25 * torch.rand(n, generator=generator))  # turned toward the left
    length = height * (0.25 + 0.25 * torch.rand(n, generator=generator))
    end = start + length[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    width = (ink.sum((1, 2)) / height).clamp(1.5, 4.0)                     # ink per row: the stroke's width
    return torch.maximum(ones, _segment(start, end, width, h, w).to(ones))


def _ink_centre(ink: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """(N, 2): the middle of each image's ink in the given row, as (x, y)."""
    line = ink[torch.arange(len(ink)), row].float()                        # (N, W)
    x = (line * torch.arange(ink.shape[2])).sum(1) / line.sum(1).clamp(min=1)
    return torch.stack([x, row.float()], 1)


def _segment(start: torch.Tensor, end: torch.Tensor, width: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 1, H, W): a straight stroke from start to end (N, 2), `width` pixels wide, edges anti-aliased."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    pixels = torch.stack([xs, ys], -1).view(1, h * w, 2)
    along = (end - start)[:, None]                                         # (N, 1, 2)
    t = (((pixels - start[:, None]) * along).sum(-1) / (along * along).sum(-1).clamp(min=1e-6)).clamp(0, 1)
    distance = (pixels - start[:, None] - t[..., None] * along).norm(dim=-1)
    return (width[:, None] / 2 + 0.5 - distance).clamp(0, 1).view(-1, 1, h, w)


def vary_thickness(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Blend each image toward its 3×3 dilation (amount > 0: thicker strokes) or erosion (amount < 0: thinner)."""
    thicker = F.max_pool2d(images, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-images, 3, stride=1, padding=1)
    amount = amount.view(-1, 1, 1, 1)
    return images + amount.clamp(min=0) * (thicker - images) + (-amount).clamp(min=0) * (thinner - images)


COARSE_SIDES = (10, 16)  # a coarse scan's side in pixels, from ... to: 7 to 11 pixels across a digit's 20-pixel box


def coarse_scan(images: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The `chosen` images (B,) of a batch (B, C, H, W) as a coarse scan shows them: averaged down to a few
    pixels a side and smoothed back up (strokes soft and blocky), their darkest ink made full again, half of them
    then sharpened back around half-ink as a bilevel scan would be. Scans and soft photos of other writers'
    digits look so; without it such a digit makes every class fire weakly and is refused as not a digit."""
    index = chosen.nonzero().squeeze(1)
    if not len(index):
        return images
    h, w = images.shape[-2:]
    sides = torch.randint(COARSE_SIDES[0], COARSE_SIDES[1] + 1, (len(index),), generator=generator)
    sharp = torch.rand(len(index), generator=generator) < 0.5
    images = images.clone()
    for side in sides.unique().tolist():
        picked = index[sides == side]
        small = F.interpolate(images[picked], size=(side, side), mode="area")
        smooth = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        images[picked] = smooth / smooth.amax((1, 2, 3), keepdim=True).clamp(min=1e-3)  # a scan's darkest ink: full
    crisp = index[sharp]
    images[crisp] = ((images[crisp] - 0.5) * 3 + 0.5).clamp(0, 1)
    return images


ERASED_AREA, ERASED_RATIO = (0.02, 0.4), (0.3, 1 / 0.3)  # Zhong et al. 2020's ranges: share of the area, sides


def erase(images: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020): in each `chosen` image (B,) of a batch (B, C, H, W) a rectangle of
    2-40 % of the area, its sides in a ratio of 0.3 to 3.3, placed at random, is replaced by uniform noise. The
    model must answer from what is left, as when part of a garment is hidden or out of the frame."""
    b, _, h, w = images.shape
    area = h * w * (ERASED_AREA[0] + (ERASED_AREA[1] - ERASED_AREA[0]) * torch.rand(b, generator=generator))
    log_low, log_high = math.log(ERASED_RATIO[0]), math.log(ERASED_RATIO[1])
    ratio = torch.exp(log_low + (log_high - log_low) * torch.rand(b, generator=generator))  # height / width
    height = (area * ratio).sqrt().round().clamp(1, h)
    width = (area / ratio).sqrt().round().clamp(1, w)
    top = ((h - height + 1) * torch.rand(b, generator=generator)).floor()
    left = ((w - width + 1) * torch.rand(b, generator=generator)).floor()
    rows, columns = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + height).view(-1, 1, 1))
              & (columns >= left.view(-1, 1, 1)) & (columns < (left + width).view(-1, 1, 1)))  # (B, H, W)
    mask = (inside & chosen.view(-1, 1, 1))[:, None].to(images.device)
    return torch.where(mask, torch.rand(images.shape, generator=generator).to(images), images)


def elastic_field(b: int, size: int, pixels: float, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W, 2) smooth random displacements of about `pixels` at most (bicubic interpolation overshoots the
    lattice by up to a quarter), in grid_sample's [-1, 1] units: random offsets on a 4×4 lattice, interpolated
    bicubically, so strokes bend rather than jitter."""
    coarse = (torch.rand(b, 2, 4, 4, generator=generator) * 2 - 1) * pixels * 2 / size
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)


def resample(images: torch.Tensor, theta: torch.Tensor, warp: torch.Tensor | None = None) -> torch.Tensor:
    """grid_sample(images, affine_grid(theta) + warp), with the grid built by one einsum: on a CPU the whole
    resampling is several times faster than through affine_grid (`python -m bench`, "before / now")."""
    b, _, h, w = images.shape
    grid = torch.einsum("bij,pj->bpi", theta, _pixel_centres(h, w).to(theta)).reshape(b, h, w, 2)  # (B, H, W, 2)
    if warp is not None:
        grid = grid + warp
    return F.grid_sample(images, grid.to(images.device), align_corners=False)


@functools.cache
def _pixel_centres(h: int, w: int) -> torch.Tensor:
    """(H*W, 3): each output pixel's centre as (x, y, 1) in affine_grid's [-1, 1] coordinates."""
    identity = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False).reshape(h * w, 2)
    return torch.cat([identity, torch.ones(h * w, 1)], dim=1)
