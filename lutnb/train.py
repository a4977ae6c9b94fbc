"""Training, evaluation, checkpoints and cached pretrained fp32 models.

``fit`` trains any ``nn.Module`` (optionally with an ``extra_loss(model)`` term, e.g. a reconstruction
loss of LUT layers); ``evaluate`` gives accuracy in %; ``pretrained`` returns a trained, cached model.
"""
from __future__ import annotations

import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .data import get_dataset, loaders
from .models import get_model

__all__ = ["fit", "evaluate", "seed_everything", "pretrained", "save_checkpoint", "load_checkpoint",
           "Recipe", "RECIPES", "RECIPE_VERSION", "checkpoint_path"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _progress_disabled(progress: bool) -> bool:
    return (not progress) or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 512) -> float:
    """Top-1 accuracy in % (eval mode, no grad); the model's previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    dev, correct, total = _device(model), 0, 0
    try:
        for x, y in loaders(dataset, batch_size, shuffle=False):
            x, y = x.to(dev), y.to(dev)
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += y.numel()
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() got an empty dataset")
    return 100.0 * correct / total


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
        label_smoothing: float = 0.0, params=None) -> list[dict]:
    """Train ``model`` in place; return the history, one dict per epoch.

    Each record: ``epoch`` (1-based), ``train_loss`` (mean task + extra loss over the epoch), ``val_acc``
    (% or None without ``val``), ``lr`` (at the epoch's end), ``seconds`` (the epoch's wall time).
    ``optimizer``: adam | adamw | sgd (momentum 0.9, Nesterov). ``schedule``: cosine (per step, with
    optional linear warm-up over ``warmup_epochs``) | constant | None. ``extra_loss(model)`` is added to the
    task loss (``loss_fn(logits, y)``, default cross-entropy). ``params`` restricts what is optimized
    (default: all parameters with ``requires_grad``). ``callback(model, record)`` runs after each epoch;
    returning True stops training. The model is left in eval mode. Deterministic given ``seed`` (torch,
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
    dev = _device(model)
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
               disable=_progress_disabled(progress))
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        running, n = 0.0, 0
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = loss_fn(model(x), y)
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}: lower lr={lr}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * y.shape[0]
            n += y.shape[0]
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


# ------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically: write a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, numbers and strings only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


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
        from .paths import data_dir

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
