"""The one place that decides which kernel runs: PyTorch, numba, or the compiled C kernel.

Every fast path in lutnb asks here; nothing else chooses a back end.

* Encoding (nearest centroid): CPU float32 inputs go to the compiled kernel where it applies (L1/L2 with
  v <= 4, Chebyshev with any v), else to numba; anything else (other dtypes or devices, or
  ``LUTNB_NATIVE=0``) returns None and the caller runs its PyTorch path (`lutnb.vq.distances.encode`).
* Fused encode + integer look-up (the integer engine): the compiled kernel for INT8 tables with int32
  accumulators, else numba.
* Quantized-table output of a LUT layer (``mode="quant"``): the compiled INT8 look-up with the dequantize
  fused, for tables of at most 8 bits (`quant_lookup`); else the caller's PyTorch path.
* Float table sums in training (`lutnb.vq.functional.TableSum`): the compiled kernel for CPU float32
  (`compiled_for_tensor` says whether it applies; the layer then calls it).

Switches: ``LUTNB_NATIVE=0`` turns numba and the compiled kernel off (pure PyTorch everywhere);
``LUTNB_CKERNEL=0`` turns only the compiled kernel off. Every back end meets the exactness contract of
`lutnb.kernels.numba_kernels`, and the tests hold each one equal to the PyTorch reference.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from . import compiled, numba_kernels
from .common import check_acc_bits, check_metric, wrap


def native_enabled() -> bool:
    """True when the native kernels (numba, and the compiled kernel where it applies) are on."""
    return numba_kernels.enabled()


def compiled_for(metric: str, v: int):
    """The compiled kernel's library when it applies to this metric and v, else None (numba path)."""
    if not compiled.enabled() or not compiled.can_encode(metric, v):
        return None
    return compiled.load()


def compiled_for_tensor(t: torch.Tensor):
    """The compiled kernel's library when the native path is on and t is a CPU float32 tensor, else None."""
    if t.device.type != "cpu" or t.dtype != torch.float32:
        return None
    if not (numba_kernels.enabled() and compiled.enabled()):
        return None
    return compiled.load()


def native_applies(x: torch.Tensor, codebooks: torch.Tensor) -> bool:
    """Whether encoding x (M, S, v) against codebooks runs natively: native on, CPU float32 inputs."""
    return (native_enabled() and x.device.type == "cpu" and codebooks.device.type == "cpu"
            and x.dtype == torch.float32 and codebooks.dtype == torch.float32 and x.dim() == 3)


def encode(x_sub, codebooks, metric: str = "l2") -> torch.Tensor:
    """Nearest-centroid indices (M, S) int64 of x_sub (M, S, v): the compiled kernel where it applies, else numba."""
    numba_kernels.require()
    metric = check_metric(metric)
    numba_kernels.check_encode_shapes(x_sub, codebooks)
    M, S, v = x_sub.shape
    lib = compiled_for(metric, v)
    if lib is None:
        return numba_kernels.native_encode(x_sub, codebooks, metric)
    rows = numba_kernels.as_f32(x_sub.reshape(M, S * v))
    return torch.from_numpy(compiled.encode(rows, numba_kernels.as_f32(codebooks), metric, lib=lib))


def try_encode(x: torch.Tensor, codebooks: torch.Tensor, metric: str) -> torch.Tensor | None:
    """`encode` for CPU float32 input when the native path is on; None where the caller's PyTorch path runs."""
    if x.device.type == "cpu" and codebooks.device.type == "cpu" and x.dtype == torch.float32 and native_enabled():
        return encode(x, codebooks.to(x.dtype), metric)
    return None


def fused(rows: np.ndarray, cb: np.ndarray, tq: np.ndarray, metric: str, acc_bits, plan=None,
          need_idx: bool = True, packed: dict | None = None):
    """(idx (M, S) or None, acc int64 (M, N)): encode and integer look-up in one pass.

    packed: the caller's cache for the compiled kernel's int8 tables ('tq8', 't4'), filled on first use;
    need_idx=False lets the compiled kernel skip writing the indices."""
    numba_kernels.check_fused_shapes(rows, cb, tq)
    v = cb.shape[2]
    proto, wrap_bits, post_wrap = plan if plan is not None else numba_kernels.acc_plan(tq, acc_bits)
    lib = compiled_for(metric, v) if proto.dtype == np.int32 else None
    if lib is not None:
        packed = compiled.pack_int8(tq, lib, packed if packed is not None else {})
        if packed["tq8"] is not None:  # INT8 tables: the compiled kernel
            idx_np, out = compiled.fused(rows, cb, packed["tq8"], metric, wrap_bits, t4=packed["t4"],
                                         need_idx=need_idx, lib=lib)
            acc = torch.from_numpy(out)
            if post_wrap:
                acc = wrap(acc, acc_bits)
            return (torch.from_numpy(idx_np) if idx_np is not None else None), acc
    return numba_kernels.fused_numba(rows, cb, tq, metric, acc_bits, (proto, wrap_bits, post_wrap))


def quant_lookup(idx: torch.Tensor, tq: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                 acc_bits: int | None, table_bits: int, packed: dict) -> torch.Tensor | None:
    """float32(wrap(sum_s tq[s, idx[:, s]])) * scale + bias from the compiled INT8 look-up, or None where it does
    not apply (not CPU float32, native off, or tables wider than 8 bits). packed: the caller's cache."""
    lib = compiled_for_tensor(scale)
    if lib is None or table_bits > 8:
        return None
    compiled.pack_int8(tq.numpy(), lib, packed)
    wrap_bits = acc_bits if acc_bits is not None and acc_bits < 32 else 0
    y = compiled.lookup(idx.numpy(), packed["tq8"], wrap_bits, t4=packed["t4"], scale=scale.numpy(),
                        bias=None if bias is None else bias.detach().float().numpy(), lib=lib)  # any float dtype
    return torch.from_numpy(y)


def fused_output(rows: np.ndarray, cb: np.ndarray, tq: np.ndarray, metric: str, plan: tuple, scale, bias,
                 packed: dict) -> torch.Tensor | None:
    """Dequantized output (M, N) float32 in one pass of the compiled kernel (encode, look-up, wrap, dequantize),
    or None where it does not apply (then `fused` + dequantize). plan: `numba_kernels.acc_plan(tq, acc_bits)`."""
    proto, wrap_bits, post_wrap = plan
    lib = compiled_for(metric, cb.shape[2]) if proto.dtype == np.int32 and not post_wrap else None
    if lib is None:
        return None
    packed = compiled.pack_int8(tq, lib, packed)
    if packed["tq8"] is None:
        return None
    if rows.ndim != 2 or rows.shape[1] > cb.shape[0] * cb.shape[2]:
        raise ValueError(f"rows must be (M, K<=S*v); got {rows.shape}")
    _, y = compiled.fused(rows, cb, packed["tq8"], metric, wrap_bits, t4=packed["t4"], need_idx=False, lib=lib,
                          scale=scale, bias=bias)
    return torch.from_numpy(y)


def fused_lut_gemm(rows, codebooks, tq, metric: str = "l2", acc_bits: int | None = 32,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx int64 (M, S), acc int64 (M, N)) for rows (M, K) with K <= S*v (zero-padded to S*v).

    idx equals `lutnb.vq.distances.encode` of the padded rows and acc equals
    ``lutnb.vq.quant.lookup_accumulate_reference(idx, tq, acc_bits)``.
    """
    numba_kernels.require()
    metric = check_metric(metric)
    check_acc_bits(acc_bits)
    cb = numba_kernels.as_f32(codebooks)
    t = numba_kernels.table_array(tq)
    return fused(numba_kernels.as_f32(rows), cb, t, metric, acc_bits)


def compile_all(metrics=("l2", "l1", "chebyshev")) -> float:
    """Compile (or load from cache) every kernel variant the engine uses; returns seconds taken."""
    t0 = time.perf_counter()
    g = np.random.default_rng(0)
    rows = g.standard_normal((70, 10)).astype(np.float32)
    cb = g.standard_normal((3, 4, 4)).astype(np.float32)
    tq = g.integers(-127, 128, (3, 4, 5)).astype(np.int16)
    for m in metrics:
        fused_lut_gemm(rows, cb, tq, m, 32)
        encode(torch.from_numpy(rows[:, :8].copy()).reshape(70, 2, 4), torch.from_numpy(cb[:2]), m)
    numba_kernels.native_lookup_accumulate(np.zeros((5, 3), np.int64), tq, None)
    numba_kernels.torch_sum_width()
    return time.perf_counter() - t0
