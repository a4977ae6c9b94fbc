"""Calibration: collect each LUT layer's inputs and initialise its codebooks by k-means.

k-means runs in torch, batched over all S sub-spaces of a layer at once (so it is fast on a CPU and runs
on a GPU unchanged): k-means++ seeding with a fixed seed, then Lloyd iterations with the layer's metric
for assignment; the update is the mean (l2, chebyshev) or, for l1, the mean first and the coordinate-wise
median (the minimiser of the L1 objective) in the last `median_iters` iterations. Empty clusters are
re-seeded at the points farthest from their centroids.
"""
from __future__ import annotations

import time
from typing import Iterable

import torch
import torch.nn as nn

from ..kernels.common import check_metric
from .distances import encode, pairwise_distance
from .layers import LUTLayer, check_int, lut_layers


def _batched_distance(x: torch.Tensor, cent: torch.Tensor, metric: str) -> torch.Tensor:
    # x (S, n, v), cent (S, k, v) -> (S, n, k)
    return pairwise_distance(x.transpose(0, 1), cent, metric).transpose(0, 1)


def kmeans(x: torch.Tensor, k: int, metric: str = "l2", iters: int = 25, seed: int = 0,
           tol: float = 1e-6, seed_rows: int = 2048, median_iters: int = 5) -> torch.Tensor:
    """Batched k-means: x (S, n, v) -> centroids (S, k, v). Deterministic for a given seed."""
    metric = check_metric(metric)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() not in (2, 3):
        raise TypeError("kmeans: x must be a floating-point tensor (S, n, v) or (n, v); got "
                        + (f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__))
    k = check_int(k, "k", 1, " (the number of centroids)")
    iters = check_int(iters, "iters", 0, " (Lloyd iterations; 0 keeps the k-means++ seeding)")
    if x.dim() == 2:
        return kmeans(x.unsqueeze(0), k, metric, iters, seed, tol, seed_rows, median_iters)[0]
    S, n, v = x.shape
    if n == 0:
        raise ValueError("kmeans got no samples: run calibration on at least one batch")
    g = torch.Generator(device="cpu").manual_seed(seed)
    ar = torch.arange(S, device=x.device)
    full = x
    if n > seed_rows:  # k-means++ seeding on a random subsample (Lloyd iterations use every row)
        x = x[:, torch.randperm(n, generator=g)[:seed_rows].to(x.device)]
        n = seed_rows
    # k-means++ seeding, all sub-spaces in parallel
    cent = torch.empty(S, k, v, dtype=x.dtype, device=x.device)
    first = torch.randint(n, (S,), generator=g).to(x.device)
    cent[:, 0] = x[ar, first]
    dmin = _batched_distance(x, cent[:, :1], metric)[..., 0]
    for j in range(1, k):
        w = dmin.clamp_min(0)
        if metric != "l2":  # D^2 weighting (l2 distances are already squared)
            w = w * w
        cdf = w.cumsum(1)  # inverse-CDF sampling (cheaper than multinomial on S rows at once)
        tot = cdf[:, -1:]
        u = torch.rand(S, 1, generator=g, dtype=torch.float64).to(x.device, cdf.dtype) * tot
        pick = torch.searchsorted(cdf, u).clamp_max(n - 1)[:, 0]
        pick = torch.where(tot[:, 0] > 0, pick, torch.randint(n, (S,), generator=g).to(x.device))
        cent[:, j] = x[ar, pick]
        dmin = torch.minimum(dmin, _batched_distance(x, cent[:, j:j + 1], metric)[..., 0])
    x = full
    n = x.shape[1]
    prev = None
    for it in range(iters):
        assign = encode(x.transpose(0, 1), cent, metric).transpose(0, 1)  # (S, n)
        counts = torch.zeros(S, k, dtype=x.dtype, device=x.device)
        counts.scatter_add_(1, assign, torch.ones_like(x[..., 0]))
        if metric == "l1" and it >= iters - median_iters:  # medians (two sorts) only for the last steps
            new = cluster_median(x, assign, k, cent)
        else:
            sums = torch.zeros(S, k, v, dtype=x.dtype, device=x.device)
            sums.scatter_add_(1, assign.unsqueeze(-1).expand(-1, -1, v), x)
            new = sums / counts.clamp_min(1).unsqueeze(-1)
        empty = counts == 0
        if empty.any():
            d = _batched_distance(x, new, metric).gather(2, assign.unsqueeze(-1))[..., 0]  # (S, n)
            far = d.argsort(dim=1, descending=True)
            for s in torch.nonzero(empty.any(1)).flatten().tolist():
                js = torch.nonzero(empty[s]).flatten()
                new[s, js] = x[s, far[s, torch.arange(len(js), device=x.device) % n]]
        else:
            new = torch.where(counts.unsqueeze(-1) > 0, new, cent)
        shift = (new - cent).abs().max().item()
        cent = new
        if prev is not None and shift <= tol and (metric != "l1" or it >= iters - median_iters):
            break
        prev = shift
    return cent


def cluster_median(x: torch.Tensor, assign: torch.Tensor, k: int, cent: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise (lower) median of each cluster, all sub-spaces at once, by two sorts."""
    S, n, v = x.shape
    xt = x.permute(0, 2, 1).reshape(S * v, n)  # sort along the contiguous last dim
    vals, order = xt.sort(dim=1)
    owner = assign.unsqueeze(1).expand(S, v, n).reshape(S * v, n).gather(1, order)
    owner, order2 = owner.sort(dim=1, stable=True)  # grouped by cluster, values still ascending inside
    vals = vals.gather(1, order2)
    counts = torch.zeros(S, k, dtype=torch.long, device=x.device)
    counts.scatter_add_(1, assign, torch.ones_like(assign))
    starts = counts.cumsum(1) - counts
    pos = (starts + (counts - 1).clamp_min(0) // 2).clamp_max(n - 1)  # (S, k)
    pos = pos.unsqueeze(1).expand(S, v, k).reshape(S * v, k)
    med = vals.gather(1, pos).reshape(S, v, k).permute(0, 2, 1)  # (S, k, v)
    return torch.where((counts > 0).unsqueeze(-1), med, cent)


class _Collector:
    def __init__(self, name: str, layer: LUTLayer, max_rows: int, seed: int):
        self.name, self.layer, self.max_rows = name, layer, max_rows
        self.rows: list[torch.Tensor] = []
        self.n = 0
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, module, inputs, output):
        with torch.no_grad():
            r = module.rows_of(inputs[0].detach())
            finite = torch.isfinite(r).all(1)
            if not bool(finite.all()):
                raise ValueError(f"calibrate: layer {self.name!r} received {int((~finite).sum())} input rows with "
                                 "NaN or inf values; k-means needs finite inputs: clean the batches (or the "
                                 "model producing this layer's input), or leave the layer out with layers=[...]")
            budget = self.max_rows * 4  # keep a pool, subsample at the end
            if self.n >= budget:
                return
            if r.shape[0] > budget - self.n:
                sel = torch.randperm(r.shape[0], generator=self.g)[: budget - self.n]
                r = r[sel.to(r.device)]
            self.rows.append(r.float())
            self.n += r.shape[0]

    def sample(self) -> torch.Tensor:
        x = torch.cat(self.rows)
        if x.shape[0] > self.max_rows:
            sel = torch.randperm(x.shape[0], generator=self.g)[: self.max_rows]
            x = x[sel.to(x.device)]
        return x


def _batches(batches: Iterable, max_batches: int | None):
    if isinstance(batches, (torch.Tensor, dict)):  # one batch given bare: documented, taken as [batches]
        batches = [batches]
    elif isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise TypeError(f"calibrate: batches must be an iterable of inputs (tensors, (x, y) pairs or dicts of model "
                        f"kwargs), or one tensor/dict; got {type(batches).__name__}")
    for i, b in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        if isinstance(b, (list, tuple)):
            if not b:
                raise ValueError(f"calibrate: batch {i} is an empty {type(b).__name__}; give (x, y) pairs or x")
            b = b[0]
        elif isinstance(b, dict):
            yield b
            continue
        yield b


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable, *, max_rows: int = 8192, iters: int = 25, seed: int = 0,
              max_batches: int | None = None, layers: Iterable[str] | None = None, sequential: bool = False,
              progress: bool = False) -> dict:
    """Initialise every LUT layer's codebooks by k-means on its inputs; returns per-layer stats.

    batches: an iterable of inputs (tensors, (x, y) tuples, or dicts of model kwargs, e.g. a tokenizer's
    output). A single tensor or dict given bare is taken as one batch (``calibrate(m, x)`` is
    ``calibrate(m, [x])``). Inputs are collected in "exact" mode (``sequential=False``) or layer by layer,
    feeding each layer the output of the already-quantized layers before it (``sequential=True``).

    layers: names of the LUT layers to calibrate (default all; one name may be given as a string).
    max_rows >= 1 rows per layer are sampled; iters >= 0 Lloyd iterations (0: k-means++ seeding only).
    Rows with NaN or inf are refused (ValueError naming the layer); so is a layer no batch reaches.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"calibrate: model must be a torch.nn.Module (a converted model); got {type(model).__name__}")
    max_rows = check_int(max_rows, "max_rows", 1, " (rows sampled per layer for k-means; default 8192)")
    iters = check_int(iters, "iters", 0, " (Lloyd iterations of k-means; default 25)")
    seed = check_int(seed, "seed", 0)
    if max_batches is not None:
        max_batches = check_int(max_batches, "max_batches", 1, " (or None for every batch)")
    every = [n for n, _ in lut_layers(model)]
    if not every:
        floats = sorted({type(m).__name__ for m in model.modules() if type(m).__name__ in ("Linear", "Conv2d",
                                                                                           "Conv1D")})
        raise ValueError("calibrate found no LUT layers: convert the model first (lutnb.convert)"
                         + (f"; the model holds float {', '.join(floats)} layers" if floats else ""))
    if layers is not None:
        if isinstance(layers, str):
            layers = [layers]
        layers = list(layers)
        unknown = [n for n in layers if n not in every]
        if unknown:
            raise ValueError(f"calibrate: layers={unknown!r} names no LUT layer of the model; valid names: {every}")
    targets = [(n, m) for n, m in lut_layers(model) if layers is None or n in set(layers)]
    if not targets:
        raise ValueError("calibrate: layers=[] selects no LUT layer; give names from "
                         f"{every} or layers=None for all")
    batches = list(_batches(batches, max_batches))
    if not batches:
        raise ValueError("calibrate got no batches: pass an iterable of input tensors or (x, y) pairs")
    was_training = model.training
    model.eval()
    modes = {n: m.mode for n, m in lut_layers(model)}
    stats = {}
    t0 = time.perf_counter()
    groups = [[t] for t in targets] if sequential else [targets]
    it = groups
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(groups, desc="calibrate", leave=False)
    try:
        for group in it:
            if not sequential:
                for _, m in lut_layers(model):
                    m.mode = "exact"
            else:
                for n, m in lut_layers(model):  # earlier layers already calibrated run as LUTs
                    m.mode = modes[n] if bool(m.calibrated) else "exact"
            cols = {n: _Collector(n, m, max_rows, seed) for n, m in group}
            hooks = [m.register_forward_hook(cols[n]) for n, m in group]
            try:
                for b in batches:
                    model(**b) if isinstance(b, dict) else model(b)
            finally:
                for h in hooks:
                    h.remove()
            for i, (n, m) in enumerate(group):
                if not cols[n].rows:
                    raise ValueError(f"calibrate: layer {n!r} received no input from the {len(batches)} batches "
                                     "(it is not on the forward path of these inputs); leave it out with "
                                     "layers=[...] or pass batches that reach it")
                x = m.split(cols[n].sample()).transpose(0, 1).contiguous()  # (S, n, v)
                cb = kmeans(x.to(m.codebooks.device), m.c, m.metric, iters=iters, seed=seed + i)
                m.codebooks.data.copy_(cb.to(m.codebooks.dtype))
                m.calibrated.fill_(True)
                idx = encode(x.transpose(0, 1), cb, m.metric)
                used = torch.stack([torch.bincount(idx[:, s], minlength=m.c) for s in range(m.S)]).float()
                p = used / used.sum(1, keepdim=True)
                ent = -(p * torch.log2(p.clamp_min(1e-12))).sum(1)
                recon = (x - cb.gather(1, idx.transpose(0, 1).unsqueeze(-1).expand(-1, -1, m.v)))
                stats[n] = {"rows": int(x.shape[1]), "S": m.S, "dead_centroids": int((used == 0).sum()),
                            "entropy_bits": float(ent.mean()),
                            "quantization_mse": float(recon.pow(2).mean())}
    finally:
        for n, m in lut_layers(model):
            m.mode = modes[n]
        model.train(was_training)
    stats["_seconds"] = time.perf_counter() - t0
    return stats
