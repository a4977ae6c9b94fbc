"""The LUT GEMM, written to be read: build tables, encode, look up and add.

``Y = X W^T + b`` with X (M, K), W (N, K). Split K into S = ceil(K / v) sub-spaces of length v (zero
padding the last); sub-space s has a codebook C_s of c centroids (c, v).

1. ``build_tables``: T_s[j, n] = C_s[j] . W[n, s]   (offline: the weights are fixed)
2. ``encode_reference``: idx[m, s] = argmin_j d(X[m, s], C_s[j])   (the CCM)
3. ``lookup_add``: Y[m, n] = sum_s T_s[idx[m, s], n] + b[n]   (the IMM: no multiplications)

Plain loops, one obvious line per formula: slow on purpose. This is the reference that the fast paths
(`lutnb.vq.distances.encode`, the LUT layers, `lutnb.deploy.engine`, the numba and C kernels) are tested
against, and the code notebook 01 teaches from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..kernels.common import check_metric
from .error import LayerData, vq_fit, vq_reconstruct


def split(x: torch.Tensor, v: int) -> torch.Tensor:
    """Rows (M, K) -> sub-vectors (M, S, v), zero-padding K up to S * v."""
    M, K = x.shape
    S = math.ceil(K / v)
    return torch.nn.functional.pad(x, (0, S * v - K)).reshape(M, S, v)


def distance(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """d(a, b) between two vectors of length v: squared L2, L1 or Chebyshev (max-abs)."""
    diff = a - b
    if metric == "l2":
        return (diff * diff).sum()
    if metric == "l1":
        return diff.abs().sum()
    return diff.abs().max()


def build_tables(codebooks: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Tables T (S, c, N): T[s, j, n] = codebooks[s, j] . weight[n, s-th sub-vector]."""
    S, c, v = codebooks.shape
    w = split(weight, v)  # (N, S, v)
    T = torch.zeros(S, c, weight.shape[0], dtype=codebooks.dtype)
    for s in range(S):
        for j in range(c):
            for n in range(weight.shape[0]):
                T[s, j, n] = (codebooks[s, j] * w[n, s]).sum()
    return T


def encode_reference(x: torch.Tensor, codebooks: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """Indices (M, S): the nearest centroid of every sub-vector (lowest index on ties)."""
    metric = check_metric(metric)
    S, c, v = codebooks.shape
    sub = split(x, v)
    idx = torch.zeros(x.shape[0], S, dtype=torch.long)
    for m in range(x.shape[0]):
        for s in range(S):
            best, best_j = None, 0
            for j in range(c):
                d = distance(sub[m, s], codebooks[s, j], metric)
                if best is None or d < best:
                    best, best_j = d, j
            idx[m, s] = best_j
    return idx


def lookup_add(idx: torch.Tensor, tables: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Y (M, N) = sum over sub-spaces of the looked-up table rows, plus the bias."""
    M, S = idx.shape
    N = tables.shape[2]
    y = torch.zeros(M, N, dtype=tables.dtype)
    for m in range(M):
        for s in range(S):
            y[m] += tables[s, idx[m, s]]
    return y if bias is None else y + bias


def lut_gemm(x: torch.Tensor, weight: torch.Tensor, codebooks: torch.Tensor, bias: torch.Tensor | None = None,
             metric: str = "l2") -> torch.Tensor:
    """The whole LUT GEMM: build the tables, encode x, look up and add."""
    return lookup_add(encode_reference(x, codebooks, metric), build_tables(codebooks, weight), bias)


def op_counts(M: int, K: int, N: int, v: int, c: int) -> dict:
    """Operations of one LUT GEMM against the dense GEMM it replaces (S = ceil(K / v) sub-spaces).

    ``distance_ops`` M*S*c*v (every sub-vector against every centroid, one op per element), ``lookup_adds``
    M*S*N (one table read and add per sub-space and output), ``dense_macs`` M*K*N."""
    for name, val in (("M", M), ("K", K), ("N", N), ("v", v), ("c", c)):
        if int(val) != val or val < 1:
            raise ValueError(f"op_counts: {name}={val!r}; give a positive integer")
    S = math.ceil(K / v)
    return {"S": S, "distance_ops": M * S * c * v, "lookup_adds": M * S * N, "dense_macs": M * K * N}


def table_cost(K: int, N: int, v: int, c: int, table_bits: int = 8, weight_bits: int = 8) -> dict:
    """Table bytes (S*c*N entries of `table_bits`) against weight bytes (K*N of `weight_bits`).

    The ratio is (c / v) * (table_bits / weight_bits) when v divides K: c=16, v=4, INT8 tables against INT8
    weights store 4x the weights' bytes."""
    for name, val in (("K", K), ("N", N), ("v", v), ("c", c), ("table_bits", table_bits),
                      ("weight_bits", weight_bits)):
        if int(val) != val or val < 1:
            raise ValueError(f"table_cost: {name}={val!r}; give a positive integer")
    S = math.ceil(K / v)
    table_bytes, weight_bytes = S * c * N * table_bits / 8, K * N * weight_bits / 8
    return {"S": S, "table_entries": S * c * N, "table_bytes": table_bytes, "weight_bytes": weight_bytes,
            "ratio": table_bytes / weight_bytes}


@dataclass
class LUTGemmExample:
    """A small LUT GEMM worked end to end (for the step-by-step table and figure 2)."""

    x: torch.Tensor  # (M, K) rows
    weight: torch.Tensor  # (N, K)
    codebooks: torch.Tensor  # (S, c, v)
    idx: torch.Tensor  # (M, S)
    tables: torch.Tensor  # (S, c, N)
    y_lut: torch.Tensor  # (M, N) = sum_s T_s[idx]
    y_exact: torch.Tensor  # (M, N)
    v: int
    c: int
    metric: str


def lut_gemm_example(data: LayerData, M: int = 6, K: int = 8, N: int = 5, v: int = 2, c: int = 4,
                     metric: str = "l2", seed: int = 0, min_nonzero: int | None = None) -> LUTGemmExample:
    """Cut a real small GEMM out of a layer (first K inputs, first N outputs), fit codebooks, build the tables.

    The M example rows are drawn among rows with at least `min_nonzero` non-zero entries (default K // 2):
    after a ReLU many rows are all zero, and an all-zero row teaches nothing (its output is 0 exactly).
    Vectorized (einsum, batched encode) for the notebook; tests/test_lutgemm.py holds it equal to the loops above."""
    g = torch.Generator().manual_seed(seed)
    K = min(K, data.K)
    rows_all = data.rows[:, :K]
    cb = vq_fit(rows_all[torch.randperm(data.M, generator=g)[:4000]], v, c, metric, seed=seed)
    need = K // 2 if min_nonzero is None else min_nonzero
    pool = torch.nonzero((rows_all != 0).sum(1) >= need).flatten()
    if len(pool) < M:
        raise ValueError(f"lut_gemm_example: only {len(pool)} rows of {data.name} have >= {need} non-zero entries "
                         f"among the first K={K}, M={M} asked; lower min_nonzero or M")
    x = rows_all[pool[torch.randperm(len(pool), generator=g)[:M]]]
    W = data.weight[:N, :K]
    S = cb.shape[0]
    Wp = torch.nn.functional.pad(W, (0, S * v - K)).reshape(W.shape[0], S, v)
    tables = torch.einsum("scv,nsv->scn", cb, Wp)
    _, idx = vq_reconstruct(x, cb, metric)
    y_lut = sum(tables[s, idx[:, s]] for s in range(S))
    return LUTGemmExample(x, W, cb, idx, tables, y_lut, x @ W.T, v, c, metric)
