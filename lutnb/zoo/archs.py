"""The held-out architecture zoo (issue 14): six small models that LUTBoost's defaults were never tuned on.

Each factory takes the data set's ``input_shape`` (C, H, W) and ``num_classes`` and builds the same design for
2-D digits (1, 8, 8) and for MNIST-1D, which enters as a (1, 1, 40) image (its convolutions are (1, k) kernels;
`lutnb.convert` converts ``nn.Conv2d`` and ``nn.Linear``). They were written to look like what users bring,
not like the project's tuned models: first layers not named ``conv1``, widths and K that are not multiples of
v=4, 1x1 shortcuts, an MLP head, LayerNorm instead of BatchNorm in the token models.

====================  ==========================================================================================
``plain_cnn``         three 3x3 convs (16, 32 stride 2, 32) + BN + ReLU, global average pool, Linear head
``res_cnn``           residual CNN: widths 18 and 30 (K = 162, 270: not multiples of 4), a 1x1 strided
                      shortcut, a two-layer MLP head
``oddk_cnn``          5x5, 5x5, 3x3 convs with 10, 14, 22 channels: every K (25, 250, 126; 1-D 5, 50, 42) is
                      not a multiple of 4; flatten + Linear
``mlp``               flatten -> 100 -> 100 -> classes, ReLU, no normalisation
``mixer``             MLP-Mixer: patch embedding, two mixer layers (token MLP and channel MLP, LayerNorm)
``vit``               ViT: patch embedding, two pre-norm attention blocks (4 heads), mean pool, head
====================  ==========================================================================================
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .vit import Block


def _check_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:  # (C, L) signals enter as (C, 1, L) images
        shape = (shape[0], 1, shape[1])
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape={input_shape!r} must be (C, H, W) or (C, L) with positive sizes")
    return shape


def _k(shape, k: int) -> tuple[int, int]:
    """A k x k kernel for images, 1 x k for signals (H == 1)."""
    return (k, k) if shape[1] > 1 else (1, k)


def _pad(kernel) -> tuple[int, int]:
    return (kernel[0] // 2, kernel[1] // 2)


def _stride2(shape) -> tuple[int, int]:
    return (2, 2) if shape[1] > 1 else (1, 2)


class _Image(nn.Module):
    """Base: reshapes (B, C, L) or (B, L) signals to the (B, C, H, W) the model was built for."""

    def __init__(self, input_shape):
        super().__init__()
        self.input_shape = _check_shape(input_shape)

    def as_image(self, x: torch.Tensor) -> torch.Tensor:
        C, H, W = self.input_shape
        if x[0].numel() != C * H * W:
            raise ValueError(f"{type(self).__name__} expects inputs of {C * H * W} values ({C}, {H}, {W}); "
                             f"got {tuple(x.shape)}")
        return x.reshape(x.shape[0], C, H, W)


def _conv_bn(cin: int, cout: int, kernel, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=_pad(kernel), bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class PlainCNN(_Image):
    def __init__(self, input_shape, num_classes: int = 10):
        super().__init__(input_shape)
        s, k = self.input_shape, _k(self.input_shape, 3)
        self.features = nn.Sequential(_conv_bn(s[0], 32, k), _conv_bn(32, 64, k, _stride2(s)), _conv_bn(64, 64, k))
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.classifier(self.features(self.as_image(x)).mean((2, 3)))


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride):
        super().__init__()
        self.a = nn.Conv2d(cin, cout, kernel, stride=stride, padding=_pad(kernel), bias=False)
        self.bn_a = nn.BatchNorm2d(cout)
        self.b = nn.Conv2d(cout, cout, kernel, padding=_pad(kernel), bias=False)
        self.bn_b = nn.BatchNorm2d(cout)
        self.shortcut = None
        if cin != cout or stride not in (1, (1, 1)):
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn_b(self.b(F.relu(self.bn_a(self.a(x)))))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResCNN(_Image):
    def __init__(self, input_shape, num_classes: int = 10):
        super().__init__(input_shape)
        s, k = self.input_shape, _k(self.input_shape, 3)
        self.stem = _conv_bn(s[0], 34, k)
        self.block1 = ResBlock(34, 34, k, 1)
        self.block2 = ResBlock(34, 66, k, _stride2(s))
        self.head = nn.Sequential(nn.Linear(66, 96), nn.ReLU(), nn.Linear(96, num_classes))

    def forward(self, x):
        h = self.block2(self.block1(self.stem(self.as_image(x))))
        return self.head(h.mean((2, 3)))


class OddKCNN(_Image):
    def __init__(self, input_shape, num_classes: int = 10):
        super().__init__(input_shape)
        s = self.input_shape
        k5, k3 = _k(s, 5), _k(s, 3)
        self.body = nn.Sequential(_conv_bn(s[0], 18, k5), _conv_bn(18, 30, k5, _stride2(s)),
                                  _conv_bn(30, 42, k3, _stride2(s)))
        with torch.no_grad():
            n = self.body(torch.zeros(2, *s)).flatten(1).shape[1]
        self.out = nn.Linear(n, num_classes)

    def forward(self, x):
        return self.out(self.body(self.as_image(x)).flatten(1))


class MLP(_Image):
    def __init__(self, input_shape, num_classes: int = 10, hidden: int = 256):
        super().__init__(input_shape)
        n = self.input_shape[0] * self.input_shape[1] * self.input_shape[2]
        self.net = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], -1))


def _patch(shape) -> tuple[int, int]:
    """2 x 2 patches for images, 1 x 4 for signals."""
    return (2, 2) if shape[1] > 1 else (1, 4)


class _Patches(_Image):
    """Non-overlapping patches -> tokens (B, T, C * ph * pw)."""

    def __init__(self, input_shape):
        super().__init__(input_shape)
        C, H, W = self.input_shape
        self.patch = _patch(self.input_shape)
        if H % self.patch[0] or W % self.patch[1]:
            raise ValueError(f"input_shape={self.input_shape}: H, W must be multiples of the patch {self.patch}")
        self.tokens = (H // self.patch[0]) * (W // self.patch[1])
        self.patch_dim = C * self.patch[0] * self.patch[1]

    def patches(self, x):
        return F.unfold(self.as_image(x), self.patch, stride=self.patch).transpose(1, 2)


class MixerLayer(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_fc1, self.token_fc2 = nn.Linear(tokens, token_hidden), nn.Linear(token_hidden, tokens)
        self.channel_fc1, self.channel_fc2 = nn.Linear(dim, channel_hidden), nn.Linear(channel_hidden, dim)

    def forward(self, x):
        t = self.norm1(x).transpose(1, 2)
        x = x + self.token_fc2(F.gelu(self.token_fc1(t))).transpose(1, 2)
        return x + self.channel_fc2(F.gelu(self.channel_fc1(self.norm2(x))))


class Mixer(_Patches):
    def __init__(self, input_shape, num_classes: int = 10, dim: int = 64, depth: int = 2):
        super().__init__(input_shape)
        self.embed = nn.Linear(self.patch_dim, dim)
        self.layers = nn.Sequential(*[MixerLayer(self.tokens, dim, 2 * self.tokens, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.head(self.norm(self.layers(self.embed(self.patches(x)))).mean(1))


class ViT(_Patches):
    def __init__(self, input_shape, num_classes: int = 10, dim: int = 64, depth: int = 2, heads: int = 4):
        super().__init__(input_shape)
        self.embed = nn.Linear(self.patch_dim, dim)
        self.pos = nn.Parameter(torch.randn(1, self.tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, 2.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.head(self.norm(self.blocks(self.embed(self.patches(x)) + self.pos)).mean(1))


ARCHS: dict[str, Callable[..., nn.Module]] = {
    "plain_cnn": PlainCNN, "res_cnn": ResCNN, "oddk_cnn": OddKCNN, "mlp": MLP, "mixer": Mixer, "vit": ViT,
}


def build_arch(name: str, input_shape, num_classes: int = 10) -> nn.Module:
    """One zoo model for a data set's ``input_shape`` (C, H, W) or (C, L)."""
    try:
        cls = ARCHS[name]
    except KeyError:
        raise ValueError(f"arch={name!r} is not in the zoo; choose one of {sorted(ARCHS)}") from None
    return cls(input_shape, num_classes=num_classes)
