"""A Vision Transformer: "An Image is Worth 16x16 Words" (Dosovitskiy et al. 2020, section 3.1).

The image is cut into tiles, or strips (vit/tiling.py); each piece is flattened and linearly embedded like a word;
a learned CLS token goes in front; positions are added; pre-norm transformer blocks let every token look
at every other one; the class is read from the CLS token. Read top to bottom: helpers, attention, MLP,
block, ViT.
"""

import math
import os

import einops
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors import SafetensorError
from safetensors.torch import load_file

from .tiling import grid_shape, patchify, piece_shape

POS_EMBEDDINGS = ("learned", "sinusoidal", "none")
WEIGHTS_NAME = "model.safetensors"


def sinusoidal_embedding(num_positions: int, embed_size: int) -> torch.Tensor:
    """Fixed sine/cosine position codes of "Attention Is All You Need", (num_positions, embed_size)."""
    position = torch.arange(num_positions).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(torch.arange(0, embed_size, 2) * (-math.log(10000.0) / embed_size))  # (D/2,)
    codes = torch.zeros(num_positions, embed_size)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: embed_size // 2])
    return codes


class Attention(nn.Module):
    """Multi-head self-attention; hands back its probabilities when asked."""

    def __init__(self, embed_size: int, num_heads: int):
        super().__init__()
        if embed_size % num_heads:
            raise ValueError(f"embed_size {embed_size} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_size, 3 * embed_size)
        self.proj = nn.Linear(embed_size, embed_size)

    def forward(self, x: torch.Tensor, return_attention: bool = False, heads_off: frozenset[int] = frozenset()):
        q, k, v = einops.rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads)
        if return_attention:  # the manual path: the probabilities are the point
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, T, T)
            attention = scores.softmax(dim=-1)
            out = attention @ v  # (B, h, T, d)
        else:  # the fused path: same numbers, faster, nothing kept
            attention = None
            out = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, d)
        if heads_off:  # a head switched off contributes nothing to the projection (an experiment, not training)
            kept = torch.tensor([h not in heads_off for h in range(self.num_heads)], dtype=out.dtype, device=out.device)
            out = out * kept.view(1, -1, 1, 1)
        return self.proj(einops.rearrange(out, "b h t d -> b t (h d)")), attention


class MLP(nn.Sequential):
    """The per-token feed-forward network: up to mlp_size, GELU, back down to embed_size.

    A Sequential, so the weights keep their names (mlp.0, mlp.3); readers take the layers by name."""

    def __init__(self, embed_size: int, mlp_size: int, dropout: float):
        super().__init__(nn.Linear(embed_size, mlp_size), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mlp_size, embed_size), nn.Dropout(dropout))

    @property
    def up(self) -> nn.Linear:
        """embed_size → mlp_size."""
        return self[0]

    @property
    def activation(self) -> nn.GELU:
        return self[1]

    @property
    def down(self) -> nn.Linear:
        """mlp_size → embed_size."""
        return self[3]


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, embed_size: int, num_heads: int, mlp_size: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_size)
        self.attention = Attention(embed_size, num_heads)
        self.norm2 = nn.LayerNorm(embed_size)
        self.mlp = MLP(embed_size, mlp_size, dropout)

    def forward(self, x: torch.Tensor, return_attention: bool = False, heads_off: frozenset[int] = frozenset()):
        attended, attention = self.attention(self.norm1(x), return_attention, heads_off)
        x = x + attended
        return x + self.mlp(self.norm2(x)), attention


class ViT(nn.Module, PyTorchModelHubMixin, library_name="vit-explainer", pipeline_tag="image-classification",
          license="mit", tags=["vision-transformer", "image-classification", "mnist"]):
    """Vision Transformer on raw pixels in [0, 1]; the constructor's arguments are its config."""

    def __init__(self, *, image_size: int = 28, channels: int = 1, num_classes: int = 10,
                 tile_size: int = 4,           # side of a square tile (or a strip's width), must divide image_size
                 cut: str = "tiles",           # tiles | horizontal-strips | vertical-strips (vit/tiling.py)
                 embed_size: int = 64,         # width of every token
                 num_layers: int = 6,          # transformer blocks
                 num_heads: int = 4,           # attention heads per block
                 mlp_size: int = 128,          # hidden width of each block's MLP
                 pos_embedding: str = "learned",  # learned | sinusoidal | none
                 dropout: float = 0.0,
                 pixel_mean: float = 0.1307,   # normalisation happens inside, so callers pass [0, 1]
                 pixel_std: float = 0.3081,
                 class_names: list[str] | None = None):
        super().__init__()
        self.piece = piece_shape(cut, tile_size, image_size)  # (h, w) pixels of each token's piece; raises if bad
        self.grid = grid_shape(cut, tile_size, image_size)     # (rows, columns) of pieces
        if class_names and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class_names for {num_classes} classes")
        if pos_embedding not in POS_EMBEDDINGS:
            raise ValueError(f"pos_embedding must be one of {POS_EMBEDDINGS}, not {pos_embedding!r}")
        self.image_size, self.channels, self.tile_size, self.cut = image_size, channels, tile_size, cut
        self.num_layers, self.num_heads, self.pos_embedding_kind = num_layers, num_heads, pos_embedding
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.num_tiles = self.grid[0] * self.grid[1]
        num_tokens = self.num_tiles + 1  # + CLS

        self.tile_embedding = nn.Linear(channels * self.piece[0] * self.piece[1], embed_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_size))
        if pos_embedding == "learned":
            self.pos_embedding = nn.Parameter(torch.zeros(1, num_tokens, embed_size))
            nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        else:
            codes = sinusoidal_embedding(num_tokens, embed_size) if pos_embedding == "sinusoidal" else torch.zeros(num_tokens, embed_size)
            self.register_buffer("pos_embedding", codes.unsqueeze(0), persistent=False)  # (1, T, D)
        self.blocks = nn.ModuleList(Block(embed_size, num_heads, mlp_size, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_size)
        self.head = nn.Linear(embed_size, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_linear)

    @property
    def config(self) -> dict:
        """The constructor arguments that rebuild this model (what config.json holds)."""
        return dict(self._hub_mixin_config)

    @property
    def parameter_count(self) -> int:
        """How many numbers training learns (fixed sinusoidal positions are a buffer, not counted)."""
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def _init_linear(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward_features(self, images: torch.Tensor, return_attention: bool = False,
                         heads_off: frozenset[tuple[int, int]] = frozenset(), layers_off: frozenset[int] = frozenset()):
        """Tokens after the last block's norm, (B, T, D), and attention (B, layers, heads, T, T) or None.

        Experiments: `heads_off` holds (block, head) pairs whose output is zeroed before the block's projection;
        a block in `layers_off` is skipped, the tokens passing it unchanged (its attention comes back as zeros)."""
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        x = (images - self.pixel_mean) / self.pixel_std
        x = self.tile_embedding(patchify(x, self.tile_size, self.cut))  # (B, N, D)
        cls_token = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls_token, x], dim=1) + self.pos_embedding  # (B, T, D), T = N + 1
        maps = []
        for index, block in enumerate(self.blocks):
            if index in layers_off:
                maps.append(x.new_zeros(x.shape[0], self.num_heads, x.shape[1], x.shape[1]) if return_attention else None)
                continue
            x, attention = block(x, return_attention, frozenset(h for b, h in heads_off if b == index))
            maps.append(attention)
        attention = torch.stack(maps, dim=1) if return_attention else None  # (B, L, H, T, T)
        return self.norm(x), attention

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class logits read from the CLS token, (B, num_classes)."""
        return self.head(tokens[:, 0])

    def forward(self, images: torch.Tensor, return_attention: bool = False,
                heads_off: frozenset[tuple[int, int]] = frozenset(), layers_off: frozenset[int] = frozenset()):
        """Logits (B, classes); with return_attention, (logits, attention (B, layers, heads, T, T)).
        `heads_off` and `layers_off`: see forward_features."""
        tokens, attention = self.forward_features(images, return_attention, heads_off, layers_off)
        logits = self.forward_head(tokens)
        return (logits, attention) if return_attention else logits

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs):
        """Rebuild from config.json + model.safetensors, strictly: never pickle, never a silent default."""
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, WEIGHTS_NAME)
        else:
            weights = hf_hub_download(repo_id=model_id, filename=WEIGHTS_NAME, revision=revision,
                                      cache_dir=cache_dir, force_download=force_download, token=token,
                                      local_files_only=local_files_only)
        try:
            model = cls(**model_kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(f"config.json describes no valid model: {error}") from error
        try:
            tensors = load_file(weights, device=map_location)
            expected = model.state_dict()
            problems = [f"missing tensors {sorted(expected.keys() - tensors.keys())}" if strict and expected.keys() - tensors.keys() else "",
                        f"unexpected tensors {sorted(tensors.keys() - expected.keys())}" if strict and tensors.keys() - expected.keys() else "",
                        *(f"{k} has shape {tuple(v.shape)}, config.json implies {tuple(expected[k].shape)}"
                          for k, v in tensors.items() if k in expected and v.shape != expected[k].shape),
                        *(f"{k} is {v.dtype}, expected {expected[k].dtype}"  # load_state_dict would cast silently
                          for k, v in tensors.items() if k in expected and v.dtype != expected[k].dtype),
                        *(f"{k} holds values that are not numbers (NaN or infinite)"  # damaged bytes read as floats
                          for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all())]
            if any(problems):
                raise ValueError("; ".join(p for p in problems if p)[:400])
            model.load_state_dict(tensors, strict=strict)
        except (SafetensorError, RuntimeError, OSError, ValueError) as error:
            raise ValueError(f"{weights} does not hold the weights its config.json describes: {error}") from error
        return model.eval()
