"""The "int8" encode: nearest centroid on an integer grid, an opt-in, cheaper definition of the CCM.

The default encode (``encode="float32"``) computes sum_k (x_k - c_k)^2 in float32 per centroid. For conv layers
with few output channels that costs more than the dense layer (ResNet-20's 16-channel stage: 36 sub-spaces x 16
centroids x 4 dims of float work per row, for 16 outputs). The int8 encode puts the layer's activations and
centroids on one integer grid and takes the nearest quantized centroid exactly, in integers:

    s      = max|codebooks of the layer| / 63   (float32; 1 when the codebooks are all zero)
    cq     = clamp(round(codebooks / s), -63, 63)           (int; 7 bits so that -2*cq fits int8)
    xq     = clamp(round(x / s), -127, 127)                 (float32 division, round half to even)
    code   = argmin_j sum_k (xq_k - cq_jk)^2                (exact integers, the lowest index on ties)

with K zero-padded to S*v (padded xq = 0, cq = 0). The look-up and dequantize are unchanged (the tables are
the float centroids' tables). On AVX-512 VNNI the compiled kernel evaluates ||cq||^2 - 2 xq.cq for 16 rows with
one vpdpbusd per centroid (lutgemm.c, lutnb_fused_q8; v <= 4). `encode_rows_reference` is the plain definition
(the reference engine uses it: ``IntegerEngine(..., encode="int8")``); the fast path equals it bit for bit
(tests/test_inference.py). It changes which codes some rows get: measure accuracy before using it
(docs/cpu-inference.md has the digits numbers).
"""
from __future__ import annotations

import numpy as np
import torch

ENCODES = ("float32", "int8")
CQ_MAX = 63
XQ_MAX = 127


def check_encode(encode: str) -> str:
    if encode not in ENCODES:
        raise ValueError(f"encode={encode!r}: use one of {ENCODES} ('float32': the exact float32 distances, the "
                         "default; 'int8': nearest centroid on an integer grid, see lutnb.deploy.q8)")
    return encode


def grid(layer) -> dict:
    """The layer's integer grid, cached on the layer: scale s (float32), cq (S, c, v) int64, and the kernel's
    packed c2 (S, c) uint32 / cinit (S, c) int32 when v <= 4."""
    cache = layer.runtime_cache
    if "q8" not in cache:
        cb = np.asarray(layer.codebooks, dtype=np.float32)
        m = np.float32(np.abs(cb).max()) if cb.size else np.float32(0)
        s = np.float32(m / np.float32(CQ_MAX)) if m > 0 and np.isfinite(m) else np.float32(1)
        cq = torch.clamp(torch.round(torch.from_numpy(cb) / torch.tensor(s)), -CQ_MAX, CQ_MAX).to(torch.int64)
        g = {"s": s, "cq": cq}
        S, c, v = cq.shape
        if v <= 4:
            cq4 = torch.zeros(S, c, 4, dtype=torch.int64)
            cq4[..., :v] = cq
            g["c2"] = np.ascontiguousarray((-2 * cq4).to(torch.int8).numpy()).view(np.uint32).reshape(S, c)
            g["cinit"] = ((cq4 * cq4).sum(-1) + 256 * cq4.sum(-1)).to(torch.int32).numpy()
        cache["q8"] = g
    return cache["q8"]


def quantize(x: torch.Tensor, s) -> torch.Tensor:
    """xq = clamp(round(x / s), -127, 127) as float32 (NaN stays NaN)."""
    return torch.clamp(torch.round(x.float() / torch.tensor(np.float32(s))), -XQ_MAX, XQ_MAX)


def quantize_u8(x: torch.Tensor, s, out: torch.Tensor | None = None) -> torch.Tensor:
    """xq + 128 as uint8 (the kernel's activations); NaN becomes an arbitrary code (the caller masks NaN rows)."""
    q = quantize(x, s).nan_to_num_(0.0).add_(128)
    if out is None:
        return q.to(torch.uint8)
    out.copy_(q)
    return out


def encode_rows_reference(rows: torch.Tensor, layer) -> torch.Tensor:
    """Codes (M, S) int64 of rows (M, K) under the int8 encode: the plain definition (integers, argmin first)."""
    g = grid(layer)
    xq = quantize(rows, g["s"]).nan_to_num(0.0).to(torch.int64)
    if layer.K_padded != layer.in_features:
        xq = torch.nn.functional.pad(xq, (0, layer.K_padded - layer.in_features))
    xq = xq.reshape(xq.shape[0], layer.S, 1, layer.v)
    d = ((xq - g["cq"].unsqueeze(0)) ** 2).sum(-1)  # (M, S, c)
    return d.argmin(-1)
