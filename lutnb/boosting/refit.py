"""Block-wise refit of a LUT model against its fp32 teacher: k-means on the inputs the quantized model
really produces, then a ridge least-squares refit of each layer's weights against the teacher's outputs."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import row_mask, run_model, token_rows
from ..vq.calibration import kmeans
from ..vq.distances import encode
from ..vq.layers import LUTLayer, lut_layers, set_mode


class _Stop(Exception):
    pass


def _block_inputs(model: nn.Module, block: nn.Module, batches: list) -> list:
    """(args, kwargs) that ``block`` receives for every batch (the model is stopped right there)."""
    got = []

    def pre(_m, args, kwargs):
        got.append((tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs)))
        raise _Stop

    h = block.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        for b in batches:
            try:
                run_model(model, b)
            except _Stop:
                pass
    finally:
        h.remove()
    if len(got) != len(batches):
        raise RuntimeError(f"{type(block).__name__} was not called on every batch (block_refit: check `blocks=`)")
    return got


def _run_block(block: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    out = block(hidden, *args[1:], **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _collect(block, names, hidden_list, inputs, masks, what: str) -> dict:
    """Rows of the inputs (``what="in"``) or outputs (``"out"``) of the named Linears over all batches."""
    mods = dict(block.named_modules())
    store = {n: [] for n in names}
    cur = {}

    def hook(name):
        def fn(_m, inp, out):
            store[name].append(token_rows(inp[0] if what == "in" else out, cur["mask"]))
        return fn

    hs = [mods[n].register_forward_hook(hook(n)) for n in names]
    outs = []
    try:
        for hidden, (args, kwargs), mask in zip(hidden_list, inputs, masks):
            cur["mask"] = mask
            outs.append(_run_block(block, hidden, args, kwargs).detach())
    finally:
        for h in hs:
            h.remove()
    return {n: torch.cat(v) for n, v in store.items()}, outs


def _call_groups(block: nn.Module, hidden, args, kwargs) -> list[list[str]]:
    """LUT layers of a block in call order, grouped when they read the same input tensor (q, k, v)."""
    order, seen = [], {}

    def hook(name):
        def fn(_m, inp):
            order.append((name, id(inp[0])))
            seen[id(inp[0])] = inp[0]  # keep the tensor alive so ids stay unique
        return fn

    hs = [m.register_forward_pre_hook(hook(n)) for n, m in block.named_modules() if isinstance(m, LUTLayer)]
    try:
        with torch.no_grad():
            _run_block(block, hidden, args, kwargs)
    finally:
        for h in hs:
            h.remove()
    groups, last = [], None
    for name, key in order:
        if groups and key == last and name not in groups[-1]:
            groups[-1].append(name)
        elif not any(name in g for g in groups):
            groups.append([name])
        last = key
    return groups


def _normal_equations(layer: LUTLayer, rows: torch.Tensor, target: torch.Tensor, chunk: int) -> tuple:
    """(G, R, ||y||^2, k-means-only squared error) of the ridge problem on ``rows``: A = [quantized rows, 1]."""
    K, N = layer.K, layer.N
    f64 = {"dtype": torch.float64, "device": rows.device}  # solved where the layer lives (float64: CPU and CUDA)
    G = torch.zeros(K + 1, K + 1, **f64)
    R = torch.zeros(K + 1, N, **f64)
    W0 = layer.weight_matrix().detach().double()
    b0 = layer.bias.detach().double() if layer.bias is not None else torch.zeros(N, **f64)
    err0 = ref = 0.0
    for i in range(0, rows.shape[0], chunk):
        r = rows[i:i + chunk].float()
        sub = layer.split(r)
        hard = layer.hard_sub(sub, encode(sub, layer.codebooks.detach(), layer.metric))
        A = torch.cat([hard.reshape(r.shape[0], -1)[:, :K].double(), torch.ones(r.shape[0], 1, **f64)], 1)
        y = target[i:i + chunk].double()
        G += A.T @ A
        R += A.T @ y
        err0 += float((A[:, :K] @ W0.T + b0 - y).pow(2).sum())
        ref += float(y.pow(2).sum())
    return G, R, ref, err0


def _ridge_solve(layer: LUTLayer, G: torch.Tensor, R: torch.Tensor, ridge: float) -> torch.Tensor:
    """argmin ||A s - y||^2 + lam ||s - s0||^2 with lam = ``ridge`` x mean diag(X^T X), s0 = [W0^T; b0]."""
    K, N = layer.K, layer.N
    W0 = layer.weight_matrix().detach().double()
    b0 = layer.bias.detach().double() if layer.bias is not None else torch.zeros(N, dtype=torch.float64,
                                                                                 device=G.device)
    lam = ridge * float(G.diagonal()[:K].mean().clamp_min(1e-12))
    prior = torch.cat([W0.T, b0[None]], 0)  # (K+1, N): ridge pulls toward the original weights
    reg = torch.full((K + 1,), lam, dtype=torch.float64, device=G.device)
    if layer.bias is None:
        reg[K] = 1e12 * max(lam, 1.0)  # no bias: pin it to zero
    return torch.linalg.solve(G + torch.diag(reg), R + reg[:, None] * prior)


def _sq_error(sol: torch.Tensor, G: torch.Tensor, R: torch.Tensor, ref: float) -> float:
    """||A s - y||^2 from the normal equations: s'Gs - 2 s'R + ||y||^2."""
    return max(float((sol * (G @ sol)).sum() - 2 * (sol * R).sum()) + ref, 0.0)


@torch.no_grad()
def _refit_layer(layer: LUTLayer, rows: torch.Tensor, target: torch.Tensor, ridge, max_rows: int,
                 iters: int, seed: int, refit_weights: bool, chunk: int = 8192) -> dict:
    """k-means on ``rows``, then ridge least squares of [W, b] on the quantized rows against ``target``.

    ``ridge``: a number, or a sequence of candidates: then every 8th row (seeded) is held out, the candidate
    with the smallest error on those rows wins, and the final solve uses all rows with it."""
    g = torch.Generator().manual_seed(seed)
    sample = rows if rows.shape[0] <= max_rows else rows[torch.randperm(rows.shape[0], generator=g)[:max_rows]]
    x = layer.split(sample.float()).transpose(0, 1).contiguous()
    cb = kmeans(x, layer.c, layer.metric, iters=iters, seed=seed)
    layer.codebooks.data.copy_(cb.to(layer.codebooks.dtype))
    layer.calibrated.fill_(True)
    return ridge_refit(layer, rows, target, ridge, refit=refit_weights, chunk=chunk, generator=g)


@torch.no_grad()
def ridge_refit(layer: LUTLayer, rows: torch.Tensor, target: torch.Tensor, ridge, seed: int = 0,
                refit: bool = True, chunk: int = 8192, generator: torch.Generator | None = None) -> dict:
    """With the layer's codebooks fixed: ridge least squares of [W, b] on the quantized ``rows`` (M, K)
    against ``target`` (M, N); the weights are written back in the layer's own shape (a conv's too).

    ``ridge``: a number, or candidates: then every 8th row (seeded) is held out, the candidate with the
    smallest error on those rows wins, and the final solve uses all rows with it. ``refit=False`` only
    measures. Returns the relative output error before (``recon_rel_kmeans``) and after (``recon_rel``)."""
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    candidates = [float(ridge)] if isinstance(ridge, (int, float)) else [float(r) for r in ridge]
    val = None
    if len(candidates) > 1 and rows.shape[0] >= 16:
        held = torch.zeros(rows.shape[0], dtype=torch.bool)
        held[torch.randperm(rows.shape[0], generator=g)[: rows.shape[0] // 8]] = True
        held = held.to(rows.device)
        G, R, ref, err0 = _normal_equations(layer, rows[~held], target[~held], chunk)
        Gv, Rv, refv, err0v = _normal_equations(layer, rows[held], target[held], chunk)
        val = [_sq_error(_ridge_solve(layer, G, R, lam), Gv, Rv, refv) / max(refv, 1e-30) for lam in candidates]
        best = candidates[min(range(len(val)), key=val.__getitem__)]
        G, R, ref, err0 = G + Gv, R + Rv, ref + refv, err0 + err0v
    else:
        best = candidates[0]
        G, R, ref, err0 = _normal_equations(layer, rows, target, chunk)
    out = {"rows": int(rows.shape[0]), "recon_rel_kmeans": err0 / max(ref, 1e-30), "ridge": best}
    if val is not None:
        out["ridge_val_rel"] = {f"{lam:g}": e for lam, e in zip(candidates, val)}
    if not refit:
        out["recon_rel"] = out["recon_rel_kmeans"]
        return out
    sol = _ridge_solve(layer, G, R, best)
    layer.set_weight_matrix(sol[:layer.K].T)
    if layer.bias is not None:
        layer.bias.data.copy_(sol[layer.K].to(layer.bias.dtype))
    out["recon_rel"] = _sq_error(sol, G, R, ref) / max(ref, 1e-30)
    return out


@dataclass(frozen=True)
class _RefitSpec:
    """The per-layer settings of one `block_refit` call (documented there)."""

    blocks: str
    ridge: float | tuple
    max_rows: int
    iters: int
    seed: int
    refit_weights: bool
    target: str
    mode: str
    residual: dict | None  # made a dict (None -> {}) by __post_init__

    def __post_init__(self):
        if self.target not in ("teacher", "self"):
            raise ValueError(f"target={self.target!r}: use 'teacher' or 'self'")
        ridges = [self.ridge] if isinstance(self.ridge, (int, float)) else list(self.ridge)
        if not ridges or any(not isinstance(r, (int, float)) or r < 0 for r in ridges):
            raise ValueError(f"ridge={self.ridge!r}: use a number >= 0 or a non-empty list of them (candidates "
                             "chosen per layer on held-out rows)")
        object.__setattr__(self, "ridge", ridges[0] if len(ridges) == 1 else tuple(ridges))
        object.__setattr__(self, "residual", dict(self.residual or {}))
        if self.residual and self.target != "teacher":
            raise ValueError("residual= needs target='teacher'")


def _blocks_of(student: nn.Module, teacher: nn.Module, blocks: str) -> tuple[nn.Module, nn.Module]:
    """The student's and the teacher's ModuleLists of blocks, checked (same length, LUT layers outside
    them calibrated)."""
    s_blocks, t_blocks = student.get_submodule(blocks), teacher.get_submodule(blocks)
    if len(s_blocks) != len(t_blocks):
        raise ValueError(f"student and teacher have {len(s_blocks)} and {len(t_blocks)} blocks under {blocks!r}")
    inside = {f"{blocks}.{n}" for n, _ in s_blocks.named_modules()}
    outside = [n for n, m in lut_layers(student) if n not in inside and not bool(m.calibrated)]
    if outside:
        raise ValueError(f"LUT layers outside {blocks!r} are not calibrated: {outside[:4]}; skip them in "
                         "convert() or calibrate them first")
    return s_blocks, t_blocks


def _block_residuals(li: int, names: list, mods: dict, residual: dict) -> dict:
    """The ``residual`` entries of block ``li`` ({layer: module receiving the sum}), checked against it."""
    res = {n: m for n, m in residual.items() if n in names}
    if len(res) < len(residual):
        raise ValueError(f"residual: block {li} has no LUT layer {sorted(set(residual) - set(res))}; "
                         f"its LUT layers are {names}")
    for n, m in res.items():
        if not isinstance(mods.get(m), nn.Module):
            raise ValueError(f"residual: block {li} has no module {m!r} (for layer {n!r})")
    return res


def _refit_block(sb: nn.Module, tb: nn.Module, li: int, h_s: list, h_t: list, inputs: list, masks: list,
                 spec: _RefitSpec, stats: dict) -> tuple[list, list]:
    """Refit the LUT layers of block ``li`` group by group into ``stats``; the next blocks' inputs (student,
    teacher)."""
    set_mode(sb, "exact")
    groups = _call_groups(sb, h_s[0], *inputs[0])
    names = [n for g in groups for n in g]
    mods = dict(sb.named_modules())
    res = _block_residuals(li, names, mods, spec.residual)
    t_out = t_sum = h_t_next = None
    if spec.target == "teacher":
        t_out, h_t_next = _collect(tb, names, h_t, inputs, masks, "out")
        if res:  # the teacher's sum (layer output + residual) where each such layer joins the stream
            t_sum, _ = _collect(tb, list(res.values()), h_t, inputs, masks, "in")
    lut = dict((n, m) for n, m in mods.items() if isinstance(m, LUTLayer))
    for gi, group in enumerate(groups):
        for n, m in lut.items():
            done = any(n in g for g in groups[:gi])
            m.mode = spec.mode if done else "exact"
        # inputs of the group, and of the modules that receive the student's sums (same pass)
        rows, _ = _collect(sb, group + [res[n] for n in group if n in res], h_s, inputs, masks, "in")
        if spec.target == "self":
            outs, _ = _collect(sb, group, h_s, inputs, masks, "out")
        for j, n in enumerate(group):
            tgt = t_out[n] if spec.target == "teacher" else outs[n]
            if n in res:  # student's residual = its sum there minus this (exact-mode) layer's output
                tgt = t_sum[res[n]] - (rows[res[n]] - F.linear(rows[n], lut[n].weight, lut[n].bias))
            stats[f"{spec.blocks}.{li}.{n}"] = _refit_layer(lut[n], rows[n], tgt, spec.ridge, spec.max_rows,
                                                            spec.iters, spec.seed + 97 * li + j, spec.refit_weights)
        del rows
    for m in lut.values():
        m.mode = spec.mode
    h_s = [_run_block(sb, h, a, k).detach() for h, (a, k) in zip(h_s, inputs)]
    h_t = h_t_next if spec.target == "teacher" else [_run_block(tb, h, a, k).detach()
                                                     for h, (a, k) in zip(h_t, inputs)]
    return h_s, h_t


def block_refit(student: nn.Module, teacher: nn.Module, batches: list, blocks: str = "encoder.layer", *,
                ridge: float | list = 1e-2, max_rows: int = 4096, iters: int = 15, seed: int = 0,
                refit_weights: bool = True, target: str = "teacher", mode: str = "lut",
                residual: dict | None = None, progress: bool = False) -> dict:
    """Calibrate a converted transformer block by block on the activations it really produces.

    ``blocks``: path of the ``nn.ModuleList`` of blocks in both models (``"encoder.layer"`` for BERT,
    ``"blocks"`` for `lutnb.zoo.vit`). Layers outside the blocks must be float (or calibrated already). For
    each block, for each group of LUT layers in call order (q/k/v share one input): k-means on the inputs
    those layers receive when everything before them is already a LUT (sequential calibration), then,
    with ``refit_weights``, a ridge least-squares refit of [W, b] on the *quantized* inputs so that the
    layer's output matches ``target``: the fp32 teacher's output of the same layer (``"teacher"``, also
    undoing the error accumulated upstream) or the layer's own exact output (``"self"``). ``ridge`` is
    relative to the mean diagonal of X^T X and pulls toward the original weights; a list of candidates
    picks, per layer, the one with the smallest error on every 8th row held out (reported as ``ridge``).
    Padding tokens are ignored (rows where ``attention_mask`` is 0). Returns per-layer stats (relative
    output error before and after the refit) and ``_seconds``.

    ``residual``: {layer: module} (names inside a block) for layers whose output is added to a residual
    stream right before ``module`` (e.g. BERT's ``attention.output.dense`` -> ``attention.output.LayerNorm``,
    `BERT_RESIDUALS`). With ``target="teacher"`` such a layer is refit against the teacher's *sum* at that
    point minus the student's own residual, so it also corrects, as far as a linear map of its quantized
    input can, the error the student's residual stream has accumulated.
    """
    from tqdm.auto import tqdm

    spec = _RefitSpec(blocks=blocks, ridge=ridge, max_rows=max_rows, iters=iters, seed=seed,
                      refit_weights=refit_weights, target=target, mode=mode, residual=residual)
    s_blocks, t_blocks = _blocks_of(student, teacher, blocks)
    batches = list(batches)
    t0 = time.perf_counter()
    was_s, was_t = student.training, teacher.training
    student.eval()
    teacher.eval()
    stats = {}
    with torch.no_grad():
        inputs = _block_inputs(teacher, t_blocks[0], batches)
        masks = [row_mask(b) for b in batches]
        h_t = [a[0] for a, _ in inputs]
        h_s = [h.clone() for h in h_t]
        for li in tqdm(range(len(s_blocks)), desc="block_refit", leave=False,
                       disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")):
            h_s, h_t = _refit_block(s_blocks[li], t_blocks[li], li, h_s, h_t, inputs, masks, spec, stats)
    student.train(was_s)
    teacher.train(was_t)
    stats["_seconds"] = time.perf_counter() - t0
    return stats


@torch.no_grad()
def refit_to_teacher(student: nn.Module, teacher: nn.Module, name: str, batches: list, ridge=(1e-3, 1e-2, 1e-1, 1.0),
                     max_rows: int = 32768, seed: int = 0) -> dict:
    """Refit one calibrated LUT layer of ``student`` so that its output on the inputs it really receives
    (everything before it as it is now in the student) matches what the same layer of the fp32 ``teacher``
    outputs on the teacher's own inputs: ridge least squares of [W, b] on the quantized rows (`ridge_refit`;
    ``ridge`` candidates chosen on held-out rows). k-means places the centroids to reproduce the layer's
    *input*; this fits the weights to the layer's *output*, including the error accumulated upstream. Works
    for any model whose layer names are the same in both (``lutnb.convert`` keeps them). Returns the relative
    output error before and after."""
    layer = student.get_submodule(name)
    if not isinstance(layer, LUTLayer):
        raise TypeError(f"refit_to_teacher: {name!r} is a {type(layer).__name__}, not a LUT layer")
    was_s, was_t = student.training, teacher.training
    student.eval()
    teacher.eval()
    try:
        xs, xt = ([a[0] for a, _ in _block_inputs(m, m.get_submodule(name), batches)] for m in (student, teacher))
    finally:
        student.train(was_s)
        teacher.train(was_t)
    rows = torch.cat([layer.rows_of(x) for x in xs]).float()
    t_rows = torch.cat([layer.rows_of(x) for x in xt]).float()
    if rows.shape != t_rows.shape:
        raise RuntimeError(f"refit_to_teacher: layer {name!r} gets {tuple(rows.shape)} rows in the student and "
                           f"{tuple(t_rows.shape)} in the teacher")
    g = torch.Generator().manual_seed(seed)
    if rows.shape[0] > max_rows:
        pick = torch.randperm(rows.shape[0], generator=g)[:max_rows]
        rows, t_rows = rows[pick], t_rows[pick]
    finite = torch.isfinite(rows).all(1) & torch.isfinite(t_rows).all(1)
    rows, t_rows = rows[finite], t_rows[finite]
    t_layer = teacher.get_submodule(name)
    if tuple(t_layer.weight.shape) != tuple(layer.weight.shape):
        raise ValueError(f"refit_to_teacher: layer {name!r} has weight {tuple(layer.weight.shape)} in the student "
                         f"and {tuple(t_layer.weight.shape)} in the teacher")
    t_bias = getattr(t_layer, "bias", None)
    target = F.linear(t_rows, layer.matrix_of(t_layer.weight.detach()).float(),
                      None if t_bias is None else t_bias.detach().float())
    return ridge_refit(layer, rows, target, ridge, generator=g)
