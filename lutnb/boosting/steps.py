"""The pieces a LUTBoost stage is built from: accuracy, BatchNorm re-estimation, dead-centroid restarts,
distance scales, and one training stage."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import device_of, loaders, progress_disabled, seed_everything, sync_free
from ..vq.distances import pairwise_distance
from ..vq.layers import codebook_params, lut_layers, reconstruction_loss, set_mode
from . import distributed
from .config import TrainStage


@torch.no_grad()
def accuracy(model: nn.Module, dataset, mode: str | None = None, batch_size: int = 512) -> float:
    """Top-1 test accuracy in % with every LUT layer in ``mode`` (None: as they are); modes restored."""
    saved = {n: m.mode for n, m in lut_layers(model)}
    if mode is not None:
        set_mode(model, mode)
    was = model.training
    model.eval()
    dev, correct, total = device_of(model), torch.zeros((), dtype=torch.long, device=device_of(model)), 0
    try:
        for x, y in loaders(dataset, batch_size, False, 0):
            correct += (model(x.to(dev)).argmax(1) == y.to(dev)).sum()  # summed on the device, read once
            total += y.numel()
    finally:
        for n, m in lut_layers(model):
            m.mode = saved[n]
        model.train(was)
    return 100.0 * int(correct) / max(1, total)


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
    dev = device_of(model)
    try:
        for i, (x, _) in enumerate(loaders(dataset, batch_size, True, seed)):
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
            W, b = module.weight_matrix(), module.bias_or_none()
            y = F.linear(rows, W, b)
            sub = module.split(rows)
            idx = module.encode_rows(rows)
            hard = module.hard_sub(sub, idx).reshape(rows.shape[0], -1)
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
    dev = device_of(model)
    try:
        for i, (x, _) in enumerate(loaders(dataset, batch_size, False, 0)):
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
def distance_scale(model: nn.Module, dataset, batch_size: int = 256) -> dict:
    """Mean nearest-centroid distance per LUT layer on one batch (the unit of the soft temperature)."""

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
        x, _ = next(iter(loaders(dataset, batch_size, False, 0)))
        model(x.to(device_of(model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


@torch.no_grad()
def count_indices(layers: dict, counts: dict) -> None:
    """Add each LUT layer's last chosen centroid indices (``last_indices``) to its (S, c) ``counts``, on the
    indices' device (no host sync: the counts are read once, after the epoch)."""
    for n, m in layers.items():
        idx = m.last_indices
        if idx is not None:
            off = torch.arange(m.S, device=idx.device) * m.c
            got = torch.bincount((idx + off).flatten(), minlength=m.S * m.c).reshape(m.S, m.c)
            if counts[n].device != got.device:
                counts[n] = counts[n].to(got.device)
            counts[n] += got


def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy. On CPU ``F.cross_entropy``; elsewhere the same value as log-softmax + gather, because
    CUDA's NLLLoss has no deterministic kernel (it raises under strict deterministic mode; the list is in
    ``torch.use_deterministic_algorithms``' docstring) while gather's backward is deterministic there."""
    if logits.device.type == "cpu":
        return F.cross_entropy(logits, y)
    return cross_entropy_gather(logits, y)


def cross_entropy_gather(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy as -log_softmax(logits)[y]: no NLLLoss kernel (see `task_loss`)."""
    return -F.log_softmax(logits, 1).gather(1, y.unsqueeze(1)).mean()


# ------------------------------------------------------------------------------------------ train stage
@dataclass
class _StageLoop:
    """What the epochs of one training stage share: model, optimizer, schedule, and the step counter."""

    model: nn.Module
    teacher: nn.Module | None
    stage: TrainStage
    layers: dict
    loader: object
    opt: torch.optim.Optimizer
    sched: object
    steps: int
    scales: dict
    dev: torch.device
    step: int = 0
    amp: str | None = None
    ctx: object = None  # distributed.DistContext when several processes train together
    fwd: nn.Module | None = None  # (logits, recon loss) of a batch: WithLosses(model), DDP-wrapped or not


def _stage_optimizer(model: nn.Module, stage: TrainStage) -> torch.optim.Optimizer:
    """Set what learns in this stage (codebooks always, other weights with ``train_weights``); its AdamW."""
    codebooks, others = codebook_params(model)
    for p in codebooks:
        p.requires_grad_(True)
    for p in others:
        p.requires_grad_(stage.train_weights)
    groups = [{"params": codebooks, "lr": stage.lr * stage.codebook_lr_scale, "weight_decay": 0.0}]
    if stage.train_weights:
        groups.append({"params": others, "lr": stage.lr, "weight_decay": stage.weight_decay})
    groups = [g for g in groups if g["params"] and g["lr"] > 0]
    return torch.optim.AdamW(groups, lr=stage.lr, weight_decay=0.0)


def _start_stage(model: nn.Module, teacher: nn.Module | None, stage: TrainStage, train, seed: int,
                 amp: str | None = None) -> _StageLoop:
    """Seed, optimizer, loader, cosine schedule, LUT modes and soft-backward scales for one stage."""
    seed_everything(seed)
    dev = device_of(model)
    layers = dict(lut_layers(model))
    opt = _stage_optimizer(model, stage)
    loader = loaders(train, stage.batch_size, True, seed)
    steps = max(1, stage.epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
    set_mode(model, stage.mode, backward=stage.backward, track_recon=stage.recon_weight > 0)
    for m in layers.values():
        m.table_bits = stage.table_bits
    scales = distance_scale(model, train) if stage.backward == "soft" else {}
    ctx = distributed.current()
    losses = reconstruction_loss if stage.recon_weight > 0 else None
    fwd = distributed.wrap(model, losses) if ctx is not None else distributed.WithLosses(model, losses)
    return _StageLoop(model, teacher, stage, layers, loader, opt, sched, steps, scales, dev, amp=check_amp(amp),
                      ctx=ctx, fwd=fwd)


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp) -> str | None:
    """``amp`` as None or "bf16": a ValueError naming the value otherwise (fp16 would need a gradient scaler)."""
    if amp not in (None, "bf16"):
        raise ValueError(f"amp={amp!r}: use None (float32) or 'bf16' (autocast to bfloat16; fp16 is not supported "
                         "because it needs a gradient scaler)")
    return amp


def _stage_loss(loop: _StageLoop, x: torch.Tensor, y: torch.Tensor) -> tuple:
    """(loss, task, recon or None, kd or None) of one batch, under autocast when the stage runs with AMP."""
    stage = loop.stage
    with torch.autocast(loop.dev.type, dtype=AMP_DTYPES.get(loop.amp, torch.bfloat16), enabled=loop.amp is not None):
        logits, recon = loop.fwd(x)
        t_logits = None
        if loop.teacher is not None and stage.distill_weight > 0:
            with torch.no_grad():
                t_logits = loop.teacher(x)
    logits = logits.float()
    task = task_loss(logits, y)
    loss = stage.task_weight * task
    if recon is not None:
        loss = loss + stage.recon_weight * recon.float()
    kd = None
    if t_logits is not None:
        T = stage.distill_temperature
        kd = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t_logits.float() / T, 1),
                      reduction="batchmean", log_target=True) * T * T
        loss = loss + stage.distill_weight * kd
    return loss, task, recon, kd


def _raise_nonfinite(stage: TrainStage, epoch: int, what: str) -> None:
    raise FloatingPointError(f"stage {stage.name}: loss became {what} at epoch {epoch}; lower lr={stage.lr}")


def _stage_epoch(loop: _StageLoop, epoch: int) -> tuple[dict, int, dict]:
    """One pass over the training batches; returns the summed losses, the rows seen and the index counts.

    CPU: a non-finite loss raises at its step. On an accelerator the step reads nothing on the host: the
    losses are summed on the device (float64, the same sums as Python floats) and read, with a count of
    non-finite steps, once after the epoch (a non-finite loss then raises at the epoch's end)."""
    stage, layers = loop.stage, loop.layers
    loop.model.train()
    if not stage.train_weights or stage.freeze_bn:
        _freeze_bn(loop.model)  # weights frozen: BN statistics stay those of the calibrated model
    counts = {n: torch.zeros(m.S, m.c, dtype=torch.long) for n, m in layers.items()}
    for m in layers.values():
        m.keep_indices = stage.dead_restart
    acc_dtype = torch.float32 if loop.dev.type == "mps" else torch.float64  # MPS has no float64
    sums_t = torch.zeros(4, dtype=acc_dtype, device=loop.dev)  # task, recon, distill, loss (times rows)
    bad_steps = torch.zeros((), dtype=torch.long, device=loop.dev)
    zero = torch.zeros((), device=loop.dev)
    deferred = sync_free(loop.dev)
    n_seen = 0
    t0, t1 = stage.temperature
    for x, y in loop.loader:
        if loop.scales:
            tau = t0 * (t1 / t0) ** (loop.step / loop.steps)
            for n, m in layers.items():
                m.temperature = tau * loop.scales[n]
        x, y = x.to(loop.dev, non_blocking=True), y.to(loop.dev, non_blocking=True)
        scale = 1.0
        if loop.ctx is not None:  # this rank's slice of the global batch (lutnb.boosting.distributed)
            x, y, scale = distributed.shard(x, y, loop.ctx)
        loss, task, recon, kd = _stage_loss(loop, x, y)
        if deferred:
            bad_steps += ~torch.isfinite(loss.detach())
        elif not torch.isfinite(loss):
            _raise_nonfinite(stage, epoch, str(loss.item()))
        loop.opt.zero_grad(set_to_none=True)
        (loss * scale if loop.ctx is not None else loss).backward()
        loop.opt.step()
        loop.sched.step()
        loop.step += 1
        if stage.dead_restart:
            count_indices(layers, counts)
        bs = y.shape[0]
        n_seen += bs
        parts = [task, zero if recon is None else recon, zero if kd is None else kd, loss]
        sums_t += torch.stack([p.detach().to(acc_dtype) for p in parts]) * bs
    if loop.ctx is not None:  # every rank: the sums, rows and counts of the global batches; rank 0's state
        totals = distributed.all_sum(torch.cat([sums_t, torch.tensor([n_seen, int(bad_steps)], dtype=acc_dtype,
                                                                     device=loop.dev)]))
        sums_t, n_seen, bad_steps = totals[:4], int(totals[4]), totals[5].long()
        for n in counts:
            counts[n] = distributed.all_sum(counts[n].to(loop.dev))
        distributed.broadcast_state(loop.model)
    if deferred and int(bad_steps):
        _raise_nonfinite(stage, epoch, f"non-finite in {int(bad_steps)} step(s)")
    sums = dict(zip(("task", "recon", "distill", "loss"), sums_t.tolist()))  # one read per epoch
    return sums, n_seen, counts


def _restart_stage_centroids(loop: _StageLoop, counts: dict, gen: torch.Generator) -> int:
    """After an epoch with ``dead_restart``: re-seed the never-chosen centroids, stop keeping indices."""
    restarted = 0
    if loop.stage.dead_restart:
        for n, m in loop.layers.items():
            restarted += restart_dead_centroids(m, counts[n], gen)
            m.keep_indices = False
            m.last_indices = None
    return restarted


def _end_stage(model: nn.Module, layers: dict) -> None:
    """Leave the model as every stage does, whatever happened: float tables, exact backward, eval."""
    for m in layers.values():
        m.keep_indices = False
        m.last_indices = None
    for p in model.parameters():
        p.requires_grad_(True)
    set_mode(model, "lut", track_recon=False, backward="exact")
    model.eval()


def run_train_stage(model: nn.Module, teacher: nn.Module | None, stage: TrainStage, train, val, test,
                    seed: int, progress: bool, track_test: bool, on_epoch: Callable | None = None,
                    amp: str | None = None) -> list:
    """Train ``model`` in place for one stage; return the per-epoch history. ``amp="bf16"``: the forward
    passes under ``torch.autocast`` to bfloat16 (losses, optimizer and master weights stay float32)."""
    from tqdm.auto import tqdm

    loop = _start_stage(model, teacher, stage, train, seed, amp)
    gen = torch.Generator().manual_seed(seed + 7919)
    if teacher is not None:
        teacher.eval()
    history = []
    best_val, best_epoch, best_state = -1.0, None, None
    bar = tqdm(range(1, stage.epochs + 1), desc=stage.name, leave=False, disable=progress_disabled(progress))
    try:
        for epoch in bar:
            tic = time.perf_counter()
            sums, n_seen, counts = _stage_epoch(loop, epoch)
            restarted = _restart_stage_centroids(loop, counts, gen)
            rec = {k: v / max(1, n_seen) for k, v in sums.items()}
            rec.update(epoch=epoch, lr=loop.opt.param_groups[-1]["lr"], restarted=restarted,
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
        _end_stage(model, loop.layers)
    return history


def epoch_host_syncs(model: nn.Module, teacher: nn.Module | None, stage: TrainStage, train, seed: int = 0,
                     amp: str | None = None) -> dict:
    """Train ``model`` in place for one epoch of ``stage`` and count the calls that would make the host wait
    for an accelerator (`lutnb.runtime.HostSyncCounter`): {"steps", "syncs", "calls"}. Run it under
    `lutnb.runtime.sync_free_paths` to count the accelerator code path on a CPU."""
    from ..runtime import HostSyncCounter

    loop = _start_stage(model, teacher, stage, train, seed, amp)
    try:
        with HostSyncCounter() as counter:
            _stage_epoch(loop, 1)
    finally:
        _end_stage(model, loop.layers)
    return {"steps": loop.step, "syncs": counter.count, "calls": dict(counter.calls)}
