"""The numba kernels' Python entry points: shapes, threads, accumulator plans, and their exactness contract.

The jitted bodies live in `lutnb.kernels.numba_jit`, imported on first use (numba takes about a second to
import); `lutnb.kernels.dispatch` decides when these run and when the compiled C kernel
(`lutnb.kernels.compiled`: INT8 tables, L1/L2 with v <= 4 and Chebyshev with any v) runs instead. Both meet
the same exactness contract.

One pass over the rows does what the accelerator does: for every block of rows and every sub-space,
find the nearest centroid (the CCM) and add that centroid's table row into integer accumulators (the
IMM). Nothing of size (M, S, c) or (M, S, c, v) is ever materialised.

Exactness contract (tested in tests/test_kernels_numba.py):

* **L1 and Chebyshev**: the distances are computed with the same float32 operations, in the same order,
  as the torch path (`x - c`, `abs`, then `sum`/`amax` over v in the order of PyTorch's CPU
  `cascade_sum`, see `_order_sum`), and the argmin takes the lowest index on ties and the first NaN, as
  `torch.argmin` does. So `native_encode` equals the torch encode bit for bit.
* **L2**: the kernel computes the squared Euclidean distance directly, `sum_k (x_k - c_k)^2` (in the
  same summation order), which equals the argmin of ``torch ((x - c) ** 2).sum(-1)`` bit for bit
  (`lutnb.vq.distances.pairwise_distance_reference` / the broadcasting formula). The torch *fallback* of
  `lutnb.vq.distances.encode` uses the matmul expansion ``||c||^2 - 2 x.c`` (batched BLAS), whose rounding
  cannot be reproduced by any other kernel: the two agree except where two centroids are within float
  rounding of each other (near-ties). That is why `lutnb.vq.distances.encode` itself dispatches to this
  kernel for CPU float32 inputs: layers, calibration and the engine then all use the same encoder and
  agree bit for bit. ``LUTNB_NATIVE=0`` switches the native path off everywhere (pure torch).
* **Accumulators**: int32 (exact whenever ``S * max|Tq| < 2**31``; always for tables up to 16 bits and
  S < 65538), with an explicit two's-complement wrap to ``acc_bits`` equal to `lutnb.vq.quant.wrap`; int64
  accumulators and `lutnb.vq.quant.wrap` otherwise. The result equals
  `lutnb.vq.quant.lookup_accumulate_reference` exactly.

The kernels are compiled with ``cache=True`` (the first call on a machine compiles for some seconds, see
``NATIVE_COMPILE_NOTE``; later processes load the cache) and ``fastmath=False`` (no reassociation, no
FMA contraction). They run in parallel over blocks of rows with ``min(torch.get_num_threads(),
numba's thread count)`` threads, so ``torch.set_num_threads`` governs both.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .common import METRIC_CODES, check_acc_bits, check_metric, wrap

NATIVE_COMPILE_NOTE = "first call compiles ~10-30 s per kernel variant; cached on disk afterwards"


_JIT = None


def jit():
    """The module of jitted kernels (`lutnb.kernels.numba_jit`), imported on first use."""
    global _JIT
    if _JIT is None:
        from . import numba_jit  # here, not at the top: importing numba costs about a second

        _JIT = numba_jit
    return _JIT


def numba_module():
    """numba itself, or None where it does not import."""
    return jit().numba


def enabled() -> bool:
    """True when LUTNB_NATIVE is not set to 0/false/off and numba imports."""
    if os.environ.get("LUTNB_NATIVE", "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    return numba_module() is not None


def unavailable_reason() -> str | None:
    """Why the native path is off (None when it is on)."""
    if numba_module() is None:
        return f"numba does not import ({jit().NUMBA_ERROR}); pip install 'lutnb[native]'"
    if not enabled():
        return "disabled by LUTNB_NATIVE=0"
    return None


# ------------------------------------------------------------------------------------------------
# PyTorch's float summation order (probed once per process)
# ------------------------------------------------------------------------------------------------
_SUM_WIDTH: int | None = None


def torch_sum_width() -> int:
    """Vectorized<float>::size() of PyTorch's CPU sum kernel here (8 with AVX2/AVX512, 4 on NEON...).

    Found by comparing `_order_sum` with ``tensor.sum(-1)`` on data whose sums depend on the order;
    raises RuntimeError if no width reproduces PyTorch (the native L1/L2 path is then not exact for v > 4).
    """
    global _SUM_WIDTH
    if _SUM_WIDTH is None:
        g = torch.Generator().manual_seed(12345)
        tests = []
        for v in range(5, 70):
            e = torch.rand(256, v, generator=g) * torch.exp(torch.randn(256, v, generator=g) * 6)
            tests.append((e.float(), e.float().sum(-1).numpy()))
        for W in (8, 16, 4, 32, 2):
            if all(np.array_equal(jit().probe_sums(np.ascontiguousarray(e.numpy().T), W), want)
                   for e, want in tests):
                _SUM_WIDTH = W
                break
        else:
            raise RuntimeError("lutnb.kernels.numba_kernels: could not reproduce PyTorch's float32 sum order on this "
                               "machine; set LUTNB_NATIVE=0")
    return _SUM_WIDTH


# ------------------------------------------------------------------------------------------------
# Python entry points
# ------------------------------------------------------------------------------------------------
def match_threads() -> None:
    """numba's thread count := min(torch's, numba's maximum). The first call launches numba's OpenMP threading
    layer, which resets the OpenMP pool that torch shares to every core (torch.get_num_threads() went from 1 to
    2 here, and every later torch op of the process ran multi-threaded, with other float sums): torch's count
    is put back."""
    numba = numba_module()
    t = torch.get_num_threads()
    n = max(1, min(t, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    if torch.get_num_threads() != t:
        torch.set_num_threads(t)


def require() -> None:
    """Raise a RuntimeError saying why when numba is not there."""
    if numba_module() is None:
        raise RuntimeError(unavailable_reason())


def as_f32(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach()
        if a.device.type != "cpu":
            raise ValueError("lutnb.kernels.numba_kernels runs on CPU tensors only")
        a = a.numpy()
    return np.ascontiguousarray(a, dtype=np.float32)


def table_array(tq) -> np.ndarray:
    """Tables as the narrowest C-contiguous signed integer array that holds them (int16 normally)."""
    if isinstance(tq, torch.Tensor):
        tq = tq.detach().cpu().numpy()
    tq = np.asarray(tq)
    if tq.dtype.kind not in "iu":
        raise ValueError(f"tables must be integers; got {tq.dtype}")
    amax = int(np.abs(tq.astype(np.int64)).max()) if tq.size else 0
    dt = np.int16 if amax < 2 ** 15 else (np.int32 if amax < 2 ** 31 else np.int64)
    return np.ascontiguousarray(tq, dtype=dt)


def acc_plan(tq: np.ndarray, acc_bits: int | None):
    """(accumulator prototype, in-kernel wrap bits, wrap afterwards with quant.wrap?)."""
    S = tq.shape[0]
    amax = int(np.abs(tq.astype(np.int64)).max()) if tq.size else 0
    exact32 = S * amax < 2 ** 31
    if acc_bits is not None and acc_bits <= 32:
        # int32 wraps mod 2**32 and 2**acc_bits divides 2**32, so wrapping at the end is exact
        return np.zeros(1, np.int32), (acc_bits if acc_bits < 32 else 0), False
    if exact32:  # the exact sum fits in int32, so a wrap to more than 32 bits changes nothing
        return np.zeros(1, np.int32), 0, False
    return np.zeros(1, np.int64), 0, acc_bits is not None and acc_bits < 64


def width_for(metric: str, v: int) -> int:
    if metric == "chebyshev" or v <= 4:
        return 8  # order does not matter there (max, or a plain running sum)
    return torch_sum_width()


def check_encode_shapes(x_sub, codebooks) -> None:
    """x_sub (M, S, v) and codebooks (S, c >= 1, v), or a ValueError saying what is wrong."""
    if (x_sub.dim() != 3 or codebooks.dim() != 3
            or x_sub.shape[1:] != (codebooks.shape[0], codebooks.shape[2])):
        raise ValueError(f"x_sub must be (M, S, v) and codebooks (S, c, v); got {tuple(x_sub.shape)}, "
                         f"{tuple(codebooks.shape)}")
    if codebooks.shape[1] < 1:
        raise ValueError("codebooks need at least one centroid")


def native_encode(x_sub, codebooks, metric: str = "l2") -> torch.Tensor:
    """Nearest-centroid indices (M, S) int64 of sub-vectors x_sub (M, S, v) for codebooks (S, c, v), numba only.

    See the module docstring for what it equals bit for bit (`lutnb.kernels.dispatch.encode` picks the compiled
    kernel instead where it applies). CPU only; any float input is used as float32.
    """
    require()
    metric = check_metric(metric)
    check_encode_shapes(x_sub, codebooks)
    M, S, v = x_sub.shape
    rows = as_f32(x_sub.reshape(M, S * v))
    idx = np.empty((M, S), np.int64)
    if M and S:
        match_threads()
        jit().encode_kernel(rows, as_f32(codebooks), METRIC_CODES[metric], width_for(metric, v), idx)
    return torch.from_numpy(idx)


def check_fused_shapes(rows: np.ndarray, cb: np.ndarray, tq: np.ndarray) -> None:
    """rows (M, K <= S*v), codebooks (S, c, v), tables (S, c, N), or a ValueError saying what is wrong."""
    if rows.ndim != 2 or cb.ndim != 3 or tq.ndim != 3:
        raise ValueError("rows must be (M, K), codebooks (S, c, v), tables (S, c, N)")
    S, c, v = cb.shape
    if tq.shape[:2] != (S, c):
        raise ValueError(f"tables {tq.shape} do not match codebooks {cb.shape}")
    if rows.shape[1] > S * v:
        raise ValueError(f"rows have K={rows.shape[1]} > S*v={S * v}")


def fused_numba(rows: np.ndarray, cb: np.ndarray, tq: np.ndarray, metric: str, acc_bits, plan=None):
    """(idx int64 (M, S), acc int64 (M, N)) with the numba kernel; plan: `acc_plan(tq, acc_bits)`, computed
    here when None."""
    check_fused_shapes(rows, cb, tq)
    M = rows.shape[0]
    S, c, v = cb.shape
    N = tq.shape[2]
    proto, wrap_bits, post_wrap = plan if plan is not None else acc_plan(tq, acc_bits)
    idx = np.empty((M, S), np.int64)
    out = np.empty((M, N), np.int64)
    if M and N and S:
        match_threads()
        jit().fused_kernel(rows, cb, tq, METRIC_CODES[metric], width_for(metric, v), wrap_bits, idx, proto, out)
    elif M and S:
        jit().encode_kernel(rows, cb, METRIC_CODES[metric], width_for(metric, v), idx)
        out[:] = 0
    else:
        out[:] = 0
    acc = torch.from_numpy(out)
    if post_wrap:
        acc = wrap(acc, acc_bits)
    return torch.from_numpy(idx), acc


def native_lookup_accumulate(idx, tq, acc_bits: int | None = None) -> torch.Tensor:
    """acc int64 (M, N) = wrap(sum_s tq[s, idx[:, s], :]), equal to quant.lookup_accumulate_reference."""
    require()
    check_acc_bits(acc_bits)
    t = table_array(tq)
    S, c, N = t.shape
    idx_np = np.ascontiguousarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx,
                                  dtype=np.int64)
    if idx_np.ndim != 2 or idx_np.shape[1] != S:
        raise ValueError(f"idx must be (M, S={S}); got {idx_np.shape}")
    if idx_np.size and (idx_np.min() < 0 or idx_np.max() >= c):
        raise IndexError(f"indices must be in [0, {c})")
    proto, wrap_bits, post_wrap = acc_plan(t, acc_bits)
    out = np.zeros((idx_np.shape[0], N), np.int64)
    if idx_np.shape[0] and N:
        match_threads()
        jit().lookup_kernel(idx_np, t, wrap_bits, proto, out)
    acc = torch.from_numpy(out)
    return wrap(acc, acc_bits) if post_wrap else acc



