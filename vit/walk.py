"""One forward pass written out step by step, every intermediate number kept: the "How it decides" tab.

The model's own forward (vit/model.py) goes through modules and a fused attention kernel. Here the same
arithmetic is spelled out from the model's weights: a matrix product per linear layer, LayerNorm's mean and
variance, q·k/√d, softmax, GELU's erf, the residual adds. Each number the tab shows is one a learner could
recompute by hand, and the tests check that this walk lands on the model's logits.

Tokens are numbered as the tab numbers them: 0 is CLS, 1…N are the tiles in reading order.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .model import Block, ViT
from .tiling import patchify


@dataclass
class BlockSteps:
    """One transformer block, pre-norm: x + attention(norm(x)), then + mlp(norm(...)). T tokens, H heads."""
    input: torch.Tensor      # (T, D) the tokens entering the block
    normed: torch.Tensor     # (T, D) LayerNorm 1
    q: torch.Tensor          # (H, T, d) queries: slices of the qkv projection, d = D / H
    k: torch.Tensor          # (H, T, d) keys
    v: torch.Tensor          # (H, T, d) values
    scores: torch.Tensor     # (H, T, T) q·k / √d, a row per query
    attention: torch.Tensor  # (H, T, T) softmax of each row
    heads: torch.Tensor      # (H, T, d) each head's weighted sum of values
    attended: torch.Tensor   # (T, D) the heads side by side, through the output projection
    middle: torch.Tensor     # (T, D) input + attended: the first residual add
    normed2: torch.Tensor    # (T, D) LayerNorm 2
    hidden: torch.Tensor     # (T, M) the MLP's hidden units after GELU
    mlp: torch.Tensor        # (T, D) the MLP's output
    output: torch.Tensor     # (T, D) middle + mlp: the second residual add


@dataclass
class Walk:
    """Every number of one forward pass of one image."""
    pixels: torch.Tensor        # (C, H, W) in [0, 1], as the model is given it
    normalised: torch.Tensor    # (C, H, W) (pixels − mean) / std, the model's first step
    tile_vectors: torch.Tensor  # (N, C·t²) each tile flattened: a row per "word"
    embedded: torch.Tensor      # (N, D) tile_vectors · Wᵀ + b
    tokens: torch.Tensor        # (T, D) CLS in front of the embedded tiles
    positions: torch.Tensor     # (T, D) what is added for each place
    start: torch.Tensor         # (T, D) tokens + positions: block 1's input
    blocks: list[BlockSteps]
    lens: torch.Tensor          # (L + 1, classes) CLS read out through the final norm and head after each block
    logits: torch.Tensor        # (classes,) the model's answer, equal to lens[-1]
    temperature: float          # the calibrated temperature (1 without calibration)
    probabilities: torch.Tensor  # (classes,) softmax(logits / temperature)


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """(x − mean) / √(variance + ε) · γ + β over each token's D numbers, variance without Bessel's correction."""
    mean = x.mean(dim=-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + norm.eps) * norm.weight + norm.bias


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """x · Wᵀ + b."""
    return x @ layer.weight.T + layer.bias


def gelu(x: torch.Tensor) -> torch.Tensor:
    """x · Φ(x), Φ the standard normal's distribution function (the exact GELU, as nn.GELU() computes it)."""
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def softmax(scores: torch.Tensor) -> torch.Tensor:
    """e^(s − max) / Σ e^(s − max) along the last axis: subtracting the maximum changes nothing but overflow."""
    exponentials = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


def block_steps(x: torch.Tensor, block: Block, num_heads: int) -> BlockSteps:
    """One block on the tokens x (T, D), every step kept."""
    tokens, width = x.shape
    size = width // num_heads  # d, each head's width
    normed = layer_norm(x, block.norm1)
    qkv = linear(normed, block.attention.qkv)  # (T, 3D): all queries, then all keys, then all values
    q, k, v = (qkv[:, part * width:(part + 1) * width].reshape(tokens, num_heads, size).transpose(0, 1)
               for part in range(3))  # each (H, T, d): head h owns columns h·d … (h+1)·d − 1 of its third
    scores = q @ k.transpose(1, 2) / math.sqrt(size)  # (H, T, T)
    attention = softmax(scores)
    heads = attention @ v  # (H, T, d)
    attended = linear(heads.transpose(0, 1).reshape(tokens, width), block.attention.proj)
    middle = x + attended
    normed2 = layer_norm(middle, block.norm2)
    hidden = gelu(linear(normed2, block.mlp.up))  # the MLP's dropouts are off in eval, so they are left out
    mlp = linear(hidden, block.mlp.down)
    return BlockSteps(x, normed, q, k, v, scores, attention, heads, attended, middle, normed2, hidden, mlp,
                      middle + mlp)


@torch.no_grad()
def walk(model: ViT, image: torch.Tensor, temperature: float = 1.0) -> Walk:
    """The forward pass of one image (H, W) or (C, H, W), pixels in [0, 1], written out."""
    pixels = image.float().reshape(model.channels, model.image_size, model.image_size)
    normalised = (pixels - model.pixel_mean) / model.pixel_std
    tile_vectors = patchify(normalised[None], model.tile_size, model.cut)[0]  # (N, C·h·w), the model's own cut
    embedded = linear(tile_vectors, model.tile_embedding)
    tokens = torch.cat([model.cls_token[0].detach(), embedded])  # (T, D)
    positions = model.pos_embedding[0].detach()  # a view of a parameter keeps requires_grad, even here
    x, blocks, read_out = tokens + positions, [], []
    start = x
    for block in model.blocks:
        read_out.append(x[0])
        steps = block_steps(x, block, model.num_heads)
        blocks.append(steps)
        x = steps.output
    read_out.append(x[0])
    lens = linear(layer_norm(torch.stack(read_out), model.norm), model.head)  # (L + 1, classes)
    logits = lens[-1]
    return Walk(pixels, normalised, tile_vectors, embedded, tokens, positions, start, blocks, lens, logits,
                temperature, softmax(logits / temperature))
