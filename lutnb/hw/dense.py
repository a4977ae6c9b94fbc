"""Dense systolic-array baselines (weight-, output-, input-stationary), cycle counts as in SCALE-Sim 3.0.0.

SCALE-Sim builds, per fold of the array, demand matrices whose row count is the fold's cycle count, and
reports `Total Cycles` = (rows of the OFMAP demand matrix) - 1 when no stalls occur (CALC bandwidth
mode). Its spatio-temporal mapping of a GEMM M x K x N (M output pixels, K window, N filters):

    ws: Sr = K, Sc = N, T = M   folds ceil(K/R) * ceil(N/C), each 2R + C + T - 2 cycles
    os: Sr = M, Sc = N, T = K   folds ceil(M/R) * ceil(N/C), each  R + C + T - 2 cycles
    is: Sr = K, Sc = M, T = N   folds ceil(K/R) * ceil(M/C), each 2R + C + T - 2 cycles

A WS layer whose partial sums (M x cols at acc_bits) would not fit the OFMAP SRAM is run as row tiles that
do (`dense_row_tile`), each one SCALE-Sim GEMM, weights re-fetched per tile: the rule LUT-DLA's accumulator
buffer follows, tables re-fetched per row tile. SRAM access counts follow SCALE-Sim's counters (including
its OS output count, which adds R + C per fold); partial-sum read-backs (`psums`) and DRAM traffic follow
`lutnb.hw.traffic`, the rule LUT-DLA's records use too: activations fetched once, weights once per row tile,
final outputs written once, partial sums spilled only when the reduction-inner output tile does not fit.
Off-chip time [ours]: the layer
lasts max(compute cycles, ceil(DRAM bytes / offchip_bytes_per_cycle)); compute_cycles is SCALE-Sim's
stall-free count and stall_offchip_bw the difference (0 where bandwidth is not the limit).
"""
from __future__ import annotations

import math

from .config import SystolicConfig
from .traffic import DENSE_OPERANDS, dense_traffic, link_bound, link_cycles, nbytes
from .workloads import GemmWorkload

OPERANDS_DENSE = DENSE_OPERANDS
DENSE_RECORD_FIELDS = ("layer", "M", "K", "N", "dataflow", "total_cycles", "compute_cycles", "stall_cycles",
                       "stall_offchip_bw", "link_cycles", "folds", "macs", "utilization", "latency_us",
                       *(f"{pre}{op}_{post}" for op in OPERANDS_DENSE
                         for pre, post in (("", "bits"), ("sram_", "words"), ("sram_", "bytes"), ("dram_", "words"),
                                           ("dram_", "bytes"))),
                       "dram_bytes", "sram_bytes")


def _check_dense_inputs(work, cfg) -> None:
    if not isinstance(cfg, SystolicConfig):
        raise TypeError(f"cfg={cfg!r}: must be a SystolicConfig")
    if work is not None and not isinstance(work, GemmWorkload):
        raise TypeError(f"workload {work!r}: must be a GemmWorkload (see lutnb.hw.extract_workloads), "
                        f"not {type(work).__name__}")


def systolic_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> dict:
    """Stall-free cycles of one GEMM on a rows x cols array (SCALE-Sim 3.0.0 `Total Cycles`)."""
    R, C = rows, cols
    if dataflow == "ws":
        folds_r, folds_c, per = math.ceil(K / R), math.ceil(N / C), 2 * R + C + M - 2
    elif dataflow == "os":
        folds_r, folds_c, per = math.ceil(M / R), math.ceil(N / C), R + C + K - 2
    elif dataflow == "is":
        folds_r, folds_c, per = math.ceil(K / R), math.ceil(M / C), 2 * R + C + N - 2
    else:
        raise ValueError(f"dataflow={dataflow!r}: use 'ws', 'os' or 'is'")
    folds = folds_r * folds_c
    return {"folds": folds, "fold_rows": folds_r, "fold_cols": folds_c, "cycles_per_fold": per,
            "total_cycles": folds * per - 1}


def systolic_sram_accesses(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> dict:
    """SRAM words read/written per operand, as SCALE-Sim counts them."""
    R, C = rows, cols
    if dataflow == "ws":
        return {"activations": math.ceil(N / C) * M * K, "weights": K * N,
                "outputs": math.ceil(K / R) * M * N}
    if dataflow == "os":
        folds = math.ceil(M / R) * math.ceil(N / C)
        return {"activations": math.ceil(N / C) * M * K, "weights": math.ceil(M / R) * K * N,
                "outputs": M * N + folds * (R + C)}
    if dataflow == "is":
        return {"activations": M * K, "weights": math.ceil(M / C) * K * N,
                "outputs": math.ceil(K / R) * M * N}
    raise ValueError(f"dataflow={dataflow!r}: use 'ws', 'os' or 'is'")


def dense_row_tile(M: int, N: int, cfg: SystolicConfig) -> int:
    """Rows per row tile of a WS layer: as many as keep the tile's partial sums (rows x min(cols, N) at acc_bits)
    in the OFMAP SRAM, the rule LUT-DLA's accumulator buffer follows (os/is: no row tiling, all M rows)."""
    if cfg.dataflow != "ws":
        return M
    cap = cfg.ofmap_sram_kb * 1024 * 8 // cfg.acc_bits
    return max(1, min(M, cap // min(cfg.cols, N)))


def _tiles(M: int, Tm: int) -> list:
    full, rem = divmod(M, Tm)
    return [(Tm, full)] + ([(rem, 1)] if rem else [])


def dense_compute(M: int, K: int, N: int, cfg: SystolicConfig) -> dict:
    """Stall-free cycles and SCALE-Sim SRAM counts of a layer run as row tiles, each one SCALE-Sim GEMM
    (one tile, the usual case where the partial sums fit, is exactly SCALE-Sim's run of the whole layer)."""
    Tm = dense_row_tile(M, N, cfg)
    out = {"total_cycles": 0, "folds": 0, "m_tiles": 0, "activations": 0, "weights": 0, "outputs": 0}
    for rows, count in _tiles(M, Tm):
        cyc = systolic_cycles(rows, K, N, cfg.rows, cfg.cols, cfg.dataflow)
        sram = systolic_sram_accesses(rows, K, N, cfg.rows, cfg.cols, cfg.dataflow)
        out["total_cycles"] += count * cyc["total_cycles"]
        out["folds"] += count * cyc["folds"]
        out["m_tiles"] += count
        for op in ("activations", "weights", "outputs"):
            out[op] += count * sram[op]
    out["row_tile"] = Tm
    return out


def dense_layer_traffic(M: int, K: int, N: int, cfg: SystolicConfig) -> dict:
    """{operand: (bits, sram words, dram words)} of one GEMM on the array (`lutnb.hw.traffic` rules)."""
    comp = dense_compute(M, K, N, cfg)
    cap = cfg.ofmap_sram_kb * 1024 * 8 // cfg.acc_bits
    return {op: tuple(int(x) for x in t) for op, t in dense_traffic(
        M, K, N, cfg.rows, cfg.cols, cfg.dataflow, 8 * cfg.word_bytes, cfg.acc_bits, comp, cap,
        m_tiles=comp["m_tiles"], row_tile=comp["row_tile"]).items()}


def simulate_dense_layer(work: GemmWorkload, cfg: SystolicConfig) -> dict:
    """One layer on a systolic array: cycles (bandwidth-limited by the link), traffic per operand, utilization."""
    _check_dense_inputs(work, cfg)
    cyc = dense_compute(work.M, work.K, work.N, cfg)
    traffic = dense_layer_traffic(work.M, work.K, work.N, cfg)
    rec = {"layer": work.name, "M": work.M, "K": work.K, "N": work.N, "dataflow": cfg.dataflow}
    for op in OPERANDS_DENSE:
        bits, sram, dram = traffic[op]
        rec[f"{op}_bits"] = bits
        rec[f"sram_{op}_words"] = sram
        rec[f"sram_{op}_bytes"] = int(nbytes(sram, bits))
        rec[f"dram_{op}_words"] = dram
        rec[f"dram_{op}_bytes"] = int(nbytes(dram, bits))
    rec["dram_bytes"] = sum(rec[f"dram_{op}_bytes"] for op in OPERANDS_DENSE)
    rec["sram_bytes"] = sum(rec[f"sram_{op}_bytes"] for op in OPERANDS_DENSE)
    compute = cyc["total_cycles"]
    link = int(link_cycles(rec["dram_bytes"], cfg.offchip_bytes_per_cycle))
    total, stall = (int(x) for x in link_bound(compute, link))
    rec.update(total_cycles=total, compute_cycles=compute, stall_cycles=stall, stall_offchip_bw=stall,
               link_cycles=link, folds=cyc["folds"], macs=work.macs,
               utilization=work.macs / (total * cfg.rows * cfg.cols), latency_us=total / cfg.clock_mhz)
    return {k: rec[k] for k in DENSE_RECORD_FIELDS}


def simulate_dense_network(workloads: list[GemmWorkload], cfg: SystolicConfig):
    """Every layer on the array: (DataFrame one row per layer, totals dict).

    An empty list is a valid, empty network: no rows, totals of zero (utilization 0.0), as `simulate_network`.
    """
    import pandas as pd

    _check_dense_inputs(None, cfg)
    if isinstance(workloads, (GemmWorkload, str, bytes)) or not hasattr(workloads, "__iter__"):
        raise TypeError(f"workloads must be a list of GemmWorkload, not {type(workloads).__name__}; "
                        "wrap a single layer in a list")
    df = pd.DataFrame([simulate_dense_layer(w, cfg) for w in workloads], columns=list(DENSE_RECORD_FIELDS))
    totals = {k: int(df[k].sum()) for k in df.columns if k.endswith(("_cycles", "_words", "_bytes", "_bw"))}
    totals["macs"] = int(df["macs"].sum())
    cycles = totals["total_cycles"]
    totals["utilization"] = totals["macs"] / (cycles * cfg.rows * cfg.cols) if cycles else 0.0
    totals["latency_ms"] = cycles / cfg.clock_mhz / 1e3
    return df, totals
