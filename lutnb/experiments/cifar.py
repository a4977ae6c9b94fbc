"""The FULL CIFAR-10 recipe: ResNet-20 fp32 training, then LUTBoost (meant for a GPU; hours on a CPU).

fp32: SGD (momentum 0.9, Nesterov) lr 0.1, weight decay 5e-4, cosine schedule, batch 128, random crop
(pad 4) + horizontal flip; the standard ResNet-20 recipe (about 91-92 % test accuracy at 200 epochs).
The augmentation runs on whole batches on the training device (`lutnb.zoo.data.random_crop_flip`).
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
from torch.utils.data import TensorDataset

from .. import boosting
from ..boosting import distributed
from ..files import data_dir, load_checkpoint, save_checkpoint
from ..runtime import seed_everything
from ..zoo.data import BatchCropFlip, load_cifar10, make_fake_cifar_archive
from ..zoo.models import resnet20
from ..zoo.train import evaluate, fit


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


class FullOnCPUError(RuntimeError):
    """The FULL recipe was asked to run on a CPU without ``allow_cpu``."""


def check_full_device(full: bool, device: str | torch.device, allow_cpu: bool = False) -> None:
    """Refuse the FULL recipe on a CPU unless ``allow_cpu``: it trains for hours on a GPU, days on a CPU."""
    if full and torch.device(device).type == "cpu" and not allow_cpu:
        raise FullOnCPUError(
            "the FULL CIFAR-10 recipe (200 fp32 epochs + LUTBoost for each metric) would run on the CPU: hours on "
            "a GPU, days here. Run it on a machine with a CUDA GPU, run SMOKE (SMOKE = True / --smoke), or allow "
            "the CPU explicitly (ALLOW_CPU = True in notebook 08, --allow-cpu for tools/full_cifar_resnet20.py)")


def fp32_checkpoint(ckdir: Path, seed: int, fp32_epochs: int, n_train: int) -> Path:
    """Where the fp32 ResNet-20 of a (seed, epochs, training-set size) is kept: one file every metric shares."""
    return Path(ckdir) / f"resnet20-cifar10-seed{seed}-ep{fp32_epochs}-n{n_train}.pt"


def train_fp32(data, *, fp32_epochs: int = 200, batch_size: int = 128, seed: int = 0,
               device: str | torch.device | None = None, checkpoint_dir: str | Path | None = None,
               progress: bool = True) -> tuple[torch.nn.Module, float]:
    """The fp32 ResNet-20: loaded from its checkpoint if one exists, else trained once and saved (atomically)
    for every later run and metric. Under torch.distributed rank 0 trains and the other ranks wait, then
    load it. Returns (model on ``device``, seconds spent training: 0.0 when loaded)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else data_dir() / "checkpoints"
    path = fp32_checkpoint(ckdir, seed, fp32_epochs, len(data.train))
    ctx = distributed.current()
    seed_everything(seed)
    model = resnet20(data.num_classes).to(device)
    t0, seconds = time.perf_counter(), 0.0
    if not path.exists() and (ctx is None or ctx.is_main):
        # random crop (pad 4) + flip on whole batches on the device, one generator for the run
        aug = BatchCropFlip(pad=4, seed=seed, device=device)
        fit(model, _to_device(data.train, device), _to_device(data.val, device), epochs=fp32_epochs, lr=0.1,
            batch_size=batch_size, weight_decay=5e-4, optimizer="sgd", schedule="cosine", seed=seed,
            progress=progress, batch_transform=aug)
        save_checkpoint(model.state_dict(), path)
        seconds = time.perf_counter() - t0
    distributed.barrier()
    if seconds == 0.0:
        model.load_state_dict(load_checkpoint(path, map_location=device))
    return model.eval(), seconds


def results_name(metric: str, v: int, c: int, seed: int, smoke: bool = False) -> str:
    """The results file stem of one run: one file per metric (and v, c, seed), so parallel runs never share."""
    return f"full_cifar_resnet20_{metric}_v{v}_c{c}_seed{seed}" + ("_smoke" if smoke else "")


def resnet20_experiment(data, *, metric: str = "l2", v: int = 4, c: int = 16, v_shortcut: int | None = None,
                        fp32_epochs: int = 200, lut_epoch_scale: float = 5.0, batch_size: int = 128, seed: int = 0,
                        device: str | torch.device | None = None, checkpoint_dir: str | Path | None = None,
                        resume: bool = False, progress: bool = True, amp: str | None = None) -> dict:
    """Train (or load) the fp32 ResNet-20 on ``data`` and convert it with LUTBoost; returns the numbers.

    The fp32 weights are trained once and cached in ``checkpoint_dir`` (default data/checkpoints) per seed,
    epoch count and training-set size (`train_fp32`); every metric's run loads them. LUTBoost writes a
    checkpoint after every stage there and resumes with ``resume=True``. Under ``torchrun`` (several
    processes) LUTBoost trains data-parallel (`lutnb.boosting.distributed`). ``amp="bf16"``: autocast."""

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else data_dir() / "checkpoints"
    t0 = time.perf_counter()
    val, test = _to_device(data.val, device), _to_device(data.test, device)
    model, fp32_seconds = train_fp32(data, fp32_epochs=fp32_epochs, batch_size=batch_size, seed=seed,
                                     device=device, checkpoint_dir=ckdir, progress=progress)
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
        resume=resume, progress=progress, amp=amp)
    return {"device": str(device), "metric": metric, "v": v, "c": c, "seed": seed, "n_train": len(data.train),
            "n_test": len(data.test), "fp32_epochs": fp32_epochs, "lut_epochs": report.total_epochs,
            "fp32_acc": fp32_acc, "lut_acc_int8": report.final_acc, "drop_pt": fp32_acc - report.final_acc,
            "fp32_seconds": fp32_seconds, "lutboost_seconds": time.perf_counter() - t1, "report": report.to_dict(),
            "seconds": time.perf_counter() - t0, "amp": amp}
