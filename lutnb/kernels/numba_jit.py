"""The numba-compiled kernels themselves (compiled on first use, cached on disk).

Their Python entry points, shapes and exactness contract are in `lutnb.kernels.numba_kernels`; nothing else
calls these directly. When numba does not import, `numba` is None and none of the kernels exist.
"""
from __future__ import annotations

import os

import numpy as np

ROW_BLOCK = 64  # rows per parallel work item (their accumulators and sub-vectors stay in L1)

# numba's default OpenMP layer spins its idle workers, and so does the OpenMP runtime inside torch: on a small
# machine the two fight for the cores (measured: a plain fp32 training step went from 30 ms to 450 ms once the
# kernels had run). The workqueue layer parks idle threads. Set NUMBA_THREADING_LAYER yourself to override.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


try:  # numba is optional: everything here degrades to "not available"
    import numba
    from numba import njit, prange

    NUMBA_ERROR: str | None = None
except Exception as e:  # pragma: no cover - exercised only where numba is missing or broken
    numba = None
    NUMBA_ERROR = f"{type(e).__name__}: {e}"


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

    # one function on purpose (~100 lines): numba compiles it into the row-block loops of the kernels below,
    # and the three metrics' branches stay inline so each loop vectorizes; a split would add calls per sub-vector
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
    def encode_kernel(rows, cb, metric, W, idx):
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
    def fused_kernel(rows, cb, tq, metric, W, wrap_bits, idx, acc_proto, out):
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
    def lookup_kernel(idx, tq, wrap_bits, acc_proto, out):
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
    def probe_sums(E, W):
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


