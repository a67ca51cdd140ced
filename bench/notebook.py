"""The notebook this project grew from, re-written: the seed's recipe, whose time to its 96.97 % the benchmark
extrapolates from the epochs it times (it took 500).

Per-item Dataset and DataLoader, one nn.Linear per head with softmax(q k^T / sqrt(d)) v written out,
nn.Embedding positions, Adam at 3e-4 and torch's default threads. tests/test_bench.py checks that
NotebookNet computes what vit.ViT's tiny preset computes: the same network, trained the seed's way.
"""

import math

import einops
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vit.data import Split

class NotebookDataset(Dataset):
    """Per-item access as the notebook had it, `torchvision.datasets.MNIST(transform=ToTensor())` (peluche/ViT,
    vit.ipynb, "data"): each call makes a PIL image of one digit and turns it into a float tensor (1, 28, 28)
    in [0, 1]. torchvision itself cannot be installed beside this torch, so its two steps are written out."""

    def __init__(self, split: Split):
        self.images, self.labels = split.images[:, 0].numpy(), split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        picture = Image.fromarray(self.images[index])  # mode L: what torchvision's MNIST hands its transform
        pixels = torch.from_numpy(np.array(picture, dtype=np.uint8, copy=True))  # ToTensor: (H, W) uint8 ...
        return pixels.unsqueeze(0).float().div(255), int(self.labels[index])   # ... -> (1, H, W) in [0, 1]


class NotebookHead(nn.Module):
    """One attention head written out: softmax(q k^T / sqrt(d)) v, no fused kernel."""

    def __init__(self, embed_size: int, head_size: int):
        super().__init__()
        self.query = nn.Linear(embed_size, head_size, bias=False)
        self.key = nn.Linear(embed_size, head_size, bias=False)
        self.value = nn.Linear(embed_size, head_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, hs)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (B, T, T)
        return weights @ v  # (B, T, hs)


class NotebookBlock(nn.Module):
    """Pre-norm block with a list of heads concatenated and projected, then the MLP."""

    def __init__(self, embed_size: int, num_heads: int, mlp_size: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(embed_size), nn.LayerNorm(embed_size)
        self.heads = nn.ModuleList(NotebookHead(embed_size, embed_size // num_heads) for _ in range(num_heads))
        self.proj = nn.Linear(embed_size, embed_size)
        self.mlp = nn.Sequential(nn.Linear(embed_size, mlp_size), nn.GELU(), nn.Linear(mlp_size, embed_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(x)
        x = x + self.proj(torch.cat([head(normed) for head in self.heads], dim=-1))  # (B, T, D)
        return x + self.mlp(self.norm2(x))


class NotebookNet(nn.Module):
    """The notebook's tiny ViT, re-written as the reference: nn.Embedding positions, CLS, manual attention."""

    def __init__(self, *, tile_size: int = 7, embed_size: int = 16, num_layers: int = 2, num_heads: int = 1,
                 mlp_size: int = 32, image_size: int = 28, channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.tile_size = tile_size
        context_size = (image_size // tile_size) ** 2 + 1  # tiles + CLS
        self.positional_embedding = nn.Embedding(context_size, embed_size)
        self.tile_embedding = nn.Linear(tile_size * tile_size * channels, embed_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_size))
        self.blocks = nn.Sequential(*(NotebookBlock(embed_size, num_heads, mlp_size) for _ in range(num_layers)))
        self.norm = nn.LayerNorm(embed_size)
        self.head = nn.Linear(embed_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = einops.rearrange(x, "b c (h t1) (w t2) -> b (h w) (c t1 t2)", t1=self.tile_size, t2=self.tile_size)
        x = self.tile_embedding(x)  # (B, N, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # (B, T, D)
        x = x + self.positional_embedding(torch.arange(x.shape[1]))
        return self.head(self.norm(self.blocks(x))[:, 0])


def notebook_steps(train_split: Split, architecture: dict, batch_size: int = 128):
    """The notebook's training loop, forever; yields the images of each step."""
    torch.manual_seed(0)
    model = NotebookNet(**architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    loader = DataLoader(NotebookDataset(train_split), batch_size=batch_size, shuffle=True)
    model.train()
    while True:
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            loss.item()  # the notebook kept the running loss
            yield len(labels)
