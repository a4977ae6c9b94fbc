"""A tiny Vision Transformer for the 8x8 digits, built only from nn.Linear / LayerNorm (LUT-convertible).

Every projection is a plain ``nn.Linear`` (patch embedding, attention ``q``/``k``/``v``/``proj``, MLP ``fc1``/
``fc2``, ``head``), so `lutnb.convert` turns each into a LUT layer. The two activation-by-activation products
of attention, ``Q K^T`` and ``softmax(.) V``, have no fixed weight to precompute a table from: they stay dense
(float here; a dense MAC unit in hardware), as in the paper's transformer setting.

`lutnb.zoo.models.get_model("vit_digits")` builds it. `regroup_channels` permutes a trained ViT's channels
(function-preserving) so that correlated channels share a sub-vector before LUT conversion.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v, proj Linears (QK^T and attn x V stay dense)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape

        def heads(t):
            return t.reshape(B, T, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)  # dense
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))  # att @ v dense


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """ViT for (B, C, H, W) images: non-overlapping p x p patches -> Linear -> blocks -> mean pool -> head."""

    def __init__(self, image_size: int = 8, patch: int = 2, in_channels: int = 1, num_classes: int = 10,
                 dim: int = 64, depth: int = 3, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size={image_size} must be divisible by patch={patch}")
        self.patch, self.image_size = patch, image_size
        n_patches = (image_size // patch) ** 2
        self.patch_embed = nn.Linear(in_channels * patch * patch, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n_patches, C*p*p), row-major over patches."""
        if x.dim() != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"TinyViT expects (B, C, {self.image_size}, {self.image_size}); got {tuple(x.shape)}")
        return F.unfold(x, self.patch, stride=self.patch).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch_embed(self.patches(x)) + self.pos_embed
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h).mean(dim=1))


# width of the digits ViT. At 1 bit per activation (v=4, c=16) width is what the LUT model needs most.
# vit_experiment("l2", 4, 16, seed) for seeds 0/1/2 with vit_digits at each width (one CPU thread):
#   INT8 LUT test accuracy after regroup + block_refit: dim 64 94.2 / 95.6 / 96.7 %, dim 96 97.6 / 97.3 /
#   97.6 %, dim 128 98.0 / 96.7 / 96.0 %; drop after distillation: dim 64 3.11 / 0.89 / 2.44 pt, dim 96
#   -2.00 / 0.67 / 0.00 pt (fp32 97.3 / 98.9 / 97.1 %), dim 128 1.56 / 0.44 / 1.33 pt (fp32 99.1 / 98.4 / 98.2 %)
VIT_DIGITS_DIM = 96


def vit_digits(num_classes: int = 10, **kw) -> TinyViT:
    """The tiny ViT used for digits: 2x2 patches (16 tokens), dim 96, 3 blocks, 4 heads, MLP 192."""
    kw.setdefault("dim", VIT_DIGITS_DIM)
    return TinyViT(num_classes=num_classes, **kw)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in x and y (border filled with the image minimum)."""
    if max_shift == 0:
        return x
    B, _, H, W = x.shape
    xp = F.pad(x, (max_shift,) * 4, value=float(x.min()))
    dy = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator).tolist()
    dx = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator).tolist()
    return torch.stack([xp[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])


# ------------------------------------------------------------------------------- sub-space regrouping
def greedy_groups(x: torch.Tensor, v: int) -> torch.Tensor:
    """A permutation of the K columns of ``x`` (n, K) that puts strongly correlated channels into the same
    contiguous group of ``v`` (one VQ sub-space): greedy, seeded by the highest-variance free channel."""
    K = x.shape[1]
    xc = x.double() - x.double().mean(0)
    std = xc.pow(2).mean(0).sqrt()
    corr = (xc.T @ xc / x.shape[0]) / (std[:, None] * std[None, :]).clamp_min(1e-12)
    corr = corr.abs()
    corr.fill_diagonal_(0)
    free = torch.ones(K, dtype=torch.bool)
    order = []
    while bool(free.any()):
        seed = int(torch.where(free, std, torch.full_like(std, -1.0)).argmax())
        group = [seed]
        free[seed] = False
        while len(group) < v and bool(free.any()):
            score = corr[group].sum(0)
            score[~free] = -1.0
            j = int(score.argmax())
            group.append(j)
            free[j] = False
        order += group
    return torch.tensor(order, dtype=torch.long)


@torch.no_grad()
def regroup_channels(model: TinyViT, x: torch.Tensor, v: int, residual: bool = True) -> TinyViT:
    """A copy of ``model`` with channels permuted so that each VQ sub-space (``v`` contiguous input channels
    of a LUT Linear) holds strongly correlated channels; the function is unchanged (up to float rounding).

    Per block: the MLP hidden units (fc1 rows / fc2 input columns) and, within each head, the value channels
    (v rows / proj input columns). With ``residual``: one permutation of the residual stream (all of its
    readers and writers, LayerNorm parameters, positional embedding), grouped on the LayerNorm outputs that
    q/k/v, fc1 and the head read. Statistics come from the images ``x`` (B, C, H, W).
    """
    import copy

    m = copy.deepcopy(model).eval()
    acts: dict[str, list] = {}

    def keep(name):
        def fn(_m, inp, out):
            t = inp[0] if name.endswith(("fc2", "proj")) else out
            acts.setdefault(name, []).append(t.reshape(-1, t.shape[-1]))
        return fn

    hs = []
    for i, b in enumerate(m.blocks):
        hs += [b.fc2.register_forward_hook(keep(f"{i}.fc2")), b.attn.proj.register_forward_hook(keep(f"{i}.proj")),
               b.norm1.register_forward_hook(keep(f"{i}.norm1")), b.norm2.register_forward_hook(keep(f"{i}.norm2"))]
    try:
        m(x)
    finally:
        for h in hs:
            h.remove()
    A = {k: torch.cat(v_) for k, v_ in acts.items()}
    for i, b in enumerate(m.blocks):
        p = greedy_groups(A[f"{i}.fc2"], v)
        b.fc1.weight.copy_(b.fc1.weight[p])
        b.fc1.bias.copy_(b.fc1.bias[p])
        b.fc2.weight.copy_(b.fc2.weight[:, p])
        at = b.attn
        if at.head_dim % v == 0:
            a = A[f"{i}.proj"]
            p = torch.cat([h * at.head_dim + greedy_groups(a[:, h * at.head_dim:(h + 1) * at.head_dim], v)
                           for h in range(at.heads)])
            at.v.weight.copy_(at.v.weight[p])
            at.v.bias.copy_(at.v.bias[p])
            at.proj.weight.copy_(at.proj.weight[:, p])
    if residual:
        ln = torch.cat([A[f"{i}.{n}"] for i in range(len(m.blocks)) for n in ("norm1", "norm2")])
        p = greedy_groups(ln, v)
        m.patch_embed.weight.copy_(m.patch_embed.weight[p])
        m.patch_embed.bias.copy_(m.patch_embed.bias[p])
        m.pos_embed.copy_(m.pos_embed[..., p])
        for b in m.blocks:
            for norm in (b.norm1, b.norm2):
                norm.weight.copy_(norm.weight[p])
                norm.bias.copy_(norm.bias[p])
            for lin in (b.attn.q, b.attn.k, b.attn.v, b.fc1):
                lin.weight.copy_(lin.weight[:, p])
            for lin in (b.attn.proj, b.fc2):
                lin.weight.copy_(lin.weight[p])
                lin.bias.copy_(lin.bias[p])
        m.norm.weight.copy_(m.norm.weight[p])
        m.norm.bias.copy_(m.norm.bias[p])
        m.head.weight.copy_(m.head.weight[:, p])
    return m
