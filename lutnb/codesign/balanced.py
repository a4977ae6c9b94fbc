"""The balanced default design: chosen by the DSE, not by hand, and kept busy (IMM utilisation >= 50 %).

`choose_balanced_design` sweeps the hardware grid (DEFAULT_SPACE's hardware parameters, the adder-tree fan-in
and the accumulator storage) for the commonly reported model setting (v=4, c=16: 1 bit per activation; L1,
multiplier-free; INT8 tables) on ResNet-18 at 224x224, keeps the points whose analytic IMM-lane utilisation is
at least `min_utilization`, and returns the one with the best core TOPS/W (ties: higher TOPS/mm^2, then the
lower point id). `BALANCED_DESIGN` holds its result; `tests/test_dse.py` re-runs the choice and checks both
that it still picks these parameters and that the exact simulator agrees on the utilisation.
"""
from __future__ import annotations

import pandas as pd

from . import dse

BALANCED_MODEL = {"v": 4, "c": 16, "metric": "l1", "table_bits": 8}
BALANCED_HW_SPACE = {**{k: v for k, v in dse.DEFAULT_SPACE.items() if k not in dse.MODEL_PARAMS},
                     "acc_buffer_kb": (16, 32, 64, 256), "adder_fanin": (1, 2, 4), "acc_storage": ("sram", "regfile")}
# the result of choose_balanced_design() (see the module docstring; re-checked by tests/test_dse.py)
BALANCED_DESIGN = {**BALANCED_MODEL, "ccus": 8, "lanes": 8, "table_tile": 32, "table_buffer_kb": 8,
                   "acc_buffer_kb": 16, "offchip_bytes_per_cycle": 32, "clock_mhz": 1000, "adder_fanin": 4,
                   "acc_storage": "regfile"}
PARAMS = tuple(BALANCED_DESIGN)


def balanced_sweep(workload="resnet18", min_utilization: float = 0.5, model: dict | None = None) -> pd.DataFrame:
    """The feasible hardware points (for `model`) with utilisation >= min_utilization, best first."""
    space = {k: (v,) for k, v in (model or BALANCED_MODEL).items()} | BALANCED_HW_SPACE
    df = dse.evaluate_points(dse.grid_points(space), workload)
    ok = df[df["feasible"] & (df["utilization"] >= min_utilization)]
    return ok.sort_values(["tops_per_w_core", "tops_per_mm2", "point"], ascending=[False, False, True])


def choose_balanced_design(workload="resnet18", min_utilization: float = 0.5, model: dict | None = None) -> dict:
    """The parameters of the best balanced point (see the module docstring)."""
    ok = balanced_sweep(workload, min_utilization, model)
    if ok.empty:
        raise ValueError(f"no feasible point reaches utilization >= {min_utilization} on {workload}; lower it")
    row = ok.iloc[0]
    out = {k: row[k] for k in PARAMS}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in out.items()}


def balanced_design(workload="resnet18"):
    """BALANCED_DESIGN as a cost.LUTDesign (acc_bits derived for `workload`)."""
    return dse.design_from_params(dict(BALANCED_DESIGN), workload)


OFAT_FACTORS = {"ccus": (2, 4, 8, 16, 32), "lanes": (2, 4, 8, 16, 32), "table_tile": (8, 16, 32, 64, 128),
                "acc_buffer_kb": (4, 8, 16, 32, 64, 128), "offchip_bytes_per_cycle": (8, 16, 32, 64, 128),
                "adder_fanin": (1, 2, 4, 8)}


def one_factor_curves(base: dict | None = None, factors: dict | None = None, workload="resnet18") -> pd.DataFrame:
    """Every factor varied alone around `base` (default BALANCED_DESIGN), the others held: one row per
    (factor, value) with the sweep's columns (infeasible configurations dropped, their reason kept)."""
    base = dict(BALANCED_DESIGN if base is None else base)
    rows = []
    for f, values in (factors or OFAT_FACTORS).items():
        for val in values:
            rows.append({**base, f: val, "_factor": f})
    pts = pd.DataFrame(rows)
    factor = pts.pop("_factor")
    pts.insert(0, "point", range(len(pts)))
    df = dse.evaluate_points(pts, workload)
    df.insert(0, "factor", factor.to_numpy())
    df["value"] = [r[f] for f, (_, r) in zip(df["factor"], df.iterrows())]
    return df[~df["reason"].str.startswith("config")].reset_index(drop=True)


def measured_accuracy_points(records=None, hardware: dict | None = None) -> pd.DataFrame:
    """Figure 12's points: every stored (non-proxy) accuracy record whose model is a known workload, with the
    efficiency of the balanced hardware running that record's (metric, v, c, table_bits) on that model.

    Columns: model, source (lutboost / single_stage / kmeans: the conversion mode), metric, v, c, table_bits,
    accuracy (mean over seeds), n_seeds, n_test, tops_per_w_core, tops_per_w, tops_per_mm2. Proxy records
    are never included: they are not accuracies."""
    from .accuracy import read_accuracy_records
    from .workloads import WORKLOADS

    recs = read_accuracy_records() if records is None else records
    rows = [r for r in recs if not r.is_proxy and r.model in WORKLOADS]
    cols = ["model", "source", "metric", "v", "c", "table_bits", "accuracy", "n_seeds", "n_test",
            "tops_per_w_core", "tops_per_w", "tops_per_mm2"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame([{"model": r.model, "source": r.source, "metric": r.metric, "v": r.v, "c": r.c,
                        "table_bits": r.table_bits or 8, "accuracy": r.accuracy, "n_test": r.n_test} for r in rows])
    key = ["model", "source", "metric", "v", "c", "table_bits"]
    df = df.groupby(key, as_index=False).agg(accuracy=("accuracy", "mean"), n_seeds=("accuracy", "size"),
                                              n_test=("n_test", "max"))
    hw = {k: v for k, v in (hardware or BALANCED_DESIGN).items() if k not in dse.MODEL_PARAMS}
    out = []
    for model, g in df.groupby("model"):
        pts = pd.DataFrame([{**hw, **{k: r[k] for k in ("metric", "v", "c", "table_bits")}} for _, r in g.iterrows()])
        pts.insert(0, "point", range(len(pts)))
        ev = dse.evaluate_points(pts, model)
        out.append(g.reset_index(drop=True).assign(**{k: ev[k].to_numpy() for k in cols[-3:]}))
    return pd.concat(out, ignore_index=True)[cols]
