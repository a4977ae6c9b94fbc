"""lutnb.zoo: the data sets, models and fp32 training the experiments start from.

``data`` (digits, MNIST-1D, CIFAR-10 with a checksummed download), ``models`` (CNNs, `get_model`),
``vit`` (a tiny ViT, and `regroup_channels`, which readies a trained one for LUT conversion), ``train``
(fp32 training and cached pretrained checkpoints), ``minilm`` (all-MiniLM-L6-v2, offline, and the sentence
corpus).
"""
from .data import DataSplits, get_dataset, load_cifar10, load_digits, load_mnist1d
from .models import get_model
from .train import evaluate, fit, pretrained, pretrained_vit

__all__ = ["DataSplits", "evaluate", "fit", "get_dataset", "get_model", "load_cifar10", "load_digits",
           "load_mnist1d", "pretrained", "pretrained_vit"]
