"""The FULL CIFAR-10 recipe: ResNet-20 fp32 training, then LUTBoost (meant for a GPU; hours on a CPU).

fp32: SGD (momentum 0.9, Nesterov) lr 0.1, weight decay 5e-4, cosine schedule, batch 128, random crop
(pad 4) + horizontal flip; the standard ResNet-20 recipe (about 91-92 % test accuracy at 200 epochs).
LUTBoost: the default schedule of `lutnb.boosting` with every training stage's epochs multiplied by
``lut_epoch_scale``, first conv kept float, INT8 tables; 1x1 shortcut convs use the same v unless
``v_shortcut`` says otherwise. The fp32 weights and every LUTBoost stage are checkpointed, so a killed run
resumes (``resume=True``).

Used by notebook 08 (FULL mode, or SMOKE on a generated archive in CIFAR's format) and by
``tools/full_cifar_resnet20.py``.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from .. import boosting
from ..files import data_dir, load_checkpoint, save_checkpoint
from ..runtime import seed_everything
from ..zoo.data import load_cifar10, make_fake_cifar_archive
from ..zoo.models import resnet20
from ..zoo.train import evaluate, fit


class Augmented(Dataset):
    """CIFAR training augmentation on a (N, 3, 32, 32) tensor dataset: random crop (pad 4) + flip."""

    def __init__(self, base, pad: int = 4, seed: int = 0):
        self.x, self.y = base.tensors
        self.pad = pad
        self.g = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = torch.nn.functional.pad(self.x[i], (self.pad,) * 4)
        dy, dx = torch.randint(0, 2 * self.pad + 1, (2,), generator=self.g).tolist()
        x = x[:, dy:dy + 32, dx:dx + 32]
        if torch.rand((), generator=self.g) < 0.5:
            x = x.flip(-1)
        return x, self.y[i]


def _to_device(ds, device: torch.device):
    return TensorDataset(*(t.to(device) for t in ds.tensors)) if device.type != "cpu" else ds


def cifar_source(source: str, full: bool) -> str:
    """Resolve ``source`` ("auto", "real", "fake") to "real" or "fake": "auto" is real CIFAR-10 in FULL mode
    (downloaded with a SHA-256 check if missing) and a generated archive in CIFAR's format otherwise (a
    plumbing check, not a result)."""
    if source not in ("auto", "real", "fake"):
        raise ValueError(f"CIFAR source {source!r}: use 'auto', 'real' or 'fake'")
    if source != "auto":
        return source
    return "real" if full else "fake"


def load_data(source: str, seed: int = 0, root=None, fake_per_batch: int = 40):
    """(DataSplits, tmp dir or None): real CIFAR-10 (download + checksum) or a generated fake archive."""

    if source == "fake":
        tmp = tempfile.TemporaryDirectory(prefix="lutnb-cifar-fake-")
        archive = Path(tmp.name) / "cifar-10-python.tar.gz"
        sha = make_fake_cifar_archive(archive, n_per_batch=fake_per_batch, seed=seed)
        return load_cifar10(tmp.name, download=True, seed=seed, sha256=sha, url="file:///nonexistent"), tmp
    return load_cifar10(root, download=True, seed=seed), None


def resnet20_experiment(data, *, metric: str = "l2", v: int = 4, c: int = 16, v_shortcut: int | None = None,
                        fp32_epochs: int = 200, lut_epoch_scale: float = 5.0, batch_size: int = 128, seed: int = 0,
                        device: str | torch.device | None = None, checkpoint_dir: str | Path | None = None,
                        resume: bool = False, progress: bool = True) -> dict:
    """Train (or load) the fp32 ResNet-20 on ``data`` and convert it with LUTBoost; returns the numbers.

    The fp32 weights are cached in ``checkpoint_dir`` (default data/checkpoints) per seed and epoch count;
    LUTBoost writes a checkpoint after every stage there and resumes with ``resume=True``."""

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else data_dir() / "checkpoints"
    t0 = time.perf_counter()
    val, test = _to_device(data.val, device), _to_device(data.test, device)
    fp32_path = ckdir / f"resnet20-cifar10-seed{seed}-ep{fp32_epochs}-n{len(data.train)}.pt"
    seed_everything(seed)
    model = resnet20(data.num_classes).to(device)
    if fp32_path.exists():
        model.load_state_dict(load_checkpoint(fp32_path, map_location=device))
        fp32_seconds = 0.0
    else:
        fit(model, Augmented(data.train, seed=seed), val, epochs=fp32_epochs, lr=0.1, batch_size=batch_size,
            weight_decay=5e-4, optimizer="sgd", schedule="cosine", seed=seed, progress=progress)
        save_checkpoint(model.state_dict(), fp32_path)
        fp32_seconds = time.perf_counter() - t0
    fp32_acc = evaluate(model, test)

    cfg = boosting.LUTBoostConfig().scaled(lut_epoch_scale)
    cfg = boosting.LUTBoostConfig((cfg.stages[0],
                                   *(dataclasses.replace(s, batch_size=batch_size) for s in cfg.stages[1:])))
    overrides = {"*downsample.0": {"v": v_shortcut}} if v_shortcut else None
    t1 = time.perf_counter()
    _, report = boosting.lutboost(
        model, _to_device(data.train, device), val, v=v, c=c, metric=metric, skip=("conv1",), stages=cfg,
        seed=seed, test=test, overrides=overrides,
        checkpoint_dir=ckdir / f"lutboost-resnet20-{metric}-v{v}-c{c}-seed{seed}-n{len(data.train)}",
        resume=resume, progress=progress)
    return {"device": str(device), "metric": metric, "v": v, "c": c, "seed": seed, "n_train": len(data.train),
            "n_test": len(data.test), "fp32_epochs": fp32_epochs, "lut_epochs": report.total_epochs,
            "fp32_acc": fp32_acc, "lut_acc_int8": report.final_acc, "drop_pt": fp32_acc - report.final_acc,
            "fp32_seconds": fp32_seconds, "lutboost_seconds": time.perf_counter() - t1, "report": report.to_dict(),
            "seconds": time.perf_counter() - t0}
