"""Dense baselines for the comparisons: a WS systolic array per precision, matched to a LUT-DLA design at equal
area or equal throughput on the same off-chip link, and the LUT-DLA / baseline ratios in both accountings
(core: compute + on-chip memory + leakage; system: + DRAM). Re-exported by `lutnb.codesign.dse`."""
from __future__ import annotations

import math
import numbers

import pandas as pd

from ..hw import SystolicConfig
from . import cost
from .workloads import Workload, workload_of

TECH45 = cost.Tech()      # the reference node, 45 nm


def evaluate_baseline(workload: Workload, precision: str = "int8", rows: int = 32, cols: int = 32,
                      clock_mhz: float = 500.0, sram_kb: int = 64, tech: cost.Tech = TECH45,
                      offchip_bytes_per_cycle: float = 16.0):
    """(summary, breakdown) of a dense WS systolic MAC array running every GEMM of the workload, its cycles
    limited by the same off-chip link rule as LUT-DLA's (`lutnb.hw.traffic.link_bound`)."""
    workload = workload_of(workload)
    cost.check_precision(precision)
    cfg = SystolicConfig(rows=rows, cols=cols, dataflow="ws", ifmap_sram_kb=sram_kb, filter_sram_kb=sram_kb,
                         ofmap_sram_kb=sram_kb, clock_mhz=clock_mhz, offchip_bytes_per_cycle=offchip_bytes_per_cycle)
    tot: dict = {}
    for w, rep in zip(workload.layers, workload.repeats):
        for k, val in cost.dense_traffic(w.M, w.K, w.N, cfg, precision).items():
            tot[k] = tot.get(k, 0) + val * rep
    energy = cost.dense_energy(cfg, precision, tot, tech)
    area = cost.dense_area(cfg, precision, tech)
    summary = cost.summarize(energy, area, tot["total_cycles"], clock_mhz, workload.ops, tech)
    summary.update(precision=precision, rows=rows, cols=cols, clock_mhz=clock_mhz, node_nm=tech.node_nm,
                   sram_kb=3 * sram_kb, offchip_bytes_per_cycle=offchip_bytes_per_cycle,
                   utilization=tot["macs"] / (tot["total_cycles"] * rows * cols),
                   compute_cycles=tot["compute_cycles"], link_cycles=tot["link_cycles"])
    return summary, cost.breakdown(energy, area, summary)


def matched_baseline(workload: Workload, precision: str, target: float, by: str = "area",
                     clock_mhz: float = 500.0, sram_kb: int = 64, tech: cost.Tech = TECH45,
                     sizes=tuple(range(4, 257, 2)), offchip_bytes_per_cycle: float = 16.0) -> dict:
    """The square array (n x n) whose area (by="area", mm^2) or throughput (by="throughput", TOPS) on the
    workload is closest to `target` (in log ratio), on the same off-chip link."""
    if by not in ("area", "throughput"):
        raise ValueError(f"by={by!r}: use 'area' or 'throughput'")
    cost.check_precision(precision)
    if isinstance(target, bool) or not isinstance(target, numbers.Real) or not (math.isfinite(target) and target > 0):
        raise ValueError(f"target={target!r}: must be a finite number > 0 (the {by} to match)")
    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes is empty: give the array sizes n (n x n) to try, e.g. range(4, 257, 2)")
    key = "area_mm2" if by == "area" else "tops"
    best = None
    for n in sizes:
        s, _ = evaluate_baseline(workload, precision, n, n, clock_mhz, sram_kb, tech, offchip_bytes_per_cycle)
        gap = abs(math.log(s[key] / target))
        if best is None or gap < best[0]:
            best = (gap, s)
    return best[1]


BASELINES = ("int8", "int4", "fp16")
PAPER_POWER_RANGE = (1.4, 7.0)     # [paper] power-efficiency gain over baselines
PAPER_AREA_RANGE = (1.5, 146.1)    # [paper] area-efficiency gain


ACCOUNTINGS = ("core", "system")


def compare_with_baselines(points: dict, workload: Workload, baselines=BASELINES, modes=("area", "throughput"),
                           tech: cost.Tech = TECH45, sram_kb: int = 64) -> pd.DataFrame:
    """Ratios LUT-DLA / baseline of TOPS/W (core and system accountings) and TOPS/mm^2, for each named point,
    baseline and matching mode (equal area, equal throughput).

    `points`: {label: summary dict from evaluate_design}. Baselines run at the point's clock and off-chip link.
    `power_eff_ratio` is the system ratio (kept for older callers); `power_eff_ratio_core` the on-chip one.
    """
    rows = []
    for label, s in points.items():
        link = s.get("offchip_bytes_per_cycle", 16.0)
        for prec in baselines:
            for mode in modes:
                target = s["area_mm2"] if mode == "area" else s["tops"]
                b = matched_baseline(workload, prec, target, mode, s["clock_mhz"], sram_kb, tech,
                                     offchip_bytes_per_cycle=link)
                rows.append({"workload": workload.name, "point": label, "baseline": prec, "matched_by": mode,
                             "baseline_array": f"{b['rows']}x{b['cols']}", "lut_area_mm2": s["area_mm2"],
                             "base_area_mm2": b["area_mm2"], "lut_tops": s["tops"], "base_tops": b["tops"],
                             "lut_utilization": s.get("utilization", float("nan")),
                             "base_utilization": b["utilization"],
                             "lut_tops_per_w_core": s["tops_per_w_core"], "base_tops_per_w_core": b["tops_per_w_core"],
                             "lut_tops_per_w_system": s["tops_per_w"], "base_tops_per_w_system": b["tops_per_w"],
                             "lut_tops_per_w": s["tops_per_w"], "base_tops_per_w": b["tops_per_w"],
                             "lut_tops_per_mm2": s["tops_per_mm2"], "base_tops_per_mm2": b["tops_per_mm2"],
                             "power_eff_ratio_core": s["tops_per_w_core"] / b["tops_per_w_core"],
                             "power_eff_ratio_system": s["tops_per_w"] / b["tops_per_w"],
                             "power_eff_ratio": s["tops_per_w"] / b["tops_per_w"],
                             "area_eff_ratio": s["tops_per_mm2"] / b["tops_per_mm2"]})
    df = pd.DataFrame(rows)
    for acc in ACCOUNTINGS:
        df[f"power_in_paper_range_{acc}"] = df[f"power_eff_ratio_{acc}"].between(*PAPER_POWER_RANGE)
    df["power_in_paper_range"] = df["power_in_paper_range_system"]
    df["area_in_paper_range"] = df["area_eff_ratio"].between(*PAPER_AREA_RANGE)
    return df


def efficiency_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, matched_by, baseline): power-efficiency ratio core and system, area-efficiency ratio."""
    cols = ["point", "matched_by", "baseline", "baseline_array", "power_eff_ratio_core", "power_eff_ratio_system",
            "area_eff_ratio"]
    return cmp[cols].sort_values(["point", "matched_by", "baseline"]).reset_index(drop=True)


def ratio_range(df: pd.DataFrame, column: str) -> dict:
    """The min and max of a ratio column and which (point, baseline, matching) gives each end."""
    lo, hi = df.loc[df[column].idxmin()], df.loc[df[column].idxmax()]
    desc = lambda r: f"{r['point']} vs {r['baseline'].upper()} {r['baseline_array']} (equal {r['matched_by']})"
    return {"min": float(lo[column]), "max": float(hi[column]), "min_from": desc(lo), "max_from": desc(hi)}
