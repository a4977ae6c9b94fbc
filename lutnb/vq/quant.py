"""Table quantization and integer look-up-accumulate, shared by the LUT layers and the integer engine.

Scale scheme (documented, [ours]): tables T (S, c, N) are quantized per output channel n, symmetrically,
to signed b-bit integers:

    qmax      = 2**(b-1) - 1
    scale[n]  = max_{s,j} |T[s, j, n]| / qmax        (1.0 where a channel's table is all zero)
    Tq[s,j,n] = clamp(round_half_even(T[s,j,n] / scale[n]), -qmax, qmax)

Inference accumulates integers, acc[m, n] = sum_s Tq[s, idx[m, s], n], in an accumulator of A bits
(two's-complement wrap-around, A = None for unbounded), then dequantizes in float32:

    y[m, n] = float32(acc[m, n]) * scale[n] + bias[n]

Both the PyTorch quantized mode and the engine compute exactly this, so their outputs are bit-identical.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..kernels.common import ACC_BITS_RANGE, check_acc_bits, wrap  # noqa: F401  (part of the table arithmetic API)

TABLE_BITS_RANGE = (4, 16)


def check_table_bits(bits: int, field: str = "table_bits") -> int:
    lo, hi = TABLE_BITS_RANGE
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{field}={bits!r} is out of range: use an integer from {lo} to {hi} "
                         "(8 is the default INT8 tables)")
    return bits


def int_dtype_for(bits: int):
    """Smallest signed numpy-compatible torch dtype that holds b-bit table entries."""
    return torch.int8 if bits <= 8 else torch.int16


def quantize_tables(tables: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(Tq int64 (S, c, N), scale float32 (N,)) for float tables (S, c, N); see the module docstring."""
    check_table_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    t = tables.detach().float()
    amax = t.abs().amax(dim=(0, 1))
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax)).float()
    tq = torch.round(t / scale).clamp_(-qmax, qmax).to(torch.int64)
    return tq, scale


def _exact_float_dtype(tq: torch.Tensor) -> torch.dtype:
    # float32 sums of integers are exact while every partial sum stays below 2**24
    S = tq.shape[0]
    bound = S * int(tq.abs().max().item() if tq.numel() else 0)
    return torch.float32 if bound < 2 ** 24 else torch.float64


def flat_tables(tq: torch.Tensor) -> torch.Tensor:
    """Tables (S, c, N) as a float matrix (S*c, N) whose integer sums are exact (float32 or float64)."""
    S, c, N = tq.shape
    return tq.reshape(S * c, N).to(_exact_float_dtype(tq))


def lookup_accumulate(idx: torch.Tensor, tq: torch.Tensor, acc_bits: int | None = None,
                      flat: torch.Tensor | None = None) -> torch.Tensor:
    """Fast path: acc (M, N) int64 = sum_s Tq[s, idx[:, s], :] via one embedding_bag(sum) over flat tables."""
    S, c, N = tq.shape
    if idx.dim() != 2 or idx.shape[1] != S:
        raise ValueError(f"idx must be (M, S={S}); got {tuple(idx.shape)}")
    if flat is None:
        flat = flat_tables(tq)
    if idx.shape[0] == 0:
        return torch.zeros(0, N, dtype=torch.int64, device=tq.device)
    offsets = torch.arange(S, device=idx.device) * c
    acc = F.embedding_bag(idx + offsets, flat, mode="sum")
    return wrap(acc.round().to(torch.int64), acc_bits)


def lookup_accumulate_reference(idx: torch.Tensor, tq: torch.Tensor, acc_bits: int | None = None) -> torch.Tensor:
    """Obvious path: loop over sub-spaces, gather integer rows, add in int64, wrap at the end."""
    S, c, N = tq.shape
    acc = torch.zeros(idx.shape[0], N, dtype=torch.int64, device=tq.device)
    for s in range(S):
        acc += tq[s].to(torch.int64)[idx[:, s]]
    return wrap(acc, acc_bits)


def dequantize(acc: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """float32(acc) * scale + bias, in float32, in that order."""
    y = acc.to(torch.float32) * scale.to(torch.float32)
    if bias is not None:
        y = y + bias.to(torch.float32)
    return y
