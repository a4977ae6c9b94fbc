"""Distances between sub-vectors and centroids (l2 = squared Euclidean, l1, chebyshev) and argmin encode.

Shapes follow the paper's notation: sub-vectors `x` are (M, S, v) (M rows, S sub-spaces of length v),
codebooks are (S, c, v); distances are (M, S, c) and indices (M, S). Everything is chunked over M so a
large M never materialises an (M, S, c, v) tensor at once, and runs on whatever device the inputs are on.
"""
from __future__ import annotations

import torch

from ..kernels import dispatch
from ..kernels.common import METRICS, check_metric  # noqa: F401  (METRICS re-exported)

# bytes of temporary (rows x S x c x v) data per chunk. CPU: 32 MiB keeps L1/Chebyshev broadcasting within
# cache-ish sizes. An accelerator has no such cache to fit and pays per kernel launch instead: there the budget
# is an eighth of the free memory when first asked (clamped to [32 MiB, 4 GiB]), so a ResNet-20 first-stage
# layer at batch 128 (1.2 GiB of temporaries for L1) runs as one kernel instead of 36.
_CHUNK_BYTES = 32 * 2**20
_DEVICE_CHUNK_MAX = 4 * 2**30
_DEVICE_CHUNK_OTHER = 256 * 2**20  # accelerators that do not report free memory (mps, xpu, ...)
_BUDGETS: dict[str, int] = {}


def _free_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes (CUDA), None where the backend does not say."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def chunk_budget(device: torch.device | str = "cpu") -> int:
    """Bytes of (rows x S x c x v) temporaries one distance kernel may use on ``device`` (see above); an
    accelerator's budget is measured once per device and cached (`reset_chunk_budget` measures again)."""
    device = torch.device(device)
    if device.type == "cpu":
        return _CHUNK_BYTES
    key = str(device)
    if key not in _BUDGETS:
        free = _free_bytes(device)
        budget = _DEVICE_CHUNK_OTHER if free is None else free // 8
        _BUDGETS[key] = int(min(max(budget, _CHUNK_BYTES), _DEVICE_CHUNK_MAX))
    return _BUDGETS[key]


def reset_chunk_budget() -> None:
    """Forget the measured accelerator budgets (e.g. after freeing a large model)."""
    _BUDGETS.clear()


def _check_shapes(x: torch.Tensor, codebooks: torch.Tensor) -> None:
    if x.dim() != 3 or codebooks.dim() != 3:
        raise ValueError(f"x must be (M, S, v) and codebooks (S, c, v); got {tuple(x.shape)} and "
                         f"{tuple(codebooks.shape)}")
    if x.shape[1] != codebooks.shape[0] or x.shape[2] != codebooks.shape[2]:
        raise ValueError(f"x {tuple(x.shape)} does not match codebooks {tuple(codebooks.shape)}: "
                         "need x.shape[1] == S and x.shape[2] == v")


def check_float(x: torch.Tensor, codebooks: torch.Tensor, fn: str) -> None:
    """Refuse integer or bool sub-vectors or codebooks (a TypeError that names the argument and its dtype)."""
    for name, t in (("x", x), ("codebooks", codebooks)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor; got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} has dtype {t.dtype}; distances need floating-point tensors (float32, "
                            f"float64, bfloat16, float16): convert it first, e.g. {name}.float()")


def rows_per_chunk(S: int, c: int, v: int, itemsize: int = 4, device: torch.device | str = "cpu") -> int:
    """Rows of (S, c, v) temporaries that fit ``chunk_budget(device)``."""
    return max(1, chunk_budget(device) // max(1, S * c * v * itemsize))


def broadcast_distance(x: torch.Tensor, codebooks: torch.Tensor, metric: str) -> torch.Tensor:
    diff = x.unsqueeze(2) - codebooks.unsqueeze(0)  # (m, S, c, v)
    if metric == "l2":
        return diff.pow(2).sum(-1)
    if metric == "l1":
        return diff.abs().sum(-1)
    return diff.abs().amax(-1)


def _l2_expanded(x: torch.Tensor, codebooks: torch.Tensor, with_x_norm: bool = True) -> torch.Tensor:
    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, one batched matmul per sub-space: (S, m, v) @ (S, v, c)
    cn = codebooks.pow(2).sum(-1)  # (S, c)
    xt = x.transpose(0, 1)  # (S, m, v)
    d = torch.baddbmm(cn.unsqueeze(1), xt, codebooks.transpose(1, 2), alpha=-2.0)  # (S, m, c)
    if with_x_norm:
        d = d + xt.pow(2).sum(-1, keepdim=True)
    return d.transpose(0, 1)  # (m, S, c)


def pairwise_distance(x: torch.Tensor, codebooks: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """Distances (M, S, c) between sub-vectors x (M, S, v) and codebooks (S, c, v); differentiable.

    L2 uses the matmul expansion (fast, differentiable); L1 and Chebyshev broadcast, chunked over M.
    Integer inputs are refused (TypeError). Distances are computed (and returned) in at least float32:
    bfloat16/float16 inputs are upcast, and x and codebooks of different float dtypes meet in the wider one.
    """
    metric = check_metric(metric)
    check_float(x, codebooks, "pairwise_distance")
    _check_shapes(x, codebooks)
    work = torch.promote_types(torch.promote_types(x.dtype, codebooks.dtype), torch.float32)
    if x.dtype != work:
        x = x.to(work)
    if codebooks.dtype != work:
        codebooks = codebooks.to(work)
    if metric == "l2":
        return _l2_expanded(x, codebooks).clamp_min(0)
    S, c, v = codebooks.shape
    step = rows_per_chunk(S, c, v, x.element_size(), x.device)
    if x.shape[0] <= step:
        return broadcast_distance(x, codebooks, metric)
    return torch.cat([broadcast_distance(x[i:i + step], codebooks, metric)
                      for i in range(0, x.shape[0], step)])


def pairwise_distance_reference(x: torch.Tensor, codebooks: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """Slow, obvious distances with Python loops over S and c (for tests on small inputs)."""
    metric = check_metric(metric)
    _check_shapes(x, codebooks)
    M, S, v = x.shape
    c = codebooks.shape[1]
    out = torch.empty(M, S, c, dtype=x.dtype, device=x.device)
    for s in range(S):
        for j in range(c):
            diff = x[:, s, :] - codebooks[s, j]
            if metric == "l2":
                out[:, s, j] = (diff * diff).sum(-1)
            elif metric == "l1":
                out[:, s, j] = diff.abs().sum(-1)
            else:
                out[:, s, j] = diff.abs().max(-1).values
    return out


@torch.no_grad()
def encode(x: torch.Tensor, codebooks: torch.Tensor, metric: str = "l2",
           chunk_rows: int | None = None) -> torch.Tensor:
    """Nearest-centroid indices (M, S) (int64) of sub-vectors x (M, S, v); ties go to the lowest index.

    This one function is used by the LUT layers, calibration and the integer engine, so they agree bit
    for bit. L2 drops the ||x||^2 term (it does not change the argmin). CPU float32 inputs go to the numba
    kernels (`lutnb.kernels.dispatch`: compiled or numba; L2 there is sum((x - c)**2), equal to the torch path except at
    float near-ties; set LUTNB_NATIVE=0 for the pure torch path).

    Dtypes: integer inputs are refused (TypeError); distances are computed in at least float32 (bfloat16 and
    float16 inputs are upcast, so the index is the true nearest centroid of the rounded values), float64 in
    float64 (the codebooks are cast to the working dtype). Rows holding NaN or inf get an arbitrary valid
    index here; the LUT layers turn such rows' outputs into NaN (see `lutnb.vq.layers`).
    """
    metric = check_metric(metric)
    check_float(x, codebooks, "encode")
    _check_shapes(x, codebooks)
    if x.dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    idx = dispatch.try_encode(x, codebooks, metric)
    if idx is not None:
        return idx
    M = x.shape[0]
    S, c, v = codebooks.shape
    if chunk_rows is None:
        chunk_rows = max(256, rows_per_chunk(S, c, v, x.element_size(), x.device))
    if codebooks.dtype != x.dtype:
        codebooks = codebooks.to(x.dtype)
    out = torch.empty(M, S, dtype=torch.long, device=x.device)
    for i in range(0, M, chunk_rows):
        xc = x[i:i + chunk_rows]
        if metric == "l2":
            d = _l2_expanded(xc, codebooks, with_x_norm=False)
        else:
            d = broadcast_distance(xc, codebooks, metric)
        out[i:i + chunk_rows] = d.argmin(-1)
    return out


def l2(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (M, S, c)."""
    return pairwise_distance(x, codebooks, "l2")


def l1(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Manhattan distances (M, S, c)."""
    return pairwise_distance(x, codebooks, "l1")


def chebyshev(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Chebyshev (max-abs) distances (M, S, c)."""
    return pairwise_distance(x, codebooks, "chebyshev")
