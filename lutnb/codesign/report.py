"""Tables and plain-words summaries of notebook 05: chosen design points, the accelerator table, component
groups, where LUT-DLA wins and loses against the dense baselines, and the results-JSON blocks."""
from __future__ import annotations

import pandas as pd

from . import balanced, cost, dse

BALANCED_LABEL = "balanced (DSE default)"
PARAM_COLS = ("v", "c", "metric", "table_bits", "ccus", "lanes", "table_tile", "table_buffer_kb", "acc_buffer_kb",
              "offchip_bytes_per_cycle", "clock_mhz")
ACCOUNTINGS = {"core": "power_eff_ratio_core", "system": "power_eff_ratio_system"}


def distance_pe_table(metrics=("l2", "l1", "chebyshev"), vs=(2, 4, 8, 16), bits=(4, 8, 16)) -> pd.DataFrame:
    """Energy (pJ) and area (um^2) of one distance PE for every (metric, v, activation bits)."""
    return pd.DataFrame([{"metric": m, "v": v, "bits": b, "energy_pj": e, "area_um2": a}
                         for m in metrics for v in vs for b in bits for e, a in [cost.distance_pe_total(m, v, b)]])


def chosen_points(sweep: pd.DataFrame, workload) -> dict:
    """The feasible points with the highest system TOPS/W and TOPS/mm^2, and the balanced design (evaluated)."""
    f = sweep[sweep["feasible"]]
    if f.empty:
        raise ValueError("no feasible point in the sweep: loosen the constraints (area, power, SRAM, accuracy)")
    bal = dse.evaluate_points(pd.DataFrame([{"point": 0, **balanced.BALANCED_DESIGN}]), workload).iloc[0]
    return {"max TOPS/W": f.loc[f["tops_per_w"].idxmax()], "max TOPS/mm2": f.loc[f["tops_per_mm2"].idxmax()],
            BALANCED_LABEL: bal}


def evaluate_chosen(sweeps: dict, workloads: dict) -> tuple[dict, dict, dict]:
    """Re-evaluate each workload's chosen points with the exact simulator.

    Returns three dicts keyed by (workload, label): the sweep row, the summary and the cost breakdown."""
    chosen, summaries, breakdowns = {}, {}, {}
    for name, df in sweeps.items():
        for label, row in chosen_points(df, workloads[name]).items():
            design = dse.design_from_params(row.to_dict())
            s, b = dse.evaluate_design(design, workloads[name], engine="simulate")
            chosen[(name, label)], summaries[(name, label)], breakdowns[(name, label)] = row, s, b
    return chosen, summaries, breakdowns


def design_table(chosen: dict, summaries: dict) -> pd.DataFrame:
    """One row per chosen point: its parameters, derived widths, accuracy, and sweep (analytic) vs exact cycles."""
    rows = []
    for (n, lbl), s in summaries.items():
        row = chosen[(n, lbl)]
        rows.append({"workload": n, "point": lbl, **{k: row[k] for k in PARAM_COLS},
                     "bits/act": row["bits_per_activation"], "adder_fanin": row["adder_fanin"],
                     "acc_storage": row["acc_storage"], "acc_bits": s["acc_bits"], "utilization": s["utilization"],
                     "stored accuracy": row["accuracy"] if is_stored_source(row["accuracy_source"]) else None,
                     "proxy (1 - rel. error)": None if is_stored_source(row["accuracy_source"]) else row["accuracy"],
                     "accuracy_source": row["accuracy_source"], "sweep cycles": row["cycles"],
                     "exact cycles": s["cycles"]})
    return pd.DataFrame(rows)


def accelerator_row(name: str, summary: dict, kind: str) -> dict:
    """One accelerator-table row (node, clock, area, core and system power and efficiency) from a summary."""
    return {"design": name, "kind": kind, "node (nm)": summary["node_nm"], "clock (MHz)": summary["clock_mhz"],
            "area (mm2)": summary["area_mm2"], "core power (W)": summary["power_core_w"],
            "system power (W)": summary["power_w"], "TOPS": summary["tops"], "utilization": summary["utilization"],
            "TOPS/W core": summary["tops_per_w_core"], "TOPS/W system": summary["tops_per_w"],
            "TOPS/mm2": summary["tops_per_mm2"]}


def accelerator_table(summaries: dict, baseline_summaries: dict) -> pd.DataFrame:
    """LUT-DLA chosen points and fixed 32x32 dense arrays side by side (`baseline_summaries[(wl, prec)]` =
    (summary, breakdown) from `dse.evaluate_baseline`)."""
    return pd.DataFrame([accelerator_row(f"LUT-DLA {lbl} ({n})", s, "LUT-DLA") for (n, lbl), s in summaries.items()]
                        + [accelerator_row(f"{prec.upper()} 32x32 ({n})", s, "dense")
                           for (n, prec), (s, _) in baseline_summaries.items()])


def component_groups(breakdown: pd.DataFrame) -> pd.DataFrame:
    """Sum a cost breakdown's area and power by component group (the name before the first underscore;
    all `dense_unit_*` parts form one group, "dense")."""
    g = breakdown["component"].str.replace(r"^(dense_unit)_.*", r"\1", regex=True).str.split("_").str[0]
    return breakdown.assign(group=g).groupby("group")[["area_mm2", "power_w"]].sum()


def wins_and_losses(comparisons: pd.DataFrame, workload: str, point: str = BALANCED_LABEL) -> pd.DataFrame:
    """One row per (baseline, matching): the three LUT-DLA / baseline ratios and whether LUT-DLA wins (> 1) in
    core power, system power and area efficiency."""
    sub = comparisons[(comparisons.workload == workload) & (comparisons.point == point)]
    if sub.empty:
        raise ValueError(f"no comparison rows for workload={workload!r}, point={point!r}")
    out = sub[["baseline", "matched_by", "power_eff_ratio_core", "power_eff_ratio_system", "area_eff_ratio"]].copy()
    for acc, col in ACCOUNTINGS.items():
        out[f"wins_power_{acc}"] = out[col] > 1
    out["wins_area"] = out["area_eff_ratio"] > 1
    return out.reset_index(drop=True)


def _names(rows) -> str:
    return ", ".join(f"{r.baseline.upper()} (equal {r.matched_by})" for r in rows.itertuples()) or "none"


def plain_words(comparisons: pd.DataFrame, summary: dict, breakdown: pd.DataFrame, workload: str,
                point: str = BALANCED_LABEL) -> str:
    """Where one LUT-DLA point wins and loses against every matched dense baseline, per accounting, in words
    built from the computed ratios."""
    wl = wins_and_losses(comparisons, workload, point)
    dram = float(breakdown.set_index("component")["energy_share"].filter(like="dram").sum())
    out = [f"{workload}, {point} ({summary['tops']:.2f} TOPS, {summary['area_mm2']:.2f} mm2, "
           f"lanes {summary['utilization']:.0%} busy):"]
    for acc, col in ACCOUNTINGS.items():
        win = wl[wl[f"wins_power_{acc}"]]
        lose = wl[~wl[f"wins_power_{acc}"]]
        out.append(f"  power efficiency, {acc} accounting: {wl[col].min():.2f}-{wl[col].max():.2f}x; "
                   f"wins against {_names(win)}; loses or ties against {_names(lose)}.")
    win, lose = wl[wl["wins_area"]], wl[~wl["wins_area"]]
    out.append(f"  area efficiency: {wl['area_eff_ratio'].min():.2f}-{wl['area_eff_ratio'].max():.2f}x; wins against "
               f"{_names(win)}; loses or ties against {_names(lose)}.")
    out.append(f"  DRAM is {dram:.0%} of this design's system energy.")
    return "\n".join(out)


def headline_vs(comparisons: pd.DataFrame, baseline: str = "int8") -> dict:
    """Over every compared LUT-DLA point: how many of the ratios against `baseline` exceed 1, per accounting."""
    sub = comparisons[comparisons.baseline == baseline]
    if sub.empty:
        raise ValueError(f"no comparison rows against baseline {baseline!r}")
    cols = {**ACCOUNTINGS, "area": "area_eff_ratio"}
    return {acc: {"wins": int((sub[col] > 1).sum()), "n": len(sub), "min": float(sub[col].min()),
                  "max": float(sub[col].max())} for acc, col in cols.items()}


def ratio_block(comparisons: pd.DataFrame, ranges: dict, workload: str,
                ratio_cols=("power_eff_ratio_core", "power_eff_ratio_system", "area_eff_ratio")) -> dict:
    """The results-JSON block of one workload's ratios: ranges, per-baseline maxima, counts inside the paper's
    ranges (`ranges[col]` = `dse.ratio_range(...)` of that workload)."""
    sub = comparisons[comparisons.workload == workload]
    out = {f"{col}_{k}": v for col in ratio_cols for k, v in ranges[col].items()}
    for prec in dse.BASELINES:
        s = sub[sub.baseline == prec]
        for col in ratio_cols:
            out[f"{col}_vs_{prec}_max"] = float(s[col].max())
    out["power_inside_paper_range_core"] = int(sub["power_in_paper_range_core"].sum())
    out["power_inside_paper_range_system"] = int(sub["power_in_paper_range_system"].sum())
    out["area_inside_paper_range"] = int(sub["area_in_paper_range"].sum())
    out["n_ratios"] = len(sub)
    return out


def accountings(comparisons: pd.DataFrame, summaries: dict, workload: str) -> list[dict]:
    """Both accountings for every compared design of one workload: each LUT-DLA point and each matched baseline."""
    sub = comparisons[comparisons.workload == workload]
    rows = [{"design": f"LUT-DLA {lbl}", "tops_per_w_core": s["tops_per_w_core"], "tops_per_w_system": s["tops_per_w"],
             "tops_per_mm2": s["tops_per_mm2"]} for (n, lbl), s in summaries.items() if n == workload]
    rows += [{"design": f"{r.baseline.upper()} {r.baseline_array} (equal {r.matched_by}, vs {r.point})",
              "tops_per_w_core": r.base_tops_per_w_core, "tops_per_w_system": r.base_tops_per_w_system,
              "tops_per_mm2": r.base_tops_per_mm2} for r in sub.itertuples()]
    return rows


def with_seed_spread(measured: pd.DataFrame, records) -> pd.DataFrame:
    """`measured` (from `balanced.measured_accuracy_points`) plus accuracy_std: the standard deviation of the
    stored accuracy over seeds for each (model, source, metric, v, c, table_bits); 0 where one seed is stored."""
    key = ["model", "source", "metric", "v", "c", "table_bits"]
    rows = [{"model": r.model, "source": r.source, "metric": r.metric, "v": r.v, "c": r.c,
             "table_bits": r.table_bits or 8, "accuracy": r.accuracy} for r in records if not r.is_proxy]
    if measured.empty or not rows:
        return measured.assign(accuracy_std=0.0)
    std = pd.DataFrame(rows).groupby(key)["accuracy"].std(ddof=1).fillna(0.0).rename("accuracy_std").reset_index()
    return measured.merge(std, on=key, how="left").fillna({"accuracy_std": 0.0})


def versus_table(comparisons: pd.DataFrame, baseline: str = "int8") -> pd.DataFrame:
    """LUT-DLA / `baseline` ratios of every compared point, one row per (workload, point, matching), in both
    power accountings and area: which points win (> 1) and which lose."""
    sub = comparisons[comparisons.baseline == baseline]
    if sub.empty:
        raise ValueError(f"no comparison rows against baseline {baseline!r}")
    cols = {"power_eff_ratio_core": "power, core", "power_eff_ratio_system": "power, system",
            "area_eff_ratio": "area"}
    return sub.set_index(["workload", "point", "matched_by"])[list(cols)].rename(columns=cols)


def is_stored_source(source: str) -> bool:
    """True where an `accuracy_source` is a stored (measured) test accuracy, False for the proxy or none."""
    return str(source).startswith("stored")


def with_accuracy_source(comparisons: pd.DataFrame, chosen: dict) -> pd.DataFrame:
    """`comparisons` plus the compared point's accuracy, accuracy_source and `measured_accuracy` (True where the
    accuracy is a stored test accuracy, False where it is the proxy), from `chosen[(workload, point)]`."""
    acc = {k: (float(r["accuracy"]), str(r["accuracy_source"])) for k, r in chosen.items()}
    keys = list(zip(comparisons["workload"], comparisons["point"]))
    missing = sorted({k for k in keys if k not in acc})
    if missing:
        raise KeyError(f"no chosen row for compared point(s) {missing}")
    src = [acc[k][1] for k in keys]
    return comparisons.assign(accuracy_or_proxy=[acc[k][0] for k in keys], accuracy_source=src,
                              measured_accuracy=[is_stored_source(s) for s in src])


def comparison_ratios(comparisons: pd.DataFrame, workload: str, measured: bool,
                      ratio_cols=("power_eff_ratio_core", "power_eff_ratio_system", "area_eff_ratio")) -> dict:
    """The `ratio_block` of one workload over only the points whose accuracy is stored (`measured=True`) or only
    the proxy-only points (`measured=False`); `comparisons` needs `measured_accuracy` (`with_accuracy_source`).
    With no such point: n_ratios 0, every range end None and the counts 0 (nothing is compared)."""
    sub = comparisons[(comparisons.workload == workload) & (comparisons["measured_accuracy"] == measured)]
    if sub.empty:
        out = {f"{col}_{k}": None for col in ratio_cols for k in ("min", "max", "min_from", "max_from")}
        out.update({f"{col}_vs_{prec}_max": None for prec in dse.BASELINES for col in ratio_cols})
        out.update(power_inside_paper_range_core=0, power_inside_paper_range_system=0, area_inside_paper_range=0,
                   n_ratios=0, points=[])
        return out
    ranges = {col: dse.ratio_range(sub, col) for col in ratio_cols}
    return {**ratio_block(sub, ranges, workload, ratio_cols), "points": sorted(set(sub["point"]))}


def range_words(block: dict, label: str, paper: bool = True) -> str:
    """One line with a `comparison_ratios` block's ranges, or a plain statement that it compares nothing;
    `paper=False` leaves out the count inside the paper's range (for points not compared with the paper)."""
    if not block["n_ratios"]:
        return f"{label}: no compared point (0 ratios)."
    return (f"{label} ({', '.join(block['points'])}; {block['n_ratios']} ratios): power efficiency core "
            f"{block['power_eff_ratio_core_min']:.2f}-{block['power_eff_ratio_core_max']:.2f}x, system "
            f"{block['power_eff_ratio_system_min']:.2f}-{block['power_eff_ratio_system_max']:.2f}x, area "
            f"{block['area_eff_ratio_min']:.2f}-{block['area_eff_ratio_max']:.2f}x"
            + (f"; {block['power_inside_paper_range_core']} core power ratios inside the paper's range." if paper
               else "."))
