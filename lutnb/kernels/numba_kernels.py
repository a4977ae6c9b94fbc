"""Native CPU kernels: fused nearest-centroid encode + integer look-up-accumulate.

Two back ends behind one API: the compiled C kernel `lutnb.ckernel` (INT8 tables, L1/L2 with v <= 4 and
Chebyshev with any v: the common case, and the fastest; ``LUTNB_CKERNEL=0`` switches it off) and the numba
kernels below (every other case). Both meet the same exactness contract.

One pass over the rows does what the accelerator does: for every block of rows and every sub-space,
find the nearest centroid (the CCM) and add that centroid's table row into integer accumulators (the
IMM). Nothing of size (M, S, c) or (M, S, c, v) is ever materialised.

Exactness contract (tested in tests/test_native.py):

* **L1 and Chebyshev**: the distances are computed with the same float32 operations, in the same order,
  as the torch path (`x - c`, `abs`, then `sum`/`amax` over v in the order of PyTorch's CPU
  `cascade_sum`, see `_order_sum`), and the argmin takes the lowest index on ties and the first NaN, as
  `torch.argmin` does. So `native_encode` equals the torch encode bit for bit.
* **L2**: the kernel computes the squared Euclidean distance directly, `sum_k (x_k - c_k)^2` (in the
  same summation order), which equals the argmin of ``torch ((x - c) ** 2).sum(-1)`` bit for bit
  (`lutnb.distances.pairwise_distance_reference` / the broadcasting formula). The torch *fallback* of
  `lutnb.distances.encode` uses the matmul expansion ``||c||^2 - 2 x.c`` (batched BLAS), whose rounding
  cannot be reproduced by any other kernel: the two agree except where two centroids are within float
  rounding of each other (near-ties). That is why `lutnb.distances.encode` itself dispatches to this
  kernel for CPU float32 inputs: layers, calibration and the engine then all use the same encoder and
  agree bit for bit. ``LUTNB_NATIVE=0`` switches the native path off everywhere (pure torch).
* **Accumulators**: int32 (exact whenever ``S * max|Tq| < 2**31``; always for tables up to 16 bits and
  S < 65538), with an explicit two's-complement wrap to ``acc_bits`` equal to `lutnb.quant.wrap`; int64
  accumulators and `lutnb.quant.wrap` otherwise. The result equals
  `lutnb.quant.lookup_accumulate_reference` exactly.

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

ROW_BLOCK = 64  # rows per parallel work item (their accumulators and sub-vectors stay in L1)


NATIVE_COMPILE_NOTE = "first call compiles ~10-30 s per kernel variant; cached on disk afterwards"


# numba's default OpenMP layer spins its idle workers, and so does the OpenMP runtime inside torch: on a small
# machine the two fight for the cores (measured: a plain fp32 training step went from 30 ms to 450 ms once the
# kernels had run). The workqueue layer parks idle threads. Set NUMBA_THREADING_LAYER yourself to override.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


try:  # numba is optional: everything here degrades to "not available"
    import numba
    from numba import njit, prange

    _NUMBA_ERROR: str | None = None
except Exception as e:  # pragma: no cover - exercised only where numba is missing or broken
    numba = None
    _NUMBA_ERROR = f"{type(e).__name__}: {e}"


def enabled() -> bool:
    """True when numba imports and LUTNB_NATIVE is not set to 0/false/off."""
    if numba is None:
        return False
    return os.environ.get("LUTNB_NATIVE", "1").strip().lower() not in ("0", "false", "off", "no")


def unavailable_reason() -> str | None:
    """Why the native path is off (None when it is on)."""
    if numba is None:
        return f"numba does not import ({_NUMBA_ERROR}); pip install 'lutnb[native]'"
    if not enabled():
        return "disabled by LUTNB_NATIVE=0"
    return None


# ------------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------------
if numba is not None:

    @njit(cache=True, fastmath=False, nogil=True)
    def _order_sum(E, v, W, mb, P, Q, out):
        """out[l] = sum_k E[k, l] (k < v) in the order of PyTorch's CPU cascade_sum over a contiguous
        last dim of size v, for every lane l < mb (lanes are independent rows; loops vectorize over l).

        v < W (W = Vectorized<float>::size() of the sum kernel): row_sum with 4 interleaved partial
        sums; v >= W: row_sum over W-wide vectors, then the scalar tail, then the W lanes in order.
        Exact for v < 64 * W (beyond that PyTorch adds a cascade level that this does not model).
        """
        zero = np.float32(0.0)
        if v < W:
            for q in range(4):
                for l in range(mb):
                    P[q, 0, l] = zero
            for i in range(v // 4):
                for q in range(4):
                    k = 4 * i + q
                    for l in range(mb):
                        P[q, 0, l] = P[q, 0, l] + E[k, l]
            for k in range((v // 4) * 4, v):
                for l in range(mb):
                    P[0, 0, l] = P[0, 0, l] + E[k, l]
            for l in range(mb):
                out[l] = ((P[0, 0, l] + P[1, 0, l]) + P[2, 0, l]) + P[3, 0, l]
            return
        nv = v // W
        for q in range(4):
            for w in range(W):
                for l in range(mb):
                    P[q, w, l] = zero
        for i in range(nv // 4):
            for q in range(4):
                for w in range(W):
                    k = (4 * i + q) * W + w
                    for l in range(mb):
                        P[q, w, l] = P[q, w, l] + E[k, l]
        for i in range((nv // 4) * 4, nv):
            for w in range(W):
                k = i * W + w
                for l in range(mb):
                    P[0, w, l] = P[0, w, l] + E[k, l]
        for q in range(1, 4):
            for w in range(W):
                for l in range(mb):
                    P[0, w, l] = P[0, w, l] + P[q, w, l]
        for l in range(mb):
            Q[l] = zero
        for k in range(nv * W, v):
            for l in range(mb):
                Q[l] = Q[l] + E[k, l]
        for w in range(W):
            for l in range(mb):
                Q[l] = Q[l] + P[0, w, l]
        for l in range(mb):
            out[l] = Q[l]

    @njit(cache=True, fastmath=False, nogil=True)
    def _update(D, best, BI, s, j, mb):
        """Running argmin over centroids as torch.argmin: first minimum wins, and the first NaN."""
        jj = np.int32(j)
        for l in range(mb):
            d = D[l]
            b = best[l]
            take = (d < b) | ((d != d) & (b == b))
            best[l] = d if take else b
            BI[s, l] = jj if take else BI[s, l]

    @njit(cache=True, fastmath=False, nogil=True)
    def _encode_block(rows, m0, mb, s, cb, metric, W, X, E, P, Q, D, best, BI):
        """Nearest centroid of sub-space s for rows m0..m0+mb: BI[s, l] (int32), lowest index on ties."""
        K = rows.shape[1]
        c = cb.shape[1]
        v = cb.shape[2]
        zero = np.float32(0.0)
        inf = np.float32(np.inf)
        # gather the block's sub-vectors as X[k, l] (zero padding beyond K, as the engine pads)
        if v == 4 and (s + 1) * 4 <= K:  # constant trip count: ~2x faster than the generic gather
            b0 = s * 4
            for l in range(mb):
                X[0, l] = rows[m0 + l, b0]
                X[1, l] = rows[m0 + l, b0 + 1]
                X[2, l] = rows[m0 + l, b0 + 2]
                X[3, l] = rows[m0 + l, b0 + 3]
        elif (s + 1) * v <= K:
            for l in range(mb):
                for k in range(v):
                    X[k, l] = rows[m0 + l, s * v + k]
        else:
            for l in range(mb):
                for k in range(v):
                    col = s * v + k
                    X[k, l] = rows[m0 + l, col] if col < K else zero
        # best = +inf, index = -1 (clamped to 0 at the end: all-inf distances give index 0, as argmin does)
        for l in range(mb):
            best[l] = inf
            BI[s, l] = -1
        seq = v <= 4 or v == W  # PyTorch's summation order is then a plain running sum
        for j in range(c):
            jj = np.int32(j)
            if v == 4:  # the common case: distance and running argmin in one vectorized loop
                c0 = cb[s, j, 0]
                c1 = cb[s, j, 1]
                c2 = cb[s, j, 2]
                c3 = cb[s, j, 3]
                if metric == 1:
                    for l in range(mb):
                        d = ((abs(X[0, l] - c0) + abs(X[1, l] - c1)) + abs(X[2, l] - c2)) + abs(X[3, l] - c3)
                        b = best[l]
                        take = (d < b) | ((d != d) & (b == b))
                        best[l] = d if take else b
                        BI[s, l] = jj if take else BI[s, l]
                elif metric == 0:
                    for l in range(mb):
                        e0 = X[0, l] - c0
                        e1 = X[1, l] - c1
                        e2 = X[2, l] - c2
                        e3 = X[3, l] - c3
                        d = ((e0 * e0 + e1 * e1) + e2 * e2) + e3 * e3
                        b = best[l]
                        take = (d < b) | ((d != d) & (b == b))
                        best[l] = d if take else b
                        BI[s, l] = jj if take else BI[s, l]
                else:
                    for l in range(mb):
                        d = abs(X[0, l] - c0)
                        a = abs(X[1, l] - c1)
                        d = a if (a > d) | (a != a) else d
                        a = abs(X[2, l] - c2)
                        d = a if (a > d) | (a != a) else d
                        a = abs(X[3, l] - c3)
                        d = a if (a > d) | (a != a) else d
                        b = best[l]
                        take = (d < b) | ((d != d) & (b == b))
                        best[l] = d if take else b
                        BI[s, l] = jj if take else BI[s, l]
                continue
            if metric == 2:  # chebyshev: max |x - c|, NaN propagates (torch.amax)
                c0 = cb[s, j, 0]
                for l in range(mb):
                    D[l] = abs(X[0, l] - c0)
                for k in range(1, v):
                    ck = cb[s, j, k]
                    for l in range(mb):
                        a = abs(X[k, l] - ck)
                        d = D[l]
                        D[l] = a if (a > d) | (a != a) else d
            else:
                for k in range(v):
                    ck = cb[s, j, k]
                    if metric == 1:
                        for l in range(mb):
                            E[k, l] = abs(X[k, l] - ck)
                    else:
                        for l in range(mb):
                            e = X[k, l] - ck
                            E[k, l] = e * e
                if seq:
                    for l in range(mb):
                        D[l] = E[0, l]
                    for k in range(1, v):
                        for l in range(mb):
                            D[l] = D[l] + E[k, l]
                else:
                    _order_sum(E, v, W, mb, P, Q, D)
            _update(D, best, BI, s, j, mb)
        for l in range(mb):
            BI[s, l] = max(BI[s, l], 0)

    @njit(cache=True, fastmath=False, nogil=True)
    def _scratch(v, W, c):
        B = ROW_BLOCK
        X = np.empty((v, B), np.float32)
        E = np.empty((v, B), np.float32)
        P = np.empty((4, max(W, 1), B), np.float32)
        Q = np.empty(B, np.float32)
        D = np.empty(B, np.float32)
        best = np.empty(B, np.float32)
        return X, E, P, Q, D, best

    @njit(cache=True, fastmath=False, nogil=True)
    def _lookup_rows(BI, tq, A, mb):
        """A[l, :] += sum_s tq[s, BI[s, l], :] (integer adds wrap, so any order gives the same bits)."""
        S = BI.shape[0]
        N = tq.shape[2]
        S8 = (S // 8) * 8
        for s in range(0, S8, 8):  # 8 sub-spaces' tables (8 * c * N entries) stay in L1 while rows stream
            for l in range(mb):
                j0 = BI[s, l]
                j1 = BI[s + 1, l]
                j2 = BI[s + 2, l]
                j3 = BI[s + 3, l]
                j4 = BI[s + 4, l]
                j5 = BI[s + 5, l]
                j6 = BI[s + 6, l]
                j7 = BI[s + 7, l]
                for n in range(N):
                    A[l, n] += (((tq[s, j0, n] + tq[s + 1, j1, n]) + (tq[s + 2, j2, n] + tq[s + 3, j3, n]))
                                + ((tq[s + 4, j4, n] + tq[s + 5, j5, n])
                                   + (tq[s + 6, j6, n] + tq[s + 7, j7, n])))
        for s in range(S8, S):
            for l in range(mb):
                j0 = BI[s, l]
                for n in range(N):
                    A[l, n] += tq[s, j0, n]

    @njit(cache=True, fastmath=False, nogil=True)
    def _store_acc(A, out, m0, mb, wrap_bits):
        N = out.shape[1]
        if wrap_bits > 0:
            half = np.int64(1) << (wrap_bits - 1)
            mask = (np.int64(1) << wrap_bits) - 1
            for l in range(mb):
                for n in range(N):
                    out[m0 + l, n] = ((np.int64(A[l, n]) + half) & mask) - half
        else:
            for l in range(mb):
                for n in range(N):
                    out[m0 + l, n] = A[l, n]

    @njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _encode_kernel(rows, cb, metric, W, idx):
        M = rows.shape[0]
        S, c, v = cb.shape
        nblk = (M + ROW_BLOCK - 1) // ROW_BLOCK
        for blk in prange(nblk):
            m0 = blk * ROW_BLOCK
            mb = min(ROW_BLOCK, M - m0)
            X, E, P, Q, D, best = _scratch(v, W, c)
            BI = np.empty((S, ROW_BLOCK), np.int32)
            for s in range(S):
                _encode_block(rows, m0, mb, s, cb, metric, W, X, E, P, Q, D, best, BI)
            for l in range(mb):
                for s in range(S):
                    idx[m0 + l, s] = BI[s, l]

    @njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _fused_kernel(rows, cb, tq, metric, W, wrap_bits, idx, acc_proto, out):
        """idx (M, S) int64 and out (M, N) int64 = wrap(sum_s tq[s, idx[:, s], :]).

        Accumulates in acc_proto's dtype (int32 or int64, integer overflow wraps); wrap_bits in 1..32
        applies a two's-complement wrap to that many bits at the end (0: none).
        """
        M = rows.shape[0]
        S, c, v = cb.shape
        N = tq.shape[2]
        nblk = (M + ROW_BLOCK - 1) // ROW_BLOCK
        for blk in prange(nblk):
            m0 = blk * ROW_BLOCK
            mb = min(ROW_BLOCK, M - m0)
            X, E, P, Q, D, best = _scratch(v, W, c)
            BI = np.empty((S, ROW_BLOCK), np.int32)
            A = np.zeros((ROW_BLOCK, N), acc_proto.dtype)
            for s in range(S):
                _encode_block(rows, m0, mb, s, cb, metric, W, X, E, P, Q, D, best, BI)
            for l in range(mb):
                for s in range(S):
                    idx[m0 + l, s] = BI[s, l]
            _lookup_rows(BI, tq, A, mb)
            _store_acc(A, out, m0, mb, wrap_bits)

    @njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _lookup_kernel(idx, tq, wrap_bits, acc_proto, out):
        M, S = idx.shape
        N = tq.shape[2]
        nblk = (M + ROW_BLOCK - 1) // ROW_BLOCK
        for blk in prange(nblk):
            m0 = blk * ROW_BLOCK
            mb = min(ROW_BLOCK, M - m0)
            BI = np.empty((S, ROW_BLOCK), np.int32)
            for l in range(mb):
                for s in range(S):
                    BI[s, l] = idx[m0 + l, s]
            A = np.zeros((ROW_BLOCK, N), acc_proto.dtype)
            _lookup_rows(BI, tq, A, mb)
            _store_acc(A, out, m0, mb, wrap_bits)

    @njit(cache=True, fastmath=False, nogil=True)
    def _probe_sums(E, W):
        v, L = E.shape
        B = ROW_BLOCK
        P = np.empty((4, max(W, 1), B), np.float32)
        Q = np.empty(B, np.float32)
        out = np.empty(L, np.float32)
        D = np.empty(B, np.float32)
        Eb = np.empty((v, B), np.float32)
        for l0 in range(0, L, B):
            mb = min(B, L - l0)
            for k in range(v):
                for l in range(mb):
                    Eb[k, l] = E[k, l0 + l]
            _order_sum(Eb, v, W, mb, P, Q, D)
            for l in range(mb):
                out[l0 + l] = D[l]
        return out


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
            if all(np.array_equal(_probe_sums(np.ascontiguousarray(e.numpy().T), W), want)
                   for e, want in tests):
                _SUM_WIDTH = W
                break
        else:
            raise RuntimeError("lutnb.native: could not reproduce PyTorch's float32 sum order on this "
                               "machine; set LUTNB_NATIVE=0")
    return _SUM_WIDTH


# ------------------------------------------------------------------------------------------------
# Python entry points
# ------------------------------------------------------------------------------------------------
def match_threads() -> None:
    n = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def require() -> None:
    if numba is None:
        raise RuntimeError(unavailable_reason())


def as_f32(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach()
        if a.device.type != "cpu":
            raise ValueError("lutnb.native runs on CPU tensors only")
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
        _encode_kernel(rows, as_f32(codebooks), METRIC_CODES[metric], width_for(metric, v), idx)
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
        _fused_kernel(rows, cb, tq, METRIC_CODES[metric], width_for(metric, v), wrap_bits, idx, proto, out)
    elif M and S:
        _encode_kernel(rows, cb, METRIC_CODES[metric], width_for(metric, v), idx)
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
        _lookup_kernel(idx_np, t, wrap_bits, proto, out)
    acc = torch.from_numpy(out)
    return wrap(acc, acc_bits) if post_wrap else acc



