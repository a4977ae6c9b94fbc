"""Plain ``nn.Module`` models (no torchvision). The first conv is always ``conv1`` (LUTBoost keeps it float).

Small models for the embedded data (``digits_cnn``, ``mnist1d_cnn``, ``mnist1d_mlp``), CIFAR models
(``resnet20``, ``vgg_small``) and torchvision-compatible ImageNet ResNets (``resnet18_imagenet``,
``resnet50_imagenet``: same layer shapes, attribute names and parameter counts; no weights) used for
workload shapes by the hardware simulator.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .vit import vit_digits


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------ small models
class DigitsCNN(nn.Module):
    """8x8 digits: conv32-conv64-pool-conv64-gap-fc (3x3 convs, BN, ReLU)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean(dim=(2, 3)))


class MNIST1DCNN(nn.Module):
    """MNIST-1D CNN for (B, 1, 40) signals (also accepts (B, 40)).

    The 1D convolutions are ``nn.Conv2d`` with (1, k) kernels on the input reshaped to (B, 1, 1, 40),
    so LUT conversion (which replaces ``nn.Linear`` / ``nn.Conv2d``) sees them. Lengths 40 -> 20 -> 10.
    """

    def __init__(self, num_classes: int = 10, width: int = 64, length: int = 40):
        super().__init__()
        w = width
        self.length = length
        self.conv1 = nn.Conv2d(1, w, (1, 5), padding=(0, 2), bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, w, (1, 3), padding=(0, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(w)
        self.conv3 = nn.Conv2d(w, 2 * w, (1, 3), stride=(1, 2), padding=(0, 1), bias=False)
        self.bn3 = nn.BatchNorm2d(2 * w)
        self.conv4 = nn.Conv2d(2 * w, 2 * w, (1, 3), padding=(0, 1), bias=False)
        self.bn4 = nn.BatchNorm2d(2 * w)
        self.conv5 = nn.Conv2d(2 * w, 2 * w, (1, 3), stride=(1, 2), padding=(0, 1), bias=False)
        self.bn5 = nn.BatchNorm2d(2 * w)
        self.fc = nn.Linear(2 * w * (length // 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, 1, -1)
        if x.shape[-1] != self.length:
            raise ValueError(f"MNIST1DCNN expects signals of length {self.length}, got {x.shape[-1]}")
        for i in range(1, 6):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return self.fc(x.flatten(1))


class MNIST1DMLP(nn.Module):
    """MNIST-1D MLP: fc1-ReLU-fc2-ReLU-fc3 on the flattened signal."""

    def __init__(self, num_classes: int = 10, hidden: int = 256, in_features: int = 40):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# ------------------------------------------------------------------------------------------ CIFAR models
class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs); ``downsample`` is a 1x1 conv + BN when the shape changes."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision ResNet v1.5 bottleneck (stride on the 3x3 conv), expansion 4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class ResNetCIFAR(nn.Module):
    """CIFAR ResNet (He et al. 2016, 6n+2 layers, 16/32/64 channels).

    Shortcuts are option B (1x1 conv + BN when the shape changes), not the parameter-free option A:
    every weight is then a Conv2d/Linear that LUT conversion handles. ResNet-20 has 272,474 parameters
    (option A: 269,722).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth={depth} must be 6n+2 with n >= 1 (20, 32, 44, 56, 110)")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.in_planes = width
        self.layer1 = self._stage(width, n, 1)
        self.layer2 = self._stage(2 * width, n, 2)
        self.layer3 = self._stage(4 * width, n, 2)
        self.fc = nn.Linear(4 * width, num_classes)
        _init(self)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, _shortcut(self.in_planes, planes, s)))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


class VGGSmall(nn.Module):
    """Small VGG for 32x32 inputs: conv64-conv64-M-conv128-conv128-M-conv256-conv256-M, gap, fc.

    Each conv is 3x3 + BN + ReLU, named ``conv1..conv6`` / ``bn1..bn6`` (no aliasing, so ``conv1`` is
    the only path to the first conv).
    """

    WIDTHS = (64, 64, 128, 128, 256, 256)
    POOL_AFTER = (2, 4, 6)

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult} must be > 0 (1.0 is the default width)")
        c_in = in_channels
        for i, w in enumerate(self.WIDTHS, start=1):
            c_out = max(1, int(round(w * width_mult)))
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(c_out))
            c_in = c_out
        self.fc = nn.Linear(c_in, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, len(self.WIDTHS) + 1):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            if i in self.POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return self.fc(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------------------- ImageNet models
class ResNetImageNet(nn.Module):
    """torchvision-compatible ImageNet ResNet (same attribute names, layer shapes, parameter counts)."""

    def __init__(self, block: type[nn.Module], layers: tuple[int, int, int, int], num_classes: int = 1000):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, layers[0], 1)
        self.layer2 = self._stage(block, 128, layers[1], 2)
        self.layer3 = self._stage(block, 256, layers[2], 2)
        self.layer4 = self._stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init(self)

    def _stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            out = planes * block.expansion
            layers.append(block(self.in_planes, planes, s, _shortcut(self.in_planes, out, s)))
            self.in_planes = out
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------- factories
def digits_cnn(num_classes: int = 10) -> DigitsCNN:
    """CNN for 8x8 digits (about 56 k parameters)."""
    return DigitsCNN(num_classes)


def mnist1d_cnn(num_classes: int = 10, width: int = 64) -> MNIST1DCNN:
    """CNN for MNIST-1D, Conv2d with (1, k) kernels."""
    return MNIST1DCNN(num_classes, width=width)


def mnist1d_mlp(num_classes: int = 10, hidden: int = 256) -> MNIST1DMLP:
    """MLP for MNIST-1D (fc1, fc2, fc3)."""
    return MNIST1DMLP(num_classes, hidden=hidden)


def resnet20(num_classes: int = 10) -> ResNetCIFAR:
    """CIFAR ResNet-20 with 1x1-conv shortcuts (272,474 parameters)."""
    return ResNetCIFAR(20, num_classes)


def vgg_small(num_classes: int = 10) -> VGGSmall:
    """Small CIFAR VGG (6 convs, about 1.15 M parameters)."""
    return VGGSmall(num_classes)


def resnet18_imagenet(num_classes: int = 1000) -> ResNetImageNet:
    """torchvision ResNet-18 architecture (11,689,512 parameters), random init."""
    return ResNetImageNet(BasicBlock, (2, 2, 2, 2), num_classes)


def resnet50_imagenet(num_classes: int = 1000) -> ResNetImageNet:
    """torchvision ResNet-50 (v1.5) architecture (25,557,032 parameters), random init."""
    return ResNetImageNet(Bottleneck, (3, 4, 6, 3), num_classes)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "digits_cnn": digits_cnn,
    "mnist1d_cnn": mnist1d_cnn,
    "mnist1d_mlp": mnist1d_mlp,
    "resnet20": resnet20,
    "vgg_small": vgg_small,
    "resnet18_imagenet": resnet18_imagenet,
    "resnet50_imagenet": resnet50_imagenet,
    "vit_digits": vit_digits,
}


def get_model(name: str, **kw) -> nn.Module:
    """Build a model by name; ``kw`` go to its factory (e.g. ``num_classes``)."""
    try:
        fn = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid names: {sorted(MODELS)}") from None
    return fn(**kw)
