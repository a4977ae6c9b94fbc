"""Training, evaluation, checkpoints and cached pretrained fp32 models.

``fit`` trains any ``nn.Module`` (optionally with an ``extra_loss(model)`` term, e.g. a reconstruction
loss of LUT layers); ``evaluate`` gives accuracy in %; ``pretrained`` returns a trained, cached model.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..files import data_dir, load_checkpoint, save_checkpoint
from ..runtime import device_of, loaders, progress_disabled, seed_everything, sync_free
from .data import get_dataset, load_digits
from .models import get_model
from .vit import TinyViT, random_shift, vit_digits

OPTIMIZERS = ("adam", "adamw", "sgd")


SCHEDULES = ("cosine", "constant")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 512) -> float:
    """Top-1 accuracy in % (eval mode, no grad); the model's previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    dev, total = device_of(model), 0
    correct = torch.zeros((), dtype=torch.long, device=dev)  # summed on the device, read once
    try:
        for x, y in loaders(dataset, batch_size, shuffle=False):
            x, y = x.to(dev), y.to(dev)
            correct += (model(x).argmax(dim=1) == y).sum()
            total += y.numel()
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() got an empty dataset")
    return 100.0 * int(correct) / total


def _optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def fit(model: nn.Module, train: Dataset, val: Dataset | None = None, epochs: int = 10, lr: float = 1e-3,
        batch_size: int = 128, weight_decay: float = 0.0, seed: int = 0, optimizer: str = "adam",
        schedule: str | None = "cosine", loss_fn: Callable | None = None,
        extra_loss: Callable[[nn.Module], torch.Tensor] | None = None, progress: bool = True,
        callback: Callable[[nn.Module, dict], Any] | None = None, warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0, params=None,
        batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[dict]:
    """Train ``model`` in place; return the history, one dict per epoch.

    Each record: ``epoch`` (1-based), ``train_loss`` (mean task + extra loss over the epoch), ``val_acc``
    (% or None without ``val``), ``lr`` (at the epoch's end), ``seconds`` (the epoch's wall time).
    ``optimizer``: adam | adamw | sgd (momentum 0.9, Nesterov). ``schedule``: cosine (per step, with
    optional linear warm-up over ``warmup_epochs``) | constant | None. ``extra_loss(model)`` is added to the
    task loss (``loss_fn(logits, y)``, default cross-entropy). ``params`` restricts what is optimized
    (default: all parameters with ``requires_grad``). ``callback(model, record)`` runs after each epoch;
    returning True stops training. ``batch_transform(x)`` augments each training batch on the model's device
    (e.g. `lutnb.zoo.data.BatchCropFlip`). The model is left in eval mode. Deterministic given ``seed`` (torch,
    NumPy, ``random`` and the loader order are seeded; the model is taken as given: seed before building it).
    """
    from tqdm.auto import tqdm

    if epochs < 0:
        raise ValueError(f"epochs={epochs} must be >= 0")
    if lr <= 0:
        raise ValueError(f"lr={lr} must be > 0")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not one of {OPTIMIZERS}")
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is not one of {SCHEDULES} or None")
    seed_everything(seed)
    dev = device_of(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    if not params:
        raise ValueError("fit() found no parameters with requires_grad=True to train")
    opt = _optimizer(optimizer, params, lr, weight_decay)
    loader = loaders(train, batch_size, shuffle=True, seed=seed)
    steps_per_epoch = len(loader)
    total = max(1, epochs * steps_per_epoch)
    warm = int(round(warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if schedule is None or schedule == "constant":
            return min(1.0, (step + 1) / warm) if warm else 1.0
        if warm and step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    history: list[dict] = []
    bar = tqdm(range(1, epochs + 1), desc=f"fit {type(model).__name__}", leave=False,
               disable=progress_disabled(progress))
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        running, n = _train_epoch(model, loader, opt, sched, dev, loss_fn, extra_loss, batch_transform, epoch, lr)
        record = {"epoch": epoch, "train_loss": running / max(1, n),
                  "val_acc": evaluate(model, val) if val is not None else None,
                  "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                        val=f"{record['val_acc']:.2f}" if record["val_acc"] is not None else "-")
        if callback is not None and callback(model, record) is True:
            break
    model.eval()
    return history


def _train_epoch(model, loader, opt, sched, dev, loss_fn, extra_loss, batch_transform, epoch, lr) -> tuple:
    """One epoch of `fit`: (summed loss x rows, rows). On CPU a non-finite loss raises at its step; on an
    accelerator nothing is read on the host per step (the sum and a non-finite count are read after it)."""
    deferred = sync_free(dev)
    acc = torch.float32 if dev.type == "mps" else torch.float64
    running, bad, n = torch.zeros((), dtype=acc, device=dev), torch.zeros((), dtype=torch.long, device=dev), 0
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if batch_transform is not None:
            x = batch_transform(x)
        loss = loss_fn(model(x), y)
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        if deferred:
            bad += ~torch.isfinite(loss.detach())
        elif not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}: lower lr={lr}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.detach().to(acc) * y.shape[0]
        n += y.shape[0]
    if deferred and int(bad):
        raise FloatingPointError(f"loss became non-finite in {int(bad)} step(s) of epoch {epoch}: lower lr={lr}")
    return float(running), n


# -------------------------------------------------------------------------------------------- pretrained
RECIPE_VERSION = 1  # bump when a recipe or a model definition changes: invalidates cached checkpoints


@dataclass(frozen=True)
class Recipe:
    """How ``pretrained`` trains one model (arguments of ``fit`` plus the data set)."""

    model: str
    dataset: str
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"Recipe.epochs={self.epochs} must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"Recipe.lr={self.lr} must be > 0")
        if self.batch_size < 1:
            raise ValueError(f"Recipe.batch_size={self.batch_size} must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Recipe.optimizer={self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe.schedule={self.schedule!r} is not one of {SCHEDULES}")

    def fit_kwargs(self) -> dict:
        d = asdict(self)
        del d["model"], d["dataset"]
        return d


RECIPES: dict[str, Recipe] = {
    "digits_cnn": Recipe("digits_cnn", "digits", epochs=20, lr=3e-3, batch_size=64, weight_decay=1e-4,
                         optimizer="adamw"),
    "mnist1d_cnn": Recipe("mnist1d_cnn", "mnist1d", epochs=20, lr=3e-3, batch_size=64, weight_decay=5e-4,
                          optimizer="adamw"),
    "mnist1d_mlp": Recipe("mnist1d_mlp", "mnist1d", epochs=60, lr=2e-3, batch_size=64, weight_decay=1e-4,
                          optimizer="adamw"),
}


def checkpoint_path(name: str, seed: int = 0, epochs: int | None = None,
                    cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``pretrained`` caches a model: ``<cache_dir>/<name>-seed<seed>-ep<epochs>-r<version>.pt``."""
    recipe = _recipe(name)
    epochs = recipe.epochs if epochs is None else epochs
    if cache_dir is None:

        cache_dir = data_dir() / "checkpoints"
    return Path(cache_dir) / f"{name}-seed{seed}-ep{epochs}-r{RECIPE_VERSION}.pt"


def _recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"no pretrained recipe for {name!r}; valid names: {sorted(RECIPES)}") from None


def pretrained(name: str, seed: int = 0, cache_dir: str | os.PathLike | None = None,
               epochs: int | None = None, progress: bool = True, retrain: bool = False) -> nn.Module:
    """A trained fp32 model (eval mode): ``digits_cnn`` (digits), ``mnist1d_cnn`` / ``mnist1d_mlp`` (mnist1d).

    Loaded from the cache (default ``data/checkpoints``) if present, else trained with ``RECIPES[name]``
    on the ``seed`` split of its data set (model init seeded too) and saved atomically. ``epochs``
    overrides the recipe (part of the cache key, with name, seed and ``RECIPE_VERSION``).
    """
    recipe = _recipe(name)
    epochs = recipe.epochs if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be >= 1 (or None for the recipe's {recipe.epochs})")
    path = checkpoint_path(name, seed, epochs, cache_dir)
    if path.exists() and not retrain:
        model = get_model(recipe.model)
        model.load_state_dict(load_checkpoint(path))
        return model.eval()
    data = get_dataset(recipe.dataset, seed=seed)
    seed_everything(seed)
    model = get_model(recipe.model)
    kw = recipe.fit_kwargs()
    kw["epochs"] = epochs
    fit(model, data.train, data.val, seed=seed, progress=progress, **kw)
    save_checkpoint(model.state_dict(), path)
    return model.eval()


# training recipe for the fp32 model: AdamW, warm-up + cosine, label smoothing, random +-1 pixel shifts,
# Gaussian noise (0.3 x RMS) on the inputs of the block / head Linears while training (robustness to the
# LUT quantization error; measured at dim 64: v=4 digits seed 0, INT8 LUT after regroup+block_refit:
# 91.3-92.2 -> 94.2-94.7 %; fp32 98.00 -> 98.44 %; 0.5 costs fp32 accuracy (96.9 %) for no LUT gain)
VIT_RECIPE = {"epochs": 200, "lr": 2e-3, "batch_size": 64, "weight_decay": 0.05, "warmup_epochs": 5,
              "label_smoothing": 0.1, "max_shift": 1, "act_noise": 0.3}


VIT_RECIPE_VERSION = 2  # 2: dim 96 (1: dim 64)


def train_vit(model: nn.Module, train, epochs: int = 200, lr: float = 2e-3, batch_size: int = 64,
              weight_decay: float = 0.05, warmup_epochs: int = 5, label_smoothing: float = 0.1,
              max_shift: int = 1, act_noise: float = 0.0, seed: int = 0) -> list[float]:
    """Train in place with shift augmentation (ViTs need it on 1,097 images); returns the loss per epoch.

    ``act_noise`` > 0: while training, the input of every Linear inside the blocks (and of the head) gets
    Gaussian noise of this standard deviation relative to the input's RMS (per token), a robustness
    regulariser for the quantization error of a later LUT conversion. Evaluation is noise-free.
    """

    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be >= 1")
    seed_everything(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = loaders(train, batch_size, shuffle=True, seed=seed)
    steps, warm = epochs * len(loader), max(1, warmup_epochs * len(loader))

    def factor(k):
        if k < warm:
            return (k + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (k - warm) / max(1, steps - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    g = torch.Generator().manual_seed(seed + 1)
    if act_noise < 0:
        raise ValueError(f"act_noise={act_noise} must be >= 0")
    hooks = []
    if act_noise > 0:
        gn = torch.Generator().manual_seed(seed + 2)

        def noisy(mod, args):
            x = args[0]
            if not mod.training:
                return None
            rms = x.detach().pow(2).mean(-1, keepdim=True).sqrt()
            return (x + act_noise * rms * torch.randn(x.shape, generator=gn).to(x),)

        hooks = [m.register_forward_pre_hook(noisy) for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and (n.startswith("blocks.") or n == "head")]
    losses = []
    try:
        losses = _train_loop(model, loader, opt, sched, epochs, max_shift, label_smoothing, g)
    finally:
        for h in hooks:
            h.remove()
    model.eval()
    return losses


def _train_loop(model, loader, opt, sched, epochs, max_shift, label_smoothing, g) -> list[float]:
    losses = []
    for _ in range(epochs):
        model.train()
        tot, n = 0.0, 0
        for x, y in loader:
            loss = F.cross_entropy(model(random_shift(x, max_shift, g)), y, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot, n = tot + loss.item() * len(y), n + len(y)
        losses.append(tot / n)
    model.eval()
    return losses


def pretrained_vit(seed: int = 0, epochs: int | None = None, cache_dir: str | os.PathLike | None = None,
                   act_noise: float | None = None) -> TinyViT:
    """A trained fp32 `vit_digits` on the ``seed`` digits split, cached in data/checkpoints (eval mode).

    Trained with `train_vit` and ``VIT_RECIPE`` (about 1-3 minutes per seed on one CPU thread) the first time.
    """

    kw = dict(VIT_RECIPE)
    if epochs is not None:
        kw["epochs"] = int(epochs)
    if act_noise is not None:
        kw["act_noise"] = float(act_noise)
    if cache_dir is None:

        cache_dir = data_dir() / "checkpoints"
    noise = f"-n{kw['act_noise']:g}" if kw.get("act_noise", 0.0) > 0 else ""  # noise-free: the original name
    path = Path(cache_dir) / f"vit_digits-seed{seed}-ep{kw['epochs']}{noise}-r{VIT_RECIPE_VERSION}.pt"
    seed_everything(seed)
    model = vit_digits()
    if path.exists():
        model.load_state_dict(load_checkpoint(path))
        return model.eval()
    train_vit(model, load_digits(seed).train, seed=seed, **kw)
    save_checkpoint(model.state_dict(), path)
    return model.eval()
