"""The closed-form cycle and traffic model of the LUT-DLA machine that the sweeps use.

`lutnb.hw.simulate_network` takes about a second per ResNet-18 config, so sweeps use `analytic_lut_totals`,
a closed form of the same machine (vectorized over design points): access counts are exact; cycles follow
the simulator's LUT-Stationary schedule phase by phase (steady-state period per table tile, first-load and
CCM-fill start-up, CCM run-ahead bounded by the FIFO, expected bank-conflict cycles). `tests/test_dse.py`
checks it against `simulate_network` on sampled configs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..hw import SystolicConfig
from ..hw.traffic import cdiv, link_cycles, lut_traffic, nbytes
from . import cost
from .workloads import Workload


@lru_cache(maxsize=256)
def expected_bank_extra(lanes: int, c: int, banks: int, samples: int = 4000) -> float:
    """Mean extra cycles per look-up group from bank conflicts, for uniform indices (0 when banks >= c)."""
    if banks >= c:
        return 0.0
    rng = np.random.default_rng(0)
    idx = rng.integers(0, c, size=(samples, lanes))
    present = np.zeros((samples, c), dtype=bool)
    present[np.arange(samples)[:, None], idx] = True
    per_bank = np.stack([present[:, b::banks].sum(1) for b in range(banks)], 1)
    return float((per_bank.max(1) - 1).mean())


def layer_cycles(M, K, N, p):
    """Cycles of one GEMM for design-point arrays `p` (dict of numpy arrays); see the module docstring."""
    v, c, L, P, Tn = p["v"], p["c"], p["ccus"], p["lanes"], p["table_tile"]
    G = p.get("adder_fanin", 1)
    S = cdiv(cdiv(K, v), G)                       # accumulator updates per output (sub-space groups)
    Tm = np.minimum(p["m_tile"], M)
    mt = cdiv(M, Tm)
    last_r = M - (mt - 1) * Tm
    nt = cdiv(N, Tn)
    last_w = N - (nt - 1) * Tn
    bw, tb, db = p["offchip_bytes_per_cycle"], p["table_bits"], p["double_buffer"]

    def load(w):
        return np.maximum(1, np.ceil(G * np.ceil(c * w * tb / 8) / bw))

    lf, ll = load(np.minimum(Tn, N)), load(last_w)
    l0 = np.where(nt > 1, lf, ll)
    x = p["bank_extra"]

    def block(r, ahead):
        g = np.ceil(cdiv(r * G, P) * (1 + x))
        cc = cdiv(r * G, L)
        per_f = np.where(db, np.maximum(g, lf), lf + g)
        per_l = np.where(db, np.maximum(g, ll), ll + g)
        rest = S * per_f * np.maximum(nt - 2, 0) + np.where(nt > 1, S * per_l, 0)
        imm0 = S * np.where(db, np.maximum(g, l0), l0 + g)
        return np.maximum(imm0, S * cc - ahead) + rest, rest

    fifo_ahead = p["fifo_depth"] / L
    full0, rest_full = block(Tm, 0)
    full_next, _ = block(Tm, np.minimum(rest_full, fifo_ahead))
    last, _ = block(last_r, np.where(mt > 1, np.minimum(rest_full, fifo_ahead), 0))
    total = np.where(mt > 1, full0 + (mt - 2).clip(0) * full_next + last, last)
    g0, cc0 = np.ceil(cdiv(Tm * G, P) * (1 + x)), cdiv(Tm * G, L)
    start = np.where(db, np.maximum(l0, c) + np.maximum(g0, cc0) - np.maximum(np.maximum(g0, l0), cc0),
                     np.maximum(0, c - l0))
    return total + start


def analytic_lut_totals(workload: Workload, p: dict) -> dict:
    """Network totals (the `simulate_network` fields the cost model needs) for design-point arrays `p`.

    `p` holds arrays (or scalars) for v, c, ccus, lanes, table_tile, table_bits, m_tile, fifo_depth,
    offchip_bytes_per_cycle, double_buffer, acc_bits, activation_bits, bank_extra and (optional) adder_fanin.
    Traffic comes from `lutnb.hw.traffic` (the simulator's own rule); each layer lasts at least its link time.
    """
    v, c = p["v"], p["c"]
    bits = {"index": np.maximum(1, np.ceil(np.log2(c))), "table": p["table_bits"],
            "activation": p["activation_bits"], "acc": p["acc_bits"]}
    tot = {k: 0 for k in ("total_cycles", "distance_ops", "lookup_adds", "lookups", "sram_bytes", "dram_bytes",
                          "link_cycles")}
    for op in cost.LUT_OPERAND_BUFFER:
        tot[f"sram_{op}_bytes"] = 0
        tot[f"dram_{op}_bytes"] = 0
    max_S = 0
    for w, rep in workload.lut_layers:
        M, K, N = w.M, w.K, w.N
        S = cdiv(K, v)
        max_S = np.maximum(max_S, S)
        mt = cdiv(M, np.minimum(p["m_tile"], M))
        nt = cdiv(N, p["table_tile"])
        layer_dram = 0
        for op, (b, sram, dram) in lut_traffic(M, K, N, v, c, mt, nt, p.get("adder_fanin", 1), bits).items():
            sb, db_ = nbytes(sram, b), nbytes(dram, b)
            layer_dram = layer_dram + db_
            tot[f"sram_{op}_bytes"] = tot[f"sram_{op}_bytes"] + sb * rep
            tot[f"dram_{op}_bytes"] = tot[f"dram_{op}_bytes"] + db_ * rep
            tot["sram_bytes"] = tot["sram_bytes"] + sb * rep
            tot["dram_bytes"] = tot["dram_bytes"] + db_ * rep
        tot["distance_ops"] = tot["distance_ops"] + M * S * c * v * rep
        tot["lookup_adds"] = tot["lookup_adds"] + M * S * N * rep
        tot["lookups"] = tot["lookups"] + M * S * nt * rep
        link = link_cycles(layer_dram, p["offchip_bytes_per_cycle"])
        tot["link_cycles"] = tot["link_cycles"] + link * rep
        tot["total_cycles"] = tot["total_cycles"] + np.maximum(layer_cycles(M, K, N, p), link) * rep
    tot["max_S"] = max_S
    return tot


@lru_cache(maxsize=64)
def dense_unit_totals(workload: Workload, unit: SystolicConfig) -> dict:
    """Traffic and cycle totals of the workload's dense layers on the dense unit `unit`."""
    tot: dict = {}
    for w, rep in workload.dense_layers:
        for k, val in cost.dense_traffic(w.M, w.K, w.N, unit).items():
            tot[k] = tot.get(k, 0) + val * rep
    return tot


def max_subspaces(workload: Workload, v: int) -> int:
    """The most sub-spaces (K / v, rounded up) of any LUT layer: sizes the index and codebook buffers."""
    return max(cdiv(w.K, v) for w, _ in workload.lut_layers)


def table_bytes(workload: Workload, v, c, table_bits):
    """Bytes of all LUT layers' tables (scalars or arrays of v, c, table_bits)."""
    return sum(cdiv(w.K, v) * c * w.N * table_bits / 8 * r for w, r in workload.lut_layers)
