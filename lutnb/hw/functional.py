"""Functional simulation: an exported layer's output computed the way LUT-DLA computes it.

CCM: nearest-centroid encode (the distance maths of `lutnb.deploy.engine.encode_rows`). Index FIFO: indices
move in the CCM's order (per row tile, per sub-space, `ccus` rows per push) through a bounded queue of
`fifo_depth` entries, popped `lanes` at a time. IMM: integer look-ups and accumulation in the
LUT-Stationary order (row tile, column tile, sub-space), two's-complement wrap at `acc_bits`.
The result is bit-identical to `lutnb.deploy.engine.run_layer` (tested).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch

from ..deploy import engine
from ..kernels.common import check_acc_bits
from ..vq.functional import conv_output_size
from .config import LUTDLAConfig


def _wrap(acc: np.ndarray, bits: int | None) -> np.ndarray:
    if bits is None or bits >= 64:
        return acc
    half = 1 << (bits - 1)
    return ((acc + half) & ((1 << bits) - 1)) - half


def fifo_transfer(idx: np.ndarray, cfg: LUTDLAConfig, m_tile: int) -> tuple[np.ndarray, int]:
    """Push idx (M, S) through the modelled FIFO in CCM order.

    Returns (indices as the IMM receives them, max FIFO occupancy)."""
    M, S = idx.shape
    fifo: deque = deque()
    out = np.empty_like(idx)
    stream = []  # (row, s) in FIFO order
    for m0 in range(0, M, m_tile):
        rows = range(m0, min(M, m0 + m_tile))
        stream.extend((r, s) for s in range(S) for r in rows)
    push = pop = occupancy = 0
    total = len(stream)
    while pop < total:
        while push < total and len(fifo) + min(cfg.ccus, total - push) <= cfg.fifo_depth:
            for r, s in stream[push: push + cfg.ccus]:
                fifo.append(int(idx[r, s]))
            push = min(total, push + cfg.ccus)
        occupancy = max(occupancy, len(fifo))
        for _ in range(min(cfg.lanes, len(fifo))):
            r, s = stream[pop]
            out[r, s] = fifo.popleft()
            pop += 1
    return out, occupancy


def imm_accumulate(idx: np.ndarray, table_q: np.ndarray, cfg: LUTDLAConfig, m_tile: int,
                   acc_bits: int | None) -> np.ndarray:
    """LS-order look-up-accumulate: for row tile, for column tile, for sub-space: acc += T_s[idx, cols]."""
    M, S = idx.shape
    N = table_q.shape[2]
    tq = table_q.astype(np.int64)
    acc = np.zeros((M, N), dtype=np.int64)
    for m0 in range(0, M, m_tile):
        rows = slice(m0, min(M, m0 + m_tile))
        for n0 in range(0, N, cfg.table_tile):
            cols = slice(n0, min(N, n0 + cfg.table_tile))
            a = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=np.int64)
            for s in range(S):
                tile = tq[s, :, cols]                     # the table tile in the ping-pong buffer
                a = _wrap(a + tile[idx[rows, s]], acc_bits)
            acc[rows, cols] = a
    return acc


_FROM_CONFIG = "config"


def check_config_matches_layer(cfg: LUTDLAConfig, layer) -> None:
    """Refuse a config whose codebook geometry, metric or table width disagrees with the exported layer."""
    if not isinstance(cfg, LUTDLAConfig):
        raise TypeError(f"cfg={cfg!r}: must be a LUTDLAConfig (or None to build one from the layer)")
    bad = [f"{f}={getattr(cfg, f)!r} but the layer has {f}={getattr(layer, f)!r}"
           for f in ("c", "v", "metric", "table_bits") if getattr(cfg, f) != getattr(layer, f)]
    if bad:
        raise ValueError(f"LUTDLAConfig disagrees with layer {layer.name!r}: {'; '.join(bad)}. Build the config "
                         "from the layer: LUTDLAConfig(c=layer.c, v=layer.v, metric=layer.metric, "
                         "table_bits=layer.table_bits, ...), or pass cfg=None")


def simulate_layer_functional(layer, x: torch.Tensor, cfg: LUTDLAConfig | None = None,
                              acc_bits: int | None | str = _FROM_CONFIG) -> dict:
    """Run an `ExportedLayer` on input x through CCM -> FIFO -> IMM; returns indices, accumulators, output.

    `cfg` must agree with the layer on c, v, metric and table_bits (None: built from the layer).
    `acc_bits`: the accumulator width, by default the config's (`cfg.acc_bits`, 32 unless set); None for
    unbounded accumulators (no wrap-around); an explicit width must equal the `cfg.acc_bits` of a given cfg.
    """
    given = cfg is not None
    if cfg is None:
        cfg = LUTDLAConfig(c=layer.c, v=layer.v, metric=layer.metric, table_bits=layer.table_bits)
    check_config_matches_layer(cfg, layer)
    if isinstance(acc_bits, str) and acc_bits == _FROM_CONFIG:
        acc_bits = cfg.acc_bits
    else:
        check_acc_bits(acc_bits)
        if given and acc_bits is not None and acc_bits != cfg.acc_bits:
            raise ValueError(f"acc_bits={acc_bits} but cfg.acc_bits={cfg.acc_bits}: the two disagree; leave "
                             "acc_bits out (it follows the config), or set it in the config")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
    rows = engine.im2col(x, layer).float()
    idx = engine.encode_rows(rows, layer).cpu().numpy()            # CCM: nearest centroid per sub-vector
    M = idx.shape[0]
    m_tile = M if cfg.m_tile is None else max(1, min(cfg.m_tile, M))
    received, occupancy = fifo_transfer(idx, cfg, m_tile)
    acc = imm_accumulate(received, layer.table_q, cfg, m_tile, acc_bits)
    y = engine.dequantize(torch.from_numpy(acc), layer)
    if layer.kind == "conv2d":
        cv = layer.conv
        ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                                  tuple(cv["padding"]), tuple(cv["dilation"]))
        N = layer.out_features
        y = y.reshape(x.shape[0], ho * wo, N).transpose(1, 2).reshape(x.shape[0], N, ho, wo)
    else:
        y = y.reshape(*x.shape[:-1], layer.out_features)
    return {"indices": received, "acc": acc, "output": y, "fifo_max_occupancy": occupancy,
            "row_tiles": math.ceil(M / m_tile)}
