"""Analyses for notebook 04: loop orders (figure 6) and the table-swap timeline (figure 7)."""
from __future__ import annotations

import math

import pandas as pd

from .config import LUTDLAConfig
from .lut_sim import plan_layer, simulate_plan
from .workloads import GemmWorkload


def _check(work, cfg) -> None:
    if not isinstance(work, GemmWorkload):
        raise TypeError(f"work must be a GemmWorkload, not {type(work).__name__}")
    if not isinstance(cfg, LUTDLAConfig):
        raise TypeError(f"cfg must be a LUTDLAConfig, not {type(cfg).__name__}")


def loop_order_traffic(work: GemmWorkload, cfg: LUTDLAConfig, row_tile: int = 256) -> pd.DataFrame:
    """Memory traffic and table reloads of one layer under four loop orders (closed form, [ours]).

    LS: for column tile, for sub-space: load the table tile once, stream all M rows (indices encoded
    once, re-read from the index buffer: index reuse). LS without index reuse: the same, re-encoding the
    activations for every column tile. OS (output-stationary): for row tile, for column tile, for
    sub-space: accumulators stay, tables reload per row tile. IS (index-stationary): for row tile, for
    sub-space, for column tile: indices stay, tables reload per row tile, all N accumulators live.
    """
    _check(work, cfg)
    if isinstance(row_tile, bool) or not isinstance(row_tile, int) or row_tile < 1:
        raise ValueError(f"row_tile={row_tile!r}: must be an integer >= 1 (rows per row tile)")
    M, K, N, c, b = work.M, work.K, work.N, cfg.c, cfg.table_bits
    S, n_tiles = math.ceil(K / cfg.v), math.ceil(N / cfg.table_tile)
    m_tiles = math.ceil(M / min(row_tile, M))
    tables_once = S * n_tiles
    acc_b = cfg.acc_bits / 8
    rows = []
    for order, loads, encodes, acc_entries in (
        ("LS", tables_once, M * S, M * min(cfg.table_tile, N)),
        ("LS, no index reuse", tables_once, M * S * n_tiles, M * min(cfg.table_tile, N)),
        ("OS", tables_once * m_tiles, M * S, min(row_tile, M) * min(cfg.table_tile, N)),
        ("IS", tables_once * m_tiles, M * S, min(row_tile, M) * N),
    ):
        table_bytes = loads / tables_once * S * c * N * b / 8
        act_bytes = encodes * cfg.v * cfg.activation_bits / 8
        idx_bytes = M * S * n_tiles * cfg.index_bits / 8
        rows.append({"order": order, "table_loads": loads, "table_reloads": loads - tables_once,
                     "dram_table_bytes": table_bytes, "activation_read_bytes": act_bytes,
                     "index_read_bytes": idx_bytes, "ccm_encodes": encodes,
                     "accumulator_bytes": acc_entries * acc_b,
                     "total_traffic_bytes": table_bytes + act_bytes + idx_bytes})
    return pd.DataFrame(rows)


def table_swap_timeline(work: GemmWorkload, cfg: LUTDLAConfig) -> tuple[pd.DataFrame, dict]:
    """Per table tile: DMA start/end and IMM start/end cycles (fast engine), plus the layer's timing."""
    _check(work, cfg)
    trace: list = []
    plan = plan_layer(work, cfg, None, 0)
    timing = simulate_plan(plan, cfg, trace)
    return pd.DataFrame(trace), timing
