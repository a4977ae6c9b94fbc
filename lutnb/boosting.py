"""LUTBoost: multistage conversion of a trained fp32 model into a LUT model, and a single-stage baseline.

Stages (see PAPER.md, "Our decisions"; every stage is a frozen, validated config and can be skipped):

0. ``calibrate``  - k-means per sub-space on each layer's inputs (optionally layer by layer, feeding each
   layer the outputs of the already-quantized layers before it), with BatchNorm re-estimation after each
   layer (``bn_per_layer``; default) or once at the end.
1. ``centroids``  - weights frozen; centroids learn from the two-sided reconstruction loss, and from the
   task/distillation loss only with ``backward="soft"`` (the straight-through backward, the default,
   passes the task gradient to the layer's input and weights, not to the codebooks).
2. ``joint``      - weights and centroids learn, optionally distilled from the fp32 teacher; by default
   the stage ends with its epoch of best validation accuracy (``select_best``).
3. ``lut_qat``    - tables fake-quantized to ``table_bits`` ("quant" mode with grad: value of the INT-b
   tables, straight-through gradient), short fine-tune.

``lutboost(...)`` returns ``(lut_model, report)``; ``report.to_frame()`` / ``str(report)`` give the
per-stage table, ``report.to_dict()`` the JSON. A checkpoint is written atomically after every stage;
``resume=True`` continues from the last finished one and ends bit-identical to an uninterrupted run.
``single_stage(...)`` is the LUT-NN style baseline (k-means init + one end-to-end fine-tune).
"""
from __future__ import annotations

import copy
import fnmatch
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .calibration import calibrate
from .conversion import convert
from .layers import BACKWARDS, codebook_params, lut_layers, reconstruction_loss, set_mode

__all__ = ["CalibrateStage", "TrainStage", "LUTBoostConfig", "StageResult", "LUTBoostReport", "lutboost",
           "single_stage", "layer_stats", "reestimate_batchnorm", "restart_dead_centroids", "accuracy",
           "STAGE_NAMES", "ResumeMismatchError", "compare", "summarize"]

STAGE_NAMES = ("calibrate", "centroids", "joint", "lut_qat")
TRAIN_MODES = ("lut", "quant")


class ResumeMismatchError(RuntimeError):
    """A checkpoint was written by a run with a different configuration."""


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number {'>= 0' if allow_zero else '> 0'}")


@dataclass(frozen=True)
class CalibrateStage:
    """Stage 0: k-means init from activations (``max_rows`` sampled rows per layer, ``batches`` batches)."""

    batches: int = 8
    batch_size: int = 256
    max_rows: int = 2048
    iters: int = 10
    sequential: bool = True  # layer by layer: each layer sees the outputs of the quantized layers before it
    bn_reestimate: bool = True  # re-estimate BatchNorm running statistics with the LUT layers active
    bn_per_layer: bool = True  # sequential + bn_reestimate: re-estimate BN after each layer's k-means
    skip: bool = False
    name: str = "calibrate"

    def __post_init__(self):
        for f in ("batches", "batch_size", "max_rows", "iters"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CalibrateStage.{f}={v!r} must be an integer >= 1")
        if self.name != "calibrate":
            raise ValueError(f"CalibrateStage.name={self.name!r} must be 'calibrate'")

    @property
    def epochs(self) -> int:
        return 0


@dataclass(frozen=True)
class TrainStage:
    """A training stage (centroids, joint or lut_qat): what learns, for how long, with which losses.

    ``train_weights``: False freezes every non-codebook parameter (stage 1). ``mode``: "lut" (float tables)
    or "quant" (INT-``table_bits`` tables, straight-through). ``backward``: the LUT layers' gradient,
    "exact" (straight-through) or "soft" (soft assignment with a temperature annealed from
    ``temperature[0]`` to ``temperature[1]``, in units of each layer's mean nearest-centroid distance).
    Loss = ``task_weight`` CE + ``recon_weight`` reconstruction + ``distill_weight`` KL(teacher || student)
    at ``distill_temperature``. ``dead_restart``: re-seed unused centroids after every epoch.
    ``select_best``: keep the epoch with the best accuracy on the validation split (never the test split).
    """

    name: str
    epochs: int
    lr: float
    train_weights: bool = True
    codebook_lr_scale: float = 1.0
    mode: str = "lut"
    backward: str = "exact"
    temperature: tuple[float, float] = (1.0, 0.1)
    task_weight: float = 1.0
    recon_weight: float = 0.0
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    table_bits: int = 8
    batch_size: int = 64
    weight_decay: float = 0.0
    dead_restart: bool = False
    bn_reestimate: bool = True  # re-estimate BatchNorm statistics at the end of the stage
    freeze_bn: bool = False  # keep BatchNorm in eval mode while training (running stats fixed)
    select_best: bool = False  # end the stage with the epoch of best VALIDATION accuracy (never test)
    skip: bool = False

    def __post_init__(self):
        if self.name not in STAGE_NAMES[1:]:
            raise ValueError(f"TrainStage.name={self.name!r} must be one of {STAGE_NAMES[1:]}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"TrainStage({self.name}).epochs={self.epochs!r} must be an integer >= 0")
        _positive(f"TrainStage({self.name}).lr", self.lr)
        _positive(f"TrainStage({self.name}).codebook_lr_scale", self.codebook_lr_scale, allow_zero=True)
        for f in ("task_weight", "recon_weight", "distill_weight", "weight_decay"):
            _positive(f"TrainStage({self.name}).{f}", getattr(self, f), allow_zero=True)
        _positive(f"TrainStage({self.name}).distill_temperature", self.distill_temperature)
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"TrainStage({self.name}).mode={self.mode!r} must be one of {TRAIN_MODES}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"TrainStage({self.name}).backward={self.backward!r} must be one of {BACKWARDS}")
        t = tuple(self.temperature)
        if len(t) != 2:
            raise ValueError(f"TrainStage({self.name}).temperature={self.temperature!r} must be (start, end)")
        for x in t:
            _positive(f"TrainStage({self.name}).temperature", x)
        object.__setattr__(self, "temperature", (float(t[0]), float(t[1])))
        if self.task_weight + self.recon_weight + self.distill_weight <= 0:
            raise ValueError(f"TrainStage({self.name}): all loss weights are 0, nothing would be learned")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"TrainStage({self.name}).batch_size={self.batch_size!r} must be an integer >= 1")
        from .quant import check_table_bits

        check_table_bits(self.table_bits, f"TrainStage({self.name}).table_bits")


def _default_stages() -> tuple:
    # Measured (INT8 test accuracy, v=4 c=16; tools/lutboost_acceptance.py, 3 seeds unless said):
    # - calibrate bn_per_layer: mnist1d CNN seed 0 after calibration l2/l1/cheb 94.2/88.4/93.3 -> 96.7/96.1/96.9,
    #   final 98.0/97.1/97.5 -> 98.3/98.5/98.2 (fp32 98.7): the largest single gain.
    # - 1 centroid epoch + 6 joint (was 2 + 5) at joint lr 1e-3 (was 5e-4), select_best on val (before
    #   bn_per_layer): digits CNN drops 0.30/0.52/0.37 -> 0.15/0.15/0.15 pt (noise: 1 test image = 0.22 pt).
    # - all of it: digits CNN 0.22/0.15/0.22 pt (single-stage, same 8 epochs and lr: 0.22/0.67/0.37), about
    #   9-12 s per run; mnist1d CNN 0.67/0.53/0.77 pt (single-stage 2.40/1.73/5.37), 22-24 s per run.
    # - centroid stage with backward="soft": mnist1d seed 0 -1.4..+0.9 pt per metric for 10-20 s more: left off.
    return (
        CalibrateStage(),
        # centroid lr 1e-3 (was 1e-2): mnist1d CNN, L1, seed 0: 87.4 -> 95.3 %; digits L1 seed 0: 99.11 -> 99.33 %
        TrainStage("centroids", epochs=1, lr=1e-3, train_weights=False, recon_weight=1.0),
        TrainStage("joint", epochs=6, lr=1e-3, codebook_lr_scale=4.0, recon_weight=1.0, distill_weight=1.0,
                   dead_restart=True, select_best=True),
        TrainStage("lut_qat", epochs=1, lr=1e-4, mode="quant", codebook_lr_scale=4.0, recon_weight=1.0,
                   distill_weight=1.0),
    )


@dataclass(frozen=True)
class LUTBoostConfig:
    """The full schedule: the four stages in order (calibrate, centroids, joint, lut_qat)."""

    stages: tuple = field(default_factory=_default_stages)

    def __post_init__(self):
        st = tuple(self.stages)
        names = tuple(s.name for s in st)
        if names != STAGE_NAMES:
            raise ValueError(f"LUTBoostConfig.stages must be the stages {STAGE_NAMES} in this order; got {names}")
        if not isinstance(st[0], CalibrateStage) or not all(isinstance(s, TrainStage) for s in st[1:]):
            raise TypeError("LUTBoostConfig.stages: stage 0 must be a CalibrateStage, stages 1-3 TrainStages")
        object.__setattr__(self, "stages", st)

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages if not s.skip)

    def with_stage(self, name: str, **changes) -> "LUTBoostConfig":
        """A copy with one stage's fields changed, e.g. ``cfg.with_stage("joint", epochs=10)``."""
        return LUTBoostConfig(tuple(replace(s, **changes) if s.name == name else s for s in self.stages))

    def scaled(self, factor: float) -> "LUTBoostConfig":
        """A copy with every training stage's epochs multiplied by ``factor`` (rounded, at least 1)."""
        return LUTBoostConfig(tuple(s if isinstance(s, CalibrateStage) else
                                    replace(s, epochs=max(1, int(round(s.epochs * factor))))
                                    for s in self.stages))

    def to_dict(self) -> dict:
        return {"stages": [asdict(s) for s in self.stages]}


# ------------------------------------------------------------------------------------------------ report
@dataclass
class StageResult:
    """Metrics after one stage."""

    stage: str
    epochs: int
    seconds: float
    test_acc_lut: float | None
    test_acc_int8: float | None
    val_acc: float | None
    layers: dict = field(default_factory=dict)  # name -> {recon_rel, entropy_bits, dead_centroids, ...}
    history: list = field(default_factory=list)  # per epoch: loss parts, val/test acc, lr, seconds
    skipped: bool = False

    @property
    def mean_recon(self) -> float:
        vals = [d["recon_rel"] for d in self.layers.values()]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def mean_entropy(self) -> float:
        vals = [d["entropy_bits"] for d in self.layers.values()]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def dead_centroids(self) -> int:
        return int(sum(d["dead_centroids"] for d in self.layers.values()))


@dataclass
class LUTBoostReport:
    """Per-stage metrics of one run; ``to_frame()`` / ``str()`` give the table, ``to_dict()`` the JSON."""

    method: str
    v: int
    c: int
    metric: str
    seed: int
    fp32_test_acc: float
    stages: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    resumed_from: str | None = None

    @property
    def final(self) -> StageResult:
        done = [s for s in self.stages if not s.skipped]
        return done[-1] if done else self.stages[-1]

    @property
    def final_acc(self) -> float:
        """Test accuracy (%) of the final model with INT-b tables."""
        return self.final.test_acc_int8

    @property
    def seconds(self) -> float:
        return float(sum(s.seconds for s in self.stages))

    @property
    def total_epochs(self) -> int:
        return int(sum(s.epochs for s in self.stages))

    def epoch_curve(self) -> list[dict]:
        """Test accuracy after every epoch over all stages: [{"epoch": cumulative, "stage", "test_acc"}]."""
        out, e = [], 0
        for s in self.stages:
            if s.skipped:
                continue
            if s.epochs == 0:
                out.append({"epoch": e, "stage": s.stage, "test_acc": s.test_acc_lut})
            for h in s.history:
                e += 1
                out.append({"epoch": e, "stage": s.stage, "test_acc": h.get("test_acc")})
        return out

    def to_frame(self):
        import pandas as pd

        rows = []
        for s in self.stages:
            rows.append({"stage": s.stage, "skipped": s.skipped, "epochs": s.epochs, "seconds": s.seconds,
                         "test_acc_lut": s.test_acc_lut, "test_acc_int8": s.test_acc_int8,
                         "val_acc": s.val_acc, "recon_rel": s.mean_recon, "entropy_bits": s.mean_entropy,
                         "dead_centroids": s.dead_centroids})
        return pd.DataFrame(rows).set_index("stage")

    def layer_frame(self):
        """Per (stage, layer) metrics as a DataFrame."""
        import pandas as pd

        rows = [{"stage": s.stage, "layer": n, **d} for s in self.stages for n, d in s.layers.items()]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        head = (f"{self.method}: v={self.v} c={self.c} metric={self.metric} seed={self.seed} "
                f"fp32 {self.fp32_test_acc:.2f} %")
        lines = [head, f"{'stage':<10} {'ep':>3} {'sec':>6} {'test lut':>8} {'test int8':>9} {'val':>6} "
                       f"{'recon':>7} {'H bits':>6} {'dead':>5}"]
        for s in self.stages:
            if s.skipped:
                lines.append(f"{s.stage:<10} skipped")
                continue

            def f(x, w=8):
                return f"{x:>{w}.2f}" if x is not None else f"{'-':>{w}}"
            lines.append(f"{s.stage:<10} {s.epochs:>3} {s.seconds:>6.1f} {f(s.test_acc_lut)} "
                         f"{f(s.test_acc_int8, 9)} {f(s.val_acc, 6)} {s.mean_recon:>7.4f} "
                         f"{s.mean_entropy:>6.2f} {s.dead_centroids:>5}")
        lines.append(f"final INT{self._bits()} test accuracy {self.final_acc:.2f} % "
                     f"(drop {self.fp32_test_acc - self.final_acc:+.2f} pt) in {self.seconds:.1f} s")
        return "\n".join(lines)

    def _bits(self) -> int:
        st = self.config.get("stages", [])
        return st[-1].get("table_bits", 8) if st else 8

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731

    def to_dict(self) -> dict:
        d = asdict(self)
        d["final_acc"] = self.final_acc
        d["seconds"] = self.seconds
        d["total_epochs"] = self.total_epochs
        d["epoch_curve"] = self.epoch_curve()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LUTBoostReport":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["stages"] = [StageResult(**s) for s in d.get("stages", [])]
        return cls(**d)


# ----------------------------------------------------------------------------------------------- helpers
def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _batches(dataset, batch_size: int, shuffle: bool, seed: int):
    from .data import loaders

    return loaders(dataset, batch_size, shuffle=shuffle, seed=seed)


def _progress_off(progress: bool) -> bool:
    return (not progress) or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


@torch.no_grad()
def accuracy(model: nn.Module, dataset, mode: str | None = None, batch_size: int = 512) -> float:
    """Top-1 test accuracy in % with every LUT layer in ``mode`` (None: as they are); modes restored."""
    saved = {n: m.mode for n, m in lut_layers(model)}
    if mode is not None:
        set_mode(model, mode)
    was = model.training
    model.eval()
    dev, correct, total = _device(model), 0, 0
    try:
        for x, y in _batches(dataset, batch_size, False, 0):
            correct += (model(x.to(dev)).argmax(1) == y.to(dev)).sum().item()
            total += y.numel()
    finally:
        for n, m in lut_layers(model):
            m.mode = saved[n]
        model.train(was)
    return 100.0 * correct / max(1, total)


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, dataset, batches: int = 8, batch_size: int = 256,
                         seed: int = 0) -> int:
    """Recompute every BatchNorm's running mean/var on training batches with the model as it is now.

    After conversion the activations after each LUT layer differ from fp32 (quantization error shifts
    their mean and variance); the stored statistics are stale. Returns how many BatchNorm layers were reset.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    was = model.training
    saved = [(m.momentum, m.training) for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    dev = _device(model)
    try:
        for i, (x, _) in enumerate(_batches(dataset, batch_size, True, seed)):
            if i >= batches:
                break
            model(x.to(dev))
    finally:
        for m, (mom, tr) in zip(bns, saved):
            m.momentum = mom
            m.train(tr)
        model.train(was)
    return len(bns)


@torch.no_grad()
def layer_stats(model: nn.Module, dataset, batches: int = 2, batch_size: int = 256) -> dict:
    """Per LUT layer, on a few batches: relative reconstruction error ||Y_lut - Y||^2 / ||Y||^2 (float
    tables, same inputs), codebook utilization entropy (bits, mean over sub-spaces; log2(c) is the max)
    and dead centroids (never chosen), plus the fraction of dead centroids."""
    layers = dict(lut_layers(model))
    acc = {n: {"err": 0.0, "ref": 0.0, "counts": torch.zeros(m.S, m.c, dtype=torch.long)}
           for n, m in layers.items()}

    def hook(name):
        def fn(module, inputs, output):
            rows = module.rows_of(inputs[0])
            W, b = module.weight_matrix(), module._bias()
            y = F.linear(rows, W, b)
            sub = module.split(rows)
            idx = module.encode_rows(rows)
            hard = module._hard_sub(sub, idx).reshape(rows.shape[0], -1)
            y_lut = F.linear(hard, module.padded_weight(), b)
            a = acc[name]
            a["err"] += float((y_lut - y).pow(2).sum())
            a["ref"] += float(y.pow(2).sum())
            off = torch.arange(module.S, device=idx.device) * module.c
            a["counts"] += torch.bincount((idx + off).flatten(), minlength=module.S * module.c).reshape(
                module.S, module.c).cpu()
        return fn

    hooks = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    was = model.training
    model.eval()
    dev = _device(model)
    try:
        for i, (x, _) in enumerate(_batches(dataset, batch_size, False, 0)):
            if i >= batches:
                break
            model(x.to(dev))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    out = {}
    for n, a in acc.items():
        cnt = a["counts"].double()
        p = cnt / cnt.sum(1, keepdim=True).clamp_min(1)
        ent = -(p * torch.log2(p.clamp_min(1e-12))).sum(1)
        dead = int((cnt == 0).sum())
        out[n] = {"recon_rel": a["err"] / max(a["ref"], 1e-30), "entropy_bits": float(ent.mean()),
                  "dead_centroids": dead, "dead_fraction": dead / cnt.numel(), "S": layers[n].S,
                  "c": layers[n].c}
    return out


@torch.no_grad()
def restart_dead_centroids(layer, counts: torch.Tensor, generator: torch.Generator, noise: float = 0.01) -> int:
    """Re-seed the centroids of ``layer`` that were never chosen (``counts`` (S, c) == 0): each takes the
    position of its sub-space's most used centroid plus small noise, splitting that cluster in two.
    Returns the number restarted."""
    dead = counts == 0
    n = int(dead.sum())
    if n == 0:
        return 0
    cb = layer.codebooks.data
    busiest = counts.argmax(1)  # (S,)
    src = cb[torch.arange(layer.S, device=cb.device), busiest.to(cb.device)]  # (S, v)
    scale = cb.std(dim=1, keepdim=True).clamp_min(1e-6)  # (S, 1, v)
    eps = torch.randn(cb.shape, generator=generator).to(cb.device, cb.dtype) * noise * scale
    new = src.unsqueeze(1).expand_as(cb) + eps
    mask = dead.to(cb.device).unsqueeze(-1)
    cb.copy_(torch.where(mask, new, cb))
    return n


@torch.no_grad()
def _distance_scale(model: nn.Module, dataset, batch_size: int = 256) -> dict:
    """Mean nearest-centroid distance per LUT layer on one batch (the unit of the soft temperature)."""
    from .distances import pairwise_distance

    out = {}
    layers = dict(lut_layers(model))

    def hook(name):
        def fn(module, inputs, output):
            sub = module.split(module.rows_of(inputs[0]))
            d = pairwise_distance(sub, module.codebooks, module.metric)
            out[name] = float(d.min(-1).values.mean().clamp_min(1e-6))
        return fn

    hooks = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    was = model.training
    model.eval()
    try:
        x, _ = next(iter(_batches(dataset, batch_size, False, 0)))
        model(x.to(_device(model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


# ------------------------------------------------------------------------------------------ train stage
def _run_train_stage(model: nn.Module, teacher: nn.Module | None, stage: TrainStage, train, val, test,
                     seed: int, progress: bool, track_test: bool, on_epoch: Callable | None = None) -> list:
    """Train ``model`` in place for one stage; return the per-epoch history."""
    from tqdm.auto import tqdm

    _seed_all(seed)
    dev = _device(model)
    layers = dict(lut_layers(model))
    codebooks, others = codebook_params(model)
    for p in codebooks:
        p.requires_grad_(True)
    for p in others:
        p.requires_grad_(stage.train_weights)
    groups = [{"params": codebooks, "lr": stage.lr * stage.codebook_lr_scale, "weight_decay": 0.0}]
    if stage.train_weights:
        groups.append({"params": others, "lr": stage.lr, "weight_decay": stage.weight_decay})
    groups = [g for g in groups if g["params"] and g["lr"] > 0]
    opt = torch.optim.AdamW(groups, lr=stage.lr, weight_decay=0.0)
    loader = _batches(train, stage.batch_size, True, seed)
    steps = max(1, stage.epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
    set_mode(model, stage.mode, backward=stage.backward, track_recon=stage.recon_weight > 0)
    for m in layers.values():
        m.table_bits = stage.table_bits
    scales = _distance_scale(model, train) if stage.backward == "soft" else {}
    t0, t1 = stage.temperature
    gen = torch.Generator().manual_seed(seed + 7919)
    if teacher is not None:
        teacher.eval()
    history = []
    step = 0
    best_val, best_epoch, best_state = -1.0, None, None
    bar = tqdm(range(1, stage.epochs + 1), desc=stage.name, leave=False, disable=_progress_off(progress))
    try:
        for epoch in bar:
            tic = time.perf_counter()
            model.train()
            if not stage.train_weights or stage.freeze_bn:
                _freeze_bn(model)  # weights frozen: BN statistics stay those of the calibrated model
            counts = {n: torch.zeros(m.S, m.c, dtype=torch.long) for n, m in layers.items()}
            for m in layers.values():
                m.keep_indices = stage.dead_restart
            sums = {"task": 0.0, "recon": 0.0, "distill": 0.0, "loss": 0.0}
            n_seen = 0
            for x, y in loader:
                if scales:
                    frac = step / steps
                    tau = t0 * (t1 / t0) ** frac
                    for n, m in layers.items():
                        m.temperature = tau * scales[n]
                x, y = x.to(dev), y.to(dev)
                logits = model(x)
                task = F.cross_entropy(logits, y)
                loss = stage.task_weight * task
                recon = reconstruction_loss(model) if stage.recon_weight > 0 else None
                if recon is not None:
                    loss = loss + stage.recon_weight * recon
                kd = None
                if teacher is not None and stage.distill_weight > 0:
                    with torch.no_grad():
                        t_logits = teacher(x)
                    T = stage.distill_temperature
                    kd = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t_logits / T, 1),
                                  reduction="batchmean", log_target=True) * T * T
                    loss = loss + stage.distill_weight * kd
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"stage {stage.name}: loss became {loss.item()} at epoch {epoch}; "
                                             f"lower lr={stage.lr}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if stage.dead_restart:
                    for n, m in layers.items():
                        idx = m.last_indices
                        if idx is not None:
                            off = torch.arange(m.S, device=idx.device) * m.c
                            counts[n] += torch.bincount((idx + off).flatten(),
                                                        minlength=m.S * m.c).reshape(m.S, m.c).cpu()
                bs = y.shape[0]
                n_seen += bs
                sums["task"] += task.item() * bs
                sums["recon"] += (recon.item() if recon is not None else 0.0) * bs
                sums["distill"] += (kd.item() if kd is not None else 0.0) * bs
                sums["loss"] += loss.item() * bs
            restarted = 0
            if stage.dead_restart:
                for n, m in layers.items():
                    restarted += restart_dead_centroids(m, counts[n], gen)
                    m.keep_indices = False
                    m.last_indices = None
            rec = {k: v / max(1, n_seen) for k, v in sums.items()}
            rec.update(epoch=epoch, lr=opt.param_groups[-1]["lr"], restarted=restarted,
                       val_acc=accuracy(model, val) if val is not None else None,
                       test_acc=accuracy(model, test) if (track_test and test is not None) else None,
                       seconds=time.perf_counter() - tic)
            history.append(rec)
            if stage.select_best and rec["val_acc"] is not None and rec["val_acc"] >= best_val:
                best_val, best_epoch = rec["val_acc"], epoch  # ties go to the later (lower-lr) epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{rec['loss']:.3f}", val=rec["val_acc"])
            if on_epoch is not None:
                on_epoch(stage.name, rec)
        if best_state is not None and best_epoch != len(history):
            model.load_state_dict(best_state)
        for rec in history:
            rec["selected"] = rec["epoch"] == best_epoch if best_state is not None else None
    finally:
        for m in layers.values():
            m.keep_indices = False
            m.last_indices = None
        for p in model.parameters():
            p.requires_grad_(True)
        set_mode(model, "lut", track_recon=False, backward="exact")
        model.eval()
    return history


# ------------------------------------------------------------------------------------------ checkpoints
def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]), "python": json.dumps(random.getstate())}


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(("MT19937", st["numpy_keys"].numpy().astype(np.uint32), st["numpy_pos"], 0, 0.0))
    py = json.loads(st["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))


def _ckpt_path(checkpoint_dir, i: int) -> Path:
    return Path(checkpoint_dir) / f"stage{i}_{STAGE_NAMES[i]}.pt"


def _fingerprint(**kw) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------------------- lutboost
def _prepare(model, v, c, metric, skip, overrides, table_bits, layout):
    skip = tuple([skip] if isinstance(skip, str) else skip or ())
    names = {n for n, _ in model.named_modules()}
    skip = tuple(s for s in skip if any(n == s or fnmatch.fnmatchcase(n, s) for n in names))
    return convert(model, v, c, metric, skip=skip, overrides=overrides, table_bits=table_bits, layout=layout)


def _evaluate_stage(lut, name, epochs, seconds, val, test, history, stats_batches) -> StageResult:
    return StageResult(stage=name, epochs=epochs, seconds=seconds,
                       test_acc_lut=accuracy(lut, test, "lut") if test is not None else None,
                       test_acc_int8=accuracy(lut, test, "quant") if test is not None else None,
                       val_acc=accuracy(lut, val, "quant") if val is not None else None,
                       layers=layer_stats(lut, val if val is not None else test, batches=stats_batches),
                       history=history)


def lutboost(model: nn.Module, train, val, v: int = 4, c: int = 16, metric: str = "l1", skip=("conv1",),
             stages: LUTBoostConfig | None = None, seed: int = 0, checkpoint_dir=None, resume: bool = False,
             teacher: nn.Module | None = None, progress: bool = True, test=None, overrides=None,
             layout: str = "channel", track_test: bool = False,
             callback: Callable[[str, nn.Module, "LUTBoostReport"], Any] | None = None,
             method: str = "lutboost", deterministic: bool = True) -> tuple[nn.Module, LUTBoostReport]:
    """Convert a trained fp32 ``model`` into a LUT model with LUTBoost; return ``(lut_model, report)``.

    train / val / test: datasets of (x, y); test (optional) is only evaluated, after every stage (and after
    every epoch with ``track_test=True``, for convergence curves). ``skip``: layers kept float (names
    that are absent are ignored). ``stages``: a ``LUTBoostConfig`` (default schedule if None). ``teacher``:
    the fp32 model for distillation (default: a copy of ``model``). ``checkpoint_dir``: a checkpoint is
    written atomically after every stage; ``resume=True`` continues after the last one found there.
    ``callback(stage_name, lut_model, report)`` runs after every stage (raise from it to abort). The input
    model is not modified. The returned model is in "quant" mode (INT-b tables). ``deterministic``: run
    with ``torch.use_deterministic_algorithms`` (the CPU scatter-add in the codebook gradient is otherwise
    order-dependent at the last bit, and a resumed run would drift from an uninterrupted one).
    """
    prev = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _lutboost(model, train, val, v, c, metric, skip, stages, seed, checkpoint_dir, resume, teacher,
                         progress, test, overrides, layout, track_test, callback, method)
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])


def _lutboost(model, train, val, v, c, metric, skip, stages, seed, checkpoint_dir, resume, teacher, progress,
              test, overrides, layout, track_test, callback, method):
    from tqdm.auto import tqdm

    from .train import load_checkpoint, save_checkpoint

    cfg = stages if stages is not None else LUTBoostConfig()
    if not isinstance(cfg, LUTBoostConfig):
        cfg = LUTBoostConfig(tuple(cfg))
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir= (where the stage checkpoints were written)")
    model = copy.deepcopy(model).eval()
    if teacher is None and any(isinstance(s, TrainStage) and s.distill_weight > 0 and not s.skip
                               for s in cfg.stages):
        teacher = copy.deepcopy(model).eval()
    if teacher is not None:
        for p in teacher.parameters():
            p.requires_grad_(False)
    fp32_acc = accuracy(model, test) if test is not None else float("nan")
    _seed_all(seed)
    lut = _prepare(model, v, c, metric, skip, overrides, cfg.stages[-1].table_bits, layout)
    set_mode(lut, "lut")
    fp = _fingerprint(v=v, c=c, metric=metric, skip=skip, seed=seed, cfg=cfg.to_dict(), method=method)
    report = LUTBoostReport(method, v, c, lut.lut_summary.converted[0].metric if lut.lut_summary.converted
                            else metric, seed, fp32_acc, [], cfg.to_dict())
    start = 0
    if resume:
        for i in reversed(range(len(STAGE_NAMES))):
            p = _ckpt_path(checkpoint_dir, i)
            if p.exists():
                ck = load_checkpoint(p)
                if ck["fingerprint"] != fp:
                    raise ResumeMismatchError(f"checkpoint {p} was written by a different run configuration; "
                                              "use another checkpoint_dir or resume=False")
                lut.load_state_dict(ck["model"])
                report = LUTBoostReport.from_dict(json.loads(ck["report"]))
                report.resumed_from = str(p)
                _set_rng_state(ck["rng"])
                start = i + 1
                break
    stats_batches = 2
    bar = tqdm(list(enumerate(cfg.stages))[start:], desc=method, disable=_progress_off(progress))
    for i, st in bar:
        bar.set_postfix(stage=st.name)
        tic = time.perf_counter()
        if st.skip or (isinstance(st, TrainStage) and st.epochs == 0):
            report.stages.append(StageResult(st.name, 0, 0.0, None, None, None, {}, [], skipped=True))
        elif isinstance(st, CalibrateStage):
            _seed_all(seed + 1000 * i)
            dev = _device(lut)
            cal_batches = [x.to(dev) for k, (x, _) in zip(range(st.batches), _batches(train, st.batch_size, True,
                                                                                     seed))]
            if st.sequential and st.bn_reestimate and st.bn_per_layer:
                # layer by layer, re-estimating BatchNorm after each: the next layer's k-means then sees
                # the activations it will get at inference (fresh BN statistics after the quantized layers)
                for k, (name, _) in enumerate(list(lut_layers(lut))):
                    calibrate(lut, cal_batches, max_rows=st.max_rows, iters=st.iters, seed=seed + k,
                              max_batches=st.batches, sequential=True, layers=[name])
                    pending = {m: m.mode for _, m in lut_layers(lut) if not bool(m.calibrated)}
                    for m in pending:  # not calibrated yet: run them float while the statistics are taken
                        m.mode = "exact"
                    reestimate_batchnorm(lut, train, batches=st.batches, batch_size=st.batch_size, seed=seed)
                    for m, mode in pending.items():
                        m.mode = mode
            else:
                calibrate(lut, cal_batches, max_rows=st.max_rows, iters=st.iters,
                          seed=seed, max_batches=st.batches, sequential=st.sequential)
                if st.bn_reestimate:
                    reestimate_batchnorm(lut, train, batches=st.batches, batch_size=st.batch_size, seed=seed)
            report.stages.append(_evaluate_stage(lut, st.name, 0, time.perf_counter() - tic, val, test, [],
                                                 stats_batches))
        else:
            hist = _run_train_stage(lut, teacher, st, train, val, test, seed + 1000 * i, progress, track_test)
            if st.bn_reestimate:
                set_mode(lut, st.mode)
                reestimate_batchnorm(lut, train, batches=8, batch_size=256, seed=seed + i)
                set_mode(lut, "lut")
            report.stages.append(_evaluate_stage(lut, st.name, len(hist), time.perf_counter() - tic, val, test,
                                                 hist, stats_batches))
        if checkpoint_dir is not None:
            save_checkpoint({"model": lut.state_dict(), "stage_index": i, "stage": st.name,
                             "fingerprint": fp, "report": json.dumps(report.to_dict()), "rng": _rng_state()},
                            _ckpt_path(checkpoint_dir, i))
            from .results import atomic_write_bytes

            atomic_write_bytes(Path(checkpoint_dir) / "report.json",
                               (json.dumps(report.to_dict(), indent=1, default=float) + "\n").encode())
        if callback is not None:
            callback(st.name, lut, report)
    set_mode(lut, "quant")
    lut.eval()
    lut.lutboost_report = report
    return lut, report


def single_stage(model: nn.Module, train, val, v: int = 4, c: int = 16, metric: str = "l1", skip=("conv1",),
                 epochs: int = 8, lr: float = 5e-4, seed: int = 0, recon_weight: float = 1.0,
                 backward: str = "exact", calibrate_stage: CalibrateStage | None = None, **kw):
    """LUT-NN style baseline in the same API: k-means init, then ONE end-to-end fine-tune of weights and
    centroids for ``epochs`` (task loss through the straight-through estimator, no distillation, no
    staged schedule, no BatchNorm re-estimation). Evaluated with INT8 tables like LUTBoost."""
    cal = calibrate_stage or CalibrateStage(sequential=False, bn_reestimate=False)
    st = TrainStage("joint", epochs=epochs, lr=lr, recon_weight=recon_weight, backward=backward,
                    bn_reestimate=False)
    cfg = LUTBoostConfig((cal, TrainStage("centroids", epochs=0, lr=1e-3, train_weights=False, skip=True), st,
                          TrainStage("lut_qat", epochs=0, lr=1e-3, mode="quant", skip=True)))
    return lutboost(model, train, val, v=v, c=c, metric=metric, skip=skip, stages=cfg, seed=seed,
                    method="single_stage", **kw)


def compare(model_name: str, metrics=("l2", "l1", "chebyshev"), seeds=(0, 1, 2), v: int = 4, c: int = 16,
            stages: LUTBoostConfig | None = None, methods=("lutboost", "single_stage"), skip=("conv1",),
            progress: bool = False, track_test: bool = False, on_record: Callable | None = None) -> list[dict]:
    """Run LUTBoost and/or the single-stage baseline (same total epochs) for every (metric, seed) on a
    cached pretrained model (``lutnb.train.pretrained``); return one record per run:
    {model, dataset, method, metric, v, c, bits, seed, fp32_acc, lut_acc (INT8 tables, test), seconds,
    epochs, epoch_curve}. ``on_record(record)`` is called as each finishes (e.g. to save partial results)."""
    from .data import get_dataset
    from .layers import equivalent_bits
    from .train import RECIPES, pretrained

    cfg = stages if stages is not None else LUTBoostConfig()
    dataset = RECIPES[model_name].dataset
    out = []
    for seed in seeds:
        data = get_dataset(dataset, seed=seed)
        model = pretrained(model_name, seed, progress=progress)
        for metric in metrics:
            for method in methods:
                tic = time.perf_counter()
                if method == "lutboost":
                    _, rep = lutboost(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                      stages=cfg, seed=seed, test=data.test, progress=progress,
                                      track_test=track_test)
                elif method == "single_stage":
                    j = cfg.stages[2]
                    _, rep = single_stage(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                          epochs=cfg.total_epochs, lr=j.lr, seed=seed, test=data.test,
                                          progress=progress, track_test=track_test,
                                          calibrate_stage=replace(cfg.stages[0], sequential=False,
                                                                  bn_reestimate=False))
                else:
                    raise ValueError(f"method={method!r} must be 'lutboost' or 'single_stage'")
                rec = {"model": model_name, "dataset": dataset, "method": method, "metric": metric, "v": v,
                       "c": c, "bits": equivalent_bits(v, c), "seed": seed, "fp32_acc": rep.fp32_test_acc,
                       "lut_acc": rep.final_acc, "drop": rep.fp32_test_acc - rep.final_acc,
                       "seconds": time.perf_counter() - tic, "epochs": rep.total_epochs,
                       "epoch_curve": rep.epoch_curve(), "stages": rep.to_frame().reset_index().to_dict("records")}
                out.append(rec)
                if on_record is not None:
                    on_record(rec)
    return out


def summarize(records: list[dict]):
    """Mean and std over seeds of fp32 and LUT accuracy per (model, method, metric, v, c): a DataFrame."""
    import pandas as pd

    df = pd.DataFrame([{k: r[k] for k in ("model", "method", "metric", "v", "c", "bits", "seed", "fp32_acc",
                                          "lut_acc", "drop", "seconds")} for r in records])
    g = df.groupby(["model", "method", "metric", "v", "c", "bits"], sort=False)
    out = g.agg(fp32_mean=("fp32_acc", "mean"), fp32_std=("fp32_acc", "std"), lut_mean=("lut_acc", "mean"),
                lut_std=("lut_acc", "std"), drop_mean=("drop", "mean"), seeds=("seed", "nunique"),
                seconds=("seconds", "mean"))
    return out.reset_index()
