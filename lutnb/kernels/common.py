"""What every kernel agrees on: the metric names and codes, integer accumulator widths and wrap-around."""
from __future__ import annotations

import torch

METRICS = ("l2", "l1", "chebyshev")

# the code each compiled and numba kernel uses for a metric
METRIC_CODES = {"l2": 0, "l1": 1, "chebyshev": 2}


def check_metric(metric: str) -> str:
    """Return the normalised metric name or raise a ValueError that says what is allowed."""
    m = str(metric).lower()
    if m in ("linf", "cheb", "l_inf", "max"):
        m = "chebyshev"
    if m not in METRICS:
        raise ValueError(f"metric={metric!r} is not supported: use one of {METRICS} "
                         "('l2' = squared Euclidean, 'l1' = Manhattan, 'chebyshev' = max-abs)")
    return m


ACC_BITS_RANGE = (8, 64)


def check_acc_bits(bits: int | None, field: str = "acc_bits") -> int | None:
    if bits is None:
        return None
    lo, hi = ACC_BITS_RANGE
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{field}={bits!r} is out of range: use an integer from {lo} to {hi}, "
                         "or None for an unbounded accumulator")
    return bits


def wrap(acc: torch.Tensor, acc_bits: int | None) -> torch.Tensor:
    """Two's-complement wrap-around of int64 accumulators to acc_bits (identity for None or 64)."""
    if acc_bits is None or acc_bits >= 64:
        return acc
    half = 1 << (acc_bits - 1)
    return torch.remainder(acc + half, 1 << acc_bits) - half
