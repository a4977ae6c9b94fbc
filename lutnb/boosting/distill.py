"""Distillation from the fp32 teacher: end-to-end for embedding models, and for classifiers."""
from __future__ import annotations

import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import loaders
from ..vq.layers import codebook_params, lut_layers, reconstruction_loss, set_mode
from ..zoo.vit import random_shift
from .embeddings import last_hidden, mean_pool, run_model, token_rows
from .steps import accuracy, distance_scale, restart_dead_centroids


# -------------------------------------------------------------------------------------- distillation
def distill_embeddings(student: nn.Module, teacher: nn.Module, batches: list, steps: int, lr: float = 5e-5,
                       codebook_lr_scale: float = 10.0, train_weights: bool = True, mode: str = "lut",
                       backward: str = "exact", hidden_weight: float = 1.0, recon_weight: float = 0.0,
                       seed: int = 0, progress: bool = False) -> list[dict]:
    """End-to-end fine-tuning of a LUT encoder against the fp32 teacher, in place; returns the history.

    Loss per batch: (1 - cosine) between student and teacher sentence embeddings + ``hidden_weight`` x
    the MSE of the last token states (real tokens only, relative to the teacher's mean square) +
    ``recon_weight`` x the per-layer reconstruction losses. Weights (``train_weights``) and centroids learn
    with AdamW and a cosine schedule; ``mode="quant"`` trains with INT8 tables (straight-through);
    ``backward="soft"`` uses the soft-assignment gradient. Teacher states are computed once per batch.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    if not train_weights and backward == "exact" and recon_weight == 0:
        raise ValueError("with train_weights=False, backward='exact' (straight-through) and recon_weight=0 nothing "
                         "reaches the centroids: use backward='soft' or recon_weight > 0")
    torch.manual_seed(seed)
    cbs, others = codebook_params(student)
    for p in others:
        p.requires_grad_(train_weights)
    for p in cbs:
        p.requires_grad_(True)
    groups = [{"params": cbs, "lr": lr * codebook_lr_scale}]
    if train_weights:
        groups.append({"params": [p for p in others if p.requires_grad], "lr": lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
    teacher.eval()
    cache = {}
    set_mode(student, mode, backward=backward, track_recon=recon_weight > 0)
    student.eval()  # no dropout: the teacher is deterministic too
    g = torch.Generator().manual_seed(seed)
    history = []
    order: list[int] = []
    bar = tqdm(range(steps), desc="distill", leave=False,
               disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0"))
    try:
        for step in bar:
            if not order:
                order = torch.randperm(len(batches), generator=g).tolist()
            i = order.pop()
            b = batches[i]
            if i not in cache:
                with torch.no_grad():
                    th = last_hidden(run_model(teacher, b)).detach()
                    cache[i] = (th, F.normalize(mean_pool(th, b.get("attention_mask")), dim=-1))
            th, te = cache[i]
            tic = time.perf_counter()
            sh = last_hidden(run_model(student, b))
            mask = b.get("attention_mask")
            se = F.normalize(mean_pool(sh, mask), dim=-1)
            cos_loss = (1 - (se * te).sum(-1)).mean()
            loss = cos_loss
            if hidden_weight > 0:
                ms, mt = token_rows(sh, mask, detach=False), token_rows(th, mask)
                loss = loss + hidden_weight * F.mse_loss(ms, mt) / mt.pow(2).mean().clamp_min(1e-12)
            if recon_weight > 0:

                loss = loss + recon_weight * reconstruction_loss(student)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            rec = {"step": step + 1, "loss": loss.item(), "cos_loss": cos_loss.item(),
                   "seconds": time.perf_counter() - tic}
            history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", cos=f"{1 - rec['cos_loss']:.4f}")
    finally:
        for p in student.parameters():
            p.requires_grad_(True)
        set_mode(student, mode, backward="exact", track_recon=False)
        student.eval()
    return history


@torch.no_grad()
def _count_indices(layers: dict, counts: dict) -> None:
    for n, m in layers.items():
        idx = m.last_indices
        if idx is not None:
            off = torch.arange(m.S, device=idx.device) * m.c
            counts[n] += torch.bincount((idx + off).flatten(), minlength=m.S * m.c).reshape(m.S, m.c).cpu()


def distill_classifier(student: nn.Module, teacher: nn.Module, train, val=None, *, epochs: int = 40,
                       lr: float = 2e-3, batch_size: int = 64, codebook_lr_scale: float = 4.0,
                       blocks: str | None = "blocks", feature_weight: float = 1.0, kd_weight: float = 1.0,
                       kd_temperature: float = 2.0, task_weight: float = 1.0, recon_weight: float = 1.0,
                       quant_epochs: int = 1, quant_lr: float = 1e-4, max_shift: int = 0,
                       dead_restart: bool = True, weight_decay: float = 0.0, select_best: bool = True,
                       ema: float = 0.0, backward: str = "exact", temperature: tuple = (1.0, 0.1),
                       anchor_weight: float = 0.0, layer_feature_weight: float = 0.0,
                       seed: int = 0, progress: bool = False) -> list[dict]:
    """End-to-end fine-tuning of a LUT classifier against its fp32 teacher, in place; returns the history.

    Loss per batch: ``task_weight`` CE + ``kd_weight`` KL(teacher || student) of the logits at
    ``kd_temperature`` + ``feature_weight`` x the mean over the blocks under ``blocks`` (a ModuleList in both
    models, e.g. ``"blocks"`` for `lutnb.vit`) of the MSE between student and teacher block outputs
    (relative to the teacher's mean square: per-block feature distillation) + ``recon_weight`` x the
    per-layer reconstruction losses. ``epochs`` with float tables ("lut" mode, straight-through), AdamW
    and a cosine schedule (centroids at ``lr * codebook_lr_scale``), then ``quant_epochs`` with INT8 tables
    ("quant" mode) at ``quant_lr``. ``max_shift``: random +-pixel shifts of the images (teacher and student
    see the same image). ``dead_restart``: re-seed never-chosen centroids after each epoch.
    ``select_best``: keep the state of the epoch with the best VALIDATION accuracy with INT8 tables
    (``val`` needed; ties go to the later epoch). ``ema`` > 0: the model evaluated (and kept) after each
    epoch is an exponential moving average of the weights and centroids with this decay per step. The
    model ends in "quant" mode, eval. ``backward``: the LUT layers' gradient, "exact" (straight-through to
    the float layer) or "soft" (soft assignment, temperature annealed from ``temperature[0]`` to
    ``temperature[1]`` in units of each layer's mean nearest-centroid distance; the weights then see the
    quantized inputs in their gradient) or "hard" (straight-through on each LUT layer's input; its weights'
    gradient is taken on the centroids it looked up; the digits ViT at v=4, 3 seeds: mean drop L1 0.59 pt
    against 1.33 with "exact", L2 0.07 against -0.44, Chebyshev 0.44 for both). ``anchor_weight``: + this x
    the mean square distance of the weights (not centroids) to their values at the start, relative to their
    mean square (L2-SP).
    ``layer_feature_weight``: + this x the mean over the LUT layers of the relative MSE between each LUT
    layer's output and the teacher's same-named layer's output (per-layer feature distillation).
    """
    import copy

    from tqdm.auto import tqdm


    if epochs < 0 or quant_epochs < 0 or epochs + quant_epochs < 1:
        raise ValueError(f"epochs={epochs}, quant_epochs={quant_epochs}: need >= 0 each and >= 1 in all")
    if select_best and val is None:
        raise ValueError("select_best=True needs a val= data set")
    if backward not in ("exact", "soft", "hard"):
        raise ValueError(f"backward={backward!r}: use 'exact', 'soft' or 'hard'")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema={ema} must be in [0, 1)")
    torch.manual_seed(seed)
    layers = dict(lut_layers(student))
    cbs, others = codebook_params(student)
    for p in student.parameters():
        p.requires_grad_(True)
    t_grad = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in t_grad:
        p.requires_grad_(False)
    teacher.eval()
    params = dict(student.named_parameters())
    anchors = [(p, p.detach().clone(), float(p.detach().pow(2).mean().clamp_min(1e-12)))
               for p in others if p.dim() >= 2] if anchor_weight > 0 else []
    shadow = {k: p.detach().clone() for k, p in params.items()} if ema > 0 else None
    g = torch.Generator().manual_seed(seed + 1)
    history = []
    best = (-1.0, None, None)
    loader = loaders(train, batch_size, shuffle=True, seed=seed)
    phases = [(epochs, "lut", lr), (quant_epochs, "quant", quant_lr)]
    epoch = 0
    scales = distance_scale(student, train) if backward == "soft" else {}
    total_steps, step = max(1, (epochs + quant_epochs) * len(loader)), 0
    bar = tqdm(total=epochs + quant_epochs, desc="distill", leave=False,
               disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0"))
    feats: dict = {"s": [], "t": []}
    lfeats: dict = {"s": [], "t": []}
    hooks = []
    try:
        if blocks and feature_weight > 0:
            for key, mdl in (("s", student), ("t", teacher)):
                for blk in mdl.get_submodule(blocks):
                    hooks.append(blk.register_forward_hook(lambda _m, _i, out, key=key: feats[key].append(out)))
        if layer_feature_weight > 0:
            for key, mdl in (("s", student), ("t", teacher)):
                for n in layers:
                    hooks.append(mdl.get_submodule(n).register_forward_hook(
                        lambda _m, _i, out, key=key: lfeats[key].append(out)))
        for n_ep, mode, base_lr in phases:
            if n_ep == 0:
                continue
            opt = torch.optim.AdamW([{"params": cbs, "lr": base_lr * codebook_lr_scale, "weight_decay": 0.0},
                                     {"params": others, "lr": base_lr, "weight_decay": weight_decay}])
            steps = max(1, n_ep * len(loader))
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k, steps=steps: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
            set_mode(student, mode, backward=backward, track_recon=recon_weight > 0)
            for _ in range(n_ep):
                epoch += 1
                tic = time.perf_counter()
                student.train()
                counts = {n: torch.zeros(m.S, m.c, dtype=torch.long) for n, m in layers.items()}
                for m in layers.values():
                    m.keep_indices = dead_restart
                sums = {"loss": 0.0, "task": 0.0, "kd": 0.0, "feat": 0.0}
                seen = 0
                for x, y in loader:
                    if max_shift:
                        x = random_shift(x, max_shift, g)
                    if scales:
                        tau = temperature[0] * (temperature[1] / temperature[0]) ** (step / total_steps)
                        for n, m in layers.items():
                            m.temperature = tau * scales[n]
                    step += 1
                    for d in (feats, lfeats):
                        d["s"].clear()
                        d["t"].clear()
                    with torch.no_grad():
                        t_logits = teacher(x)
                    logits = student(x)
                    task = F.cross_entropy(logits, y)
                    loss = task_weight * task
                    T = kd_temperature
                    kd = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t_logits / T, 1),
                                  reduction="batchmean", log_target=True) * T * T
                    if kd_weight > 0:
                        loss = loss + kd_weight * kd
                    feat = torch.zeros(())
                    if feats["s"]:
                        feat = sum(F.mse_loss(a, b) / b.pow(2).mean().clamp_min(1e-12)
                                   for a, b in zip(feats["s"], feats["t"])) / len(feats["s"])
                        loss = loss + feature_weight * feat
                    if recon_weight > 0:
                        loss = loss + recon_weight * reconstruction_loss(student)
                    if lfeats["s"]:
                        lf = sum(F.mse_loss(a, b) / b.pow(2).mean().clamp_min(1e-12)
                                 for a, b in zip(lfeats["s"], lfeats["t"])) / len(lfeats["s"])
                        loss = loss + layer_feature_weight * lf
                    if anchors:
                        loss = loss + anchor_weight * sum((p - p0).pow(2).mean() / ms for p, p0, ms in anchors) \
                            / len(anchors)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if shadow is not None:
                        with torch.no_grad():
                            for k, p in params.items():
                                shadow[k].lerp_(p.detach(), 1.0 - ema)
                    if dead_restart:
                        _count_indices(layers, counts)
                    bs = y.shape[0]
                    seen += bs
                    for k, val_ in (("loss", loss), ("task", task), ("kd", kd), ("feat", feat)):
                        sums[k] += float(val_.detach()) * bs
                restarted = 0
                for n, m in layers.items():
                    if dead_restart:
                        restarted += restart_dead_centroids(m, counts[n], g)
                        if shadow is not None:  # restarted centroids enter the average as they are
                            cb = shadow[f"{n}.codebooks"]
                            dead = (counts[n] == 0).unsqueeze(-1)
                            cb.copy_(torch.where(dead, m.codebooks.detach(), cb))
                    m.keep_indices = False
                    m.last_indices = None
                raw = None
                if shadow is not None:  # evaluate the averaged weights (training goes on from the raw ones)
                    with torch.no_grad():
                        raw = {k: p.detach().clone() for k, p in params.items()}
                        for k, p in params.items():
                            p.copy_(shadow[k])
                rec = {k: v_ / max(1, seen) for k, v_ in sums.items()}
                rec.update(epoch=epoch, mode=mode, restarted=restarted,
                           val_acc=accuracy(student, val, "quant") if val is not None else None,
                           seconds=time.perf_counter() - tic)
                history.append(rec)
                if select_best and rec["val_acc"] >= best[0]:
                    best = (rec["val_acc"], epoch, copy.deepcopy(student.state_dict()))
                if raw is not None:
                    final = copy.deepcopy(student.state_dict())
                    with torch.no_grad():
                        for k, p in params.items():
                            p.copy_(raw[k])
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", val=rec["val_acc"])
        if best[2] is not None and (best[1] != epoch or shadow is not None):
            student.load_state_dict(best[2])
        elif shadow is not None:
            student.load_state_dict(final)
        for rec in history:
            rec["selected"] = rec["epoch"] == best[1] if best[2] is not None else None
    finally:
        bar.close()
        for h in hooks:
            h.remove()
        for p, flag in t_grad:
            p.requires_grad_(flag)
        for m in layers.values():
            m.keep_indices = False
            m.last_indices = None
        set_mode(student, "quant", backward="exact", track_recon=False)
        student.eval()
    return history
