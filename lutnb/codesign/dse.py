"""Co-design space exploration: sweep model (v, c, metric, table bits) and hardware parameters over a
workload, prune infeasible points with the reason, extract Pareto fronts, compare with dense baselines.

Sweeps use the closed-form machine of `lutnb.codesign.analytic` (vectorized over design points, checked
against `lutnb.hw.simulate_network` in `tests/test_dse.py`); chosen points can be re-evaluated exactly with
`evaluate_design(..., engine="simulate")`. Accuracy per (metric, v, c) comes from `lutnb.codesign.accuracy`:
stored accuracy records where present, otherwise a labelled proxy; every row says which (`accuracy_source`).

Inputs are checked where they enter (`check_space`, `check_points`, `Constraints`, `explore_point`): a
misspelt parameter is refused with the valid names (`PARAM_KEYS`), as are empty sweeps, values of the
wrong type and n < 1; a value in range but unbuildable (a table buffer too small) stays a pruned row with
its reason. The sweep cache (`results/dse_cache/<workload>-<key>.npz`) holds arrays and a JSON schema,
read with `allow_pickle=False`; a file that fails the schema check raises `DSECacheError` naming it.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import numbers
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import results_dir
from ..hw import LUTDLAConfig, SystolicConfig, simulate_network
from . import cost, distributed
from .accuracy import PROXY_SOURCE, accuracy_table, proxy_accuracy_table, stored_accuracy_table  # noqa: F401
from .analytic import analytic_lut_totals, dense_unit_totals, expected_bank_extra, max_subspaces, table_bytes
from .baselines import (  # noqa: F401  (re-exported: the dense baselines and the ratios live in baselines.py)
    ACCOUNTINGS,
    BASELINES,
    PAPER_AREA_RANGE,
    PAPER_POWER_RANGE,
    compare_with_baselines,
    efficiency_table,
    evaluate_baseline,
    matched_baseline,
    ratio_range,
)
from .cache import CACHE_SUFFIX, DSECacheError, read_sweep_cache, write_sweep_cache  # noqa: F401  (re-exported)
from .validation import (  # noqa: F401  (re-exported: the checks a sweep's inputs pass)
    DESIGN_FIELDS,
    LUT_FIELDS,
    M_TILE_NOTE,
    PARAM_KEYS,
    check_keys,
    check_points,
    check_space,
    known_kwargs,
    positive_int_arg,
)
from .workloads import Workload, get_workload, workload_of  # noqa: F401  (get_workload re-exported)

VERSION = "dse-1"
MODEL_PARAMS = ("v", "c", "metric", "table_bits")
DEFAULT_SPACE = {   # [ours] 3*3*3*2 model x 4*4*4*2*2*2*2 hardware = 55,296 points
    "v": (2, 4, 8), "c": (8, 16, 32), "metric": ("l2", "l1", "chebyshev"), "table_bits": (4, 8),
    "ccus": (4, 8, 16, 32), "lanes": (4, 8, 16, 32), "table_tile": (16, 32, 64, 128),
    "table_buffer_kb": (8, 32), "acc_buffer_kb": (64, 256), "offchip_bytes_per_cycle": (8, 32),
    "clock_mhz": (500, 1000),
}
FIXED = {"activation_bits": 8, "double_buffer": True, "sram_banks": 16, "act_buffer_kb": 16.0, "adder_fanin": 1,
         "acc_storage": "sram"}
# derived when a point does not set them [ours]: fifo_depth = LUTDLAConfig.min_unthrottled_fifo_depth (the FIFO
# never holds the CCM back), acc_bits = cost.required_acc_bits(table_bits, max S of the workload) (no wasted
# bits; 32 when no workload is known)
TECH45 = cost.Tech()      # the reference node, 45 nm
DENSE_UNIT = SystolicConfig(rows=32, cols=32, dataflow="ws", ifmap_sram_kb=64, filter_sram_kb=64, ofmap_sram_kb=64)


# ------------------------------------------------------------------------------------ one design, exactly
def derived_params(params: dict, max_S: int | None = None) -> dict:
    """`params` with fifo_depth and acc_bits filled in where absent (see FIXED's note)."""
    p = dict(params)
    cfg0 = LUTDLAConfig()
    if "fifo_depth" not in p:
        p["fifo_depth"] = (int(p.get("ccus", cfg0.ccus)) * (int(p.get("c", cfg0.c)) + 1)
                           + int(p.get("lanes", cfg0.lanes)))
    if "acc_bits" not in p:
        p["acc_bits"] = 32 if max_S is None else cost.required_acc_bits(int(p.get("table_bits", cfg0.table_bits)),
                                                                        max_S)
    return p


def design_from_params(params: dict, workload: Workload | str | None = None) -> cost.LUTDesign:
    """A LUTDesign from flat parameters (LUTDLAConfig fields, table_buffer_kb, acc/act_buffer_kb, acc_storage);
    with a workload, acc_bits (if not given) is derived from its largest number of sub-spaces."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of design parameters, not {type(params).__name__}")
    check_keys(params, "design_from_params", results_allowed=True)
    p = {k: (val.item() if isinstance(val, np.generic) else val) for k, val in {**FIXED, **params}.items()}
    max_S = None
    if workload is not None:
        max_S = int(max_subspaces(workload_of(workload), int(p.get("v", LUTDLAConfig().v))))
    p = derived_params(p, max_S)
    kw = {k: p[k] for k in LUT_FIELDS if k in p and k != "m_tile"}
    if "table_buffer_kb" in p:
        kw["table_buffer_bytes"] = int(p["table_buffer_kb"] * 1024)
    return cost.LUTDesign(LUTDLAConfig(**kw), acc_buffer_kb=float(p.get("acc_buffer_kb", 64.0)),
                          act_buffer_kb=float(p.get("act_buffer_kb", 16.0)),
                          acc_storage=p.get("acc_storage", "sram"))


def evaluate_design(design: cost.LUTDesign, workload: Workload, engine: str = "analytic",
                    tech: cost.Tech = TECH45, dense_unit: SystolicConfig = DENSE_UNIT):
    """(summary dict, breakdown DataFrame) of one LUT-DLA design on a workload.

    engine="simulate" runs `lutnb.hw.simulate_network` (exact cycles); "analytic" the closed form.
    Layers marked dense run on `dense_unit` (INT8) after the LUT layers, and its area is added.
    """

    if not isinstance(design, cost.LUTDesign):
        raise TypeError(f"design must be a cost.LUTDesign (see design_from_params), not {type(design).__name__}")
    workload = workload_of(workload)
    cfg = design.sim_config()
    if workload.dense_layers and design.dense_unit is None:
        design = cost.LUTDesign(design.cfg, design.acc_buffer_kb, design.act_buffer_kb, dense_unit,
                                design.dense_precision, design.acc_storage)
    max_S = max_subspaces(workload, cfg.v)
    if engine == "simulate":
        _, totals = simulate_network(workload.expanded(), cfg)
    elif engine == "analytic":
        arr = {**{k: getattr(cfg, k) for k in LUT_FIELDS}, "m_tile": cfg.m_tile,
               "bank_extra": expected_bank_extra(cfg.lanes, cfg.c, cfg.sram_banks)}
        totals = {k: float(np.asarray(v)) for k, v in analytic_lut_totals(workload, arr).items()}
    else:
        raise ValueError(f"engine={engine!r}: use 'analytic' or 'simulate'")
    dense_tot = dense_unit_totals(workload, design.dense_unit) if design.dense_unit else None
    energy = cost.lut_energy(design, totals, max_S, tech, dense_tot)
    area = cost.lut_area(design, max_S, tech)
    cycles = totals["total_cycles"] + (dense_tot["total_cycles"] if dense_tot else 0)
    summary = cost.summarize(energy, area, cycles, cfg.clock_mhz, workload.ops, tech)
    summary.update(lut_cycles=totals["total_cycles"], sram_kb=sum(cost.lut_buffers(design, max_S).values()),
                   engine=engine, node_nm=tech.node_nm, clock_mhz=cfg.clock_mhz,
                   offchip_bytes_per_cycle=cfg.offchip_bytes_per_cycle,
                   utilization=totals["lookups"] / (cfg.lanes * totals["total_cycles"]),
                   link_cycles=totals["link_cycles"], acc_bits=cfg.acc_bits)
    return summary, cost.breakdown(energy, area, summary)


# ------------------------------------------------------------------------------------ sweeps
@dataclass(frozen=True, init=False)
class Constraints:
    """Feasibility limits (None: no limit). Accuracy is in the units of its source (see accuracy_source).

    Limits are finite numbers (max_* > 0); an unknown field name is refused with the valid ones listed.
    `Constraints.from_dict(d)` builds one from a dict with the same checks.
    """

    max_area_mm2: float | None = None
    max_power_w: float | None = None
    max_sram_kb: float | None = None
    min_accuracy: float | None = None

    def __init__(self, max_area_mm2: float | None = None, max_power_w: float | None = None,
                 max_sram_kb: float | None = None, min_accuracy: float | None = None, **unknown):
        if unknown:
            valid = [f.name for f in fields(Constraints)]
            hints = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
            said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise TypeError(f"Constraints: unknown field(s) {said}; valid fields: {valid}")
        for name, val in (("max_area_mm2", max_area_mm2), ("max_power_w", max_power_w),
                          ("max_sram_kb", max_sram_kb), ("min_accuracy", min_accuracy)):
            if val is not None:
                if isinstance(val, (bool, np.bool_)) or not isinstance(val, numbers.Real):
                    raise TypeError(f"Constraints.{name}={val!r}: must be a number or None (no limit), "
                                    f"not {type(val).__name__}")
                if not math.isfinite(val) or (name.startswith("max_") and val <= 0):
                    raise ValueError(f"Constraints.{name}={val!r}: must be a finite number"
                                     + (" > 0" if name.startswith("max_") else "") + ", or None for no limit")
                val = val.item() if isinstance(val, np.generic) else val
            object.__setattr__(self, name, val)

    @classmethod
    def from_dict(cls, d: dict) -> Constraints:
        if not isinstance(d, dict):
            raise TypeError(f"constraints must be a Constraints or a dict, not {type(d).__name__}")
        return cls(**d)


def _as_constraints(constraints) -> Constraints:
    if isinstance(constraints, Constraints):
        return constraints
    if constraints is None:
        return Constraints()
    return Constraints.from_dict(constraints)


def _check_accuracy(accuracy) -> None:
    need = {"metric", "v", "c", "accuracy", "accuracy_source"}
    if not isinstance(accuracy, pd.DataFrame):
        raise TypeError(f"accuracy must be a DataFrame like accuracy_table()'s, not {type(accuracy).__name__}")
    if need - set(accuracy.columns):
        raise ValueError(f"accuracy table lacks columns {sorted(need - set(accuracy.columns))}; it needs "
                         f"{sorted(need)} (see accuracy_table())")


def grid_points(space: dict | None = None) -> pd.DataFrame:
    """Every combination, in itertools.product order of the space's keys (deterministic).

    `space`: {parameter: non-empty list/tuple of values}; None for DEFAULT_SPACE. Parameters are
    `PARAM_KEYS`; a misspelt one, an empty value list or a value of the wrong type is refused."""
    space = DEFAULT_SPACE if space is None else check_space(space)
    keys = list(space)
    df = pd.DataFrame(list(itertools.product(*(space[k] for k in keys))), columns=keys)
    df.insert(0, "point", np.arange(len(df)))
    return df


def random_points(n: int, space: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """`n` (>= 1) points drawn uniformly (with replacement) from the space's values, seeded."""
    n = positive_int_arg("n", n)
    space = DEFAULT_SPACE if space is None else check_space(space)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: np.asarray(vals, dtype=object)[rng.integers(0, len(vals), n)] for k, vals in space.items()})
    for k in df.columns:
        df[k] = pd.array(df[k].tolist())
    df.insert(0, "point", np.arange(n))
    return df


@lru_cache(maxsize=100_000)
def _validate(items: tuple) -> str:
    try:
        design_from_params(dict(items))
    except (ValueError, TypeError) as err:
        return f"config: {err}"
    return ""


@lru_cache(maxsize=4096)
def _pe_cost(metric: str, v: int, bits: int, node: float) -> tuple:
    return cost.distance_pe_total(metric, v, bits, cost.Tech(node_nm=node))


def _complete_points(points: pd.DataFrame, workload: Workload | None = None) -> pd.DataFrame:
    """A copy of `points` with every parameter present (FIXED, the derived fifo_depth and acc_bits, the design
    defaults, LUTDLAConfig's defaults) and a `reason` column: "" or why the configuration is invalid."""
    df = points.reset_index(drop=True).copy()
    for k, val in FIXED.items():
        if k not in df:
            df[k] = val
    if "table_buffer_bytes" in df and "table_buffer_kb" not in df:
        df["table_buffer_kb"] = df["table_buffer_bytes"] / 1024
    df = df.drop(columns=["table_buffer_bytes"], errors="ignore")
    for k, val in {"table_buffer_kb": 32, "acc_buffer_kb": 64, "clock_mhz": 500.0}.items():
        if k not in df:
            df[k] = val
    for k in sorted(LUT_FIELDS - set(df.columns) - {"m_tile", "table_buffer_bytes", "fifo_depth", "acc_bits"}):
        df[k] = getattr(LUTDLAConfig(), k)
    if "fifo_depth" not in df:
        df["fifo_depth"] = (df["ccus"].astype(np.int64) * (df["c"].astype(np.int64) + 1)
                            + df["lanes"].astype(np.int64))
    if "acc_bits" not in df:
        if workload is None:
            df["acc_bits"] = 32
        else:
            ms = {int(v): int(max_subspaces(workload, int(v))) for v in pd.unique(df["v"])}
            df["acc_bits"] = [cost.required_acc_bits(int(t), ms[int(v)]) for t, v in zip(df["table_bits"], df["v"])]
    cols = sorted((LUT_FIELDS | DESIGN_FIELDS) & set(df.columns))
    native = lambda x: x.item() if isinstance(x, np.generic) else x
    df["reason"] = [_validate(tuple((k, native(x)) for k, x in zip(cols, r)))
                    for r in df[cols].itertuples(index=False, name=None)]
    return df


def _point_arrays(df: pd.DataFrame) -> dict:
    """Typed numpy arrays of the hardware parameters, with the derived m_tile and bank_extra."""
    a = {k: df[k].to_numpy() for k in df.columns if k in LUT_FIELDS | DESIGN_FIELDS}
    a["table_buffer_bytes"] = (df["table_buffer_kb"].to_numpy(dtype=float) * 1024).astype(np.int64)
    for k in ("v", "c", "ccus", "lanes", "table_tile", "table_bits", "fifo_depth", "acc_bits", "activation_bits",
              "sram_banks", "adder_fanin"):
        a[k] = a[k].astype(np.int64)
    for k in ("offchip_bytes_per_cycle", "clock_mhz", "table_buffer_kb", "acc_buffer_kb", "act_buffer_kb"):
        a[k] = a[k].astype(float)
    a["double_buffer"] = a["double_buffer"].astype(bool)
    a["acc_storage"] = a["acc_storage"].astype(str)
    a["m_tile"] = np.maximum(1, (a["acc_buffer_kb"] * 1024 * 8 // (a["table_tile"] * a["acc_bits"])).astype(np.int64))
    a["bank_extra"] = np.array([expected_bank_extra(int(p), int(c), int(b))
                                for p, c, b in zip(a["lanes"], a["c"], a["sram_banks"])])
    return a


def _lut_area_energy(metrics, a: dict, tot: dict, tech: cost.Tech) -> tuple:
    """(area mm^2, energy pJ, buffers KiB) per component of the LUT engine, as cost.lut_area / lut_energy."""
    max_S = tot["max_S"]
    idx_bits = np.maximum(1, np.ceil(np.log2(a["c"])))
    bufs = {"table": a["table_buffer_kb"], "index": a["m_tile"] * max_S * idx_bits / 8 / 1024,
            "fifo": a["fifo_depth"] * idx_bits / 8 / 1024, "accumulator": a["acc_buffer_kb"],
            "activation": a["act_buffer_kb"], "codebook": max_S * a["c"] * a["v"] * a["activation_bits"] / 8 / 1024}
    width = cost.lut_access_width(a)
    pe = [_pe_cost(m, int(v), int(b), tech.node_nm) for m, v, b in zip(metrics, a["v"], a["activation_bits"])]
    pe_e, pe_a = np.array([x[0] for x in pe]), np.array([x[1] for x in pe])
    add = cost.imm_adders(a["acc_bits"], a["table_bits"], a["adder_fanin"], tech)
    reg_a = cost.CONSTANTS["a_dff"].value * (idx_bits + a["table_tile"] * a["table_bits"]) * tech.area_scale
    rf = a["acc_storage"] == "regfile"
    acc_e_sram, acc_a_sram = cost.acc_storage_cost(bufs["accumulator"], width["psums"], "sram", tech)
    acc_e_rf, acc_a_rf = cost.acc_storage_cost(bufs["accumulator"], width["psums"], "regfile", tech)
    acc_e, acc_a = np.where(rf, acc_e_rf, acc_e_sram), np.where(rf, acc_a_rf, acc_a_sram)
    area = {"ccm": a["ccus"] * a["c"] * pe_a / 1e6,
            "imm": a["lanes"] * a["table_tile"] * (add["area_per_lane"] + reg_a / a["table_tile"]) / 1e6,
            "sram": (sum(cost.sram_area_um2(kb, tech) for b, kb in bufs.items() if b != "accumulator")
                     + acc_a) / 1e6}
    sram_e = 0.0
    for op, b in cost.LUT_OPERAND_BUFFER.items():
        e_bit = acc_e if b == "accumulator" else cost.sram_access_energy_per_bit(bufs[b], width[op], tech)
        sram_e = sram_e + tot[f"sram_{op}_bytes"] * 8 * e_bit
    energy = {"ccm": tot["distance_ops"] / a["v"] * pe_e, "imm": tot["lookup_adds"] * add["energy_per_lookup"],
              "sram": sram_e, "dram": tot["dram_bytes"] * cost.dram_energy_per_byte(tech)}
    return area, energy, bufs


def _add_costs(df: pd.DataFrame, a: dict, workload: Workload, tech: cost.Tech) -> None:
    """Area, energy, cycles and the efficiency columns (core and system) of every point, in place."""
    tot = analytic_lut_totals(workload, a)
    area, energy, bufs = _lut_area_energy(df["metric"], a, tot, tech)
    cycles = tot["total_cycles"] * np.ones(len(df))
    if workload.dense_layers:
        dt = dense_unit_totals(workload, DENSE_UNIT)
        de = cost.dense_energy(DENSE_UNIT, "int8", dt, tech)
        area["dense_unit"] = np.full(len(df), sum(cost.dense_area(DENSE_UNIT, "int8", tech).values()))
        energy["dense_unit"] = np.full(len(df), sum(v for k, v in de.items() if not cost.is_offchip(k)))
        energy["dense_unit_dram"] = np.full(len(df), de["dram"])
        cycles = cycles + dt["total_cycles"]
    for k, val in area.items():
        df[f"area_{k}_mm2"] = val
    for k, val in energy.items():
        df[f"energy_{k}_pj"] = val
    time_s = cycles / (a["clock_mhz"] * 1e6)
    df["area_mm2"] = sum(area.values())
    leak = cost.leakage_mw(df["area_mm2"].to_numpy(), tech) * 1e-3 * time_s * 1e12
    df["energy_leakage_pj"] = leak
    df["energy_pj"] = sum(energy.values()) + leak
    df["energy_core_pj"] = df["energy_pj"] - sum(v for k, v in energy.items() if cost.is_offchip(k))
    df["cycles"] = cycles
    df["latency_ms"] = time_s * 1e3
    df["power_w"] = df["energy_pj"] * 1e-12 / time_s
    df["power_core_w"] = df["energy_core_pj"] * 1e-12 / time_s
    df["tops"] = workload.ops / time_s / 1e12
    df["tops_per_w"] = df["tops"] / df["power_w"]
    df["tops_per_w_system"] = df["tops_per_w"]
    df["tops_per_w_core"] = df["tops"] / df["power_core_w"]
    df["tops_per_mm2"] = df["tops"] / df["area_mm2"]
    df["utilization"] = tot["lookups"] / (a["lanes"] * tot["total_cycles"])
    df["link_cycles"] = tot["link_cycles"] * np.ones(len(df))
    df["sram_kb"] = sum(bufs.values())
    df["bits_per_activation"] = np.log2(a["c"]) / a["v"]
    df["table_bytes"] = table_bytes(workload, a["v"], a["c"], a["table_bits"])


def _add_accuracy(df: pd.DataFrame, a: dict, accuracy: pd.DataFrame) -> None:
    """The accuracy and accuracy_source of every point's (metric, v, c), in place ("none" where absent)."""
    key = pd.MultiIndex.from_arrays([df["metric"], a["v"], a["c"]])
    lut = accuracy.set_index(["metric", "v", "c"])
    df["accuracy"] = lut["accuracy"].reindex(key).to_numpy()
    df["accuracy_source"] = lut["accuracy_source"].reindex(key).fillna("none").to_numpy()


def _apply_constraints(df: pd.DataFrame, constraints: Constraints) -> None:
    """Set `reason` (the first failing check wins) and `feasible`; blank the numbers of invalid configs."""
    checks = [(constraints.max_area_mm2, df["area_mm2"], "area {:.3g} mm2 > {}"),
              (constraints.max_power_w, df["power_w"], "power {:.3g} W > {}"),
              (constraints.max_sram_kb, df["sram_kb"], "SRAM budget {:.4g} KiB > {}")]
    reason = df["reason"].to_numpy(dtype=object)
    for limit, col, fmt in checks:
        if limit is None:
            continue
        bad = (reason == "") & (col.to_numpy() > limit)
        reason[bad] = [fmt.format(x, limit) for x in col.to_numpy()[bad]]
    if constraints.min_accuracy is not None:
        accv = df["accuracy"].to_numpy()
        bad = (reason == "") & ~(accv >= constraints.min_accuracy)
        reason[bad] = [f"accuracy {x:.4g} < floor {constraints.min_accuracy}" if x == x else "accuracy unknown"
                       for x in accv[bad]]
    df["reason"] = reason
    df["feasible"] = reason == ""
    num = [c for c in df.columns if c.startswith(("area", "energy", "power", "tops", "latency", "cycles"))]
    df.loc[~df["feasible"] & df["reason"].str.startswith("config"), num] = np.nan


def evaluate_points(points: pd.DataFrame, workload: Workload | str, constraints: Constraints = Constraints(),
                    tech: cost.Tech = TECH45, accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cost, efficiency, accuracy and feasibility of every point (vectorized; the sweep's worker).

    `points`: a non-empty DataFrame whose columns are parameters (`PARAM_KEYS`), `point`, or columns a sweep
    writes (recomputed); `constraints`: a Constraints or a dict of its fields."""
    workload = workload_of(workload)
    constraints = _as_constraints(constraints)
    check_points(points)
    if accuracy is not None:
        _check_accuracy(accuracy)
    df = _complete_points(points, workload)
    a = _point_arrays(df)
    _add_costs(df, a, workload, tech)
    _add_accuracy(df, a, accuracy if accuracy is not None else accuracy_table())
    _apply_constraints(df, constraints)
    df["workload"] = workload.name
    return df


def _cache_key(points: pd.DataFrame, workload: Workload, constraints: Constraints, tech: cost.Tech,
               accuracy: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for part in (VERSION, workload.fingerprint(), json.dumps(asdict(constraints), sort_keys=True),
                 json.dumps(asdict(tech), sort_keys=True),
                 json.dumps({k: vars(v) for k, v in cost.CONSTANTS.items()}, sort_keys=True),
                 points.to_json(orient="split"), accuracy.to_json(orient="split")):
        h.update(part.encode())
    return h.hexdigest()[:24]


def run_sweep(points: pd.DataFrame, workload: Workload | str, constraints: Constraints = Constraints(),
              tech: cost.Tech = TECH45, accuracy: pd.DataFrame | None = None, n_jobs: int = 2,
              chunk_size: int = 2048, client=None, address: str | None = None, cache_dir=None,
              progress: bool = False, engine: str | None = None) -> pd.DataFrame:
    """Evaluate `points` over a workload in chunks; rows come back sorted by `point`.

    Engines (`lutnb.codesign.distributed`): local processes (ProcessPoolExecutor, `n_jobs`; 1 = in this process)
    by default; a Dask cluster when `client` (a dask.distributed.Client) or `address` (its scheduler) is given;
    Ray with engine="ray" (`address` of a running cluster, or a local one). `progress`: a bar over the chunks.
    `cache_dir`: None -> results/dse_cache, False -> no cache; the file (`<workload>-<key>.npz`, arrays plus
    a JSON schema, no pickle) is keyed by a hash of every input; a file that fails its schema check raises
    `DSECacheError` naming it. `points` must be non-empty with a `point` column (see `evaluate_points`).
    """

    workload = workload_of(workload)
    constraints = _as_constraints(constraints)
    check_points(points, need_point=True)
    n_jobs, chunk_size = positive_int_arg("n_jobs", n_jobs), positive_int_arg("chunk_size", chunk_size)
    acc = accuracy if accuracy is not None else accuracy_table()
    _check_accuracy(acc)
    path = key = None
    if cache_dir is not False:
        d = Path(cache_dir) if cache_dir else results_dir() / "dse_cache"
        key = _cache_key(points, workload, constraints, tech, acc)
        path = d / f"{workload.name}-{key}{CACHE_SUFFIX}"
        if path.exists():
            return read_sweep_cache(path, key)
    pts = points.sort_values("point").reset_index(drop=True)
    chunks = [pts.iloc[i:i + chunk_size] for i in range(0, len(pts), chunk_size)]
    args = dict(workload=workload, constraints=constraints, tech=tech, accuracy=acc)
    parts = distributed.map_chunks(evaluate_points, chunks, args, engine=engine, n_jobs=n_jobs, client=client,
                                   address=address, progress=progress, desc=f"sweep {workload.name}")
    out = pd.concat(parts, ignore_index=True).sort_values("point", kind="stable").reset_index(drop=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sweep_cache(path, out, key)
    return out


def pareto_mask(df: pd.DataFrame, maximize=("accuracy", "tops_per_w")) -> np.ndarray:
    """True for rows no other row beats in every column of `maximize` (ties kept); NaN rows are False."""
    vals = df[list(maximize)].to_numpy(dtype=float)
    ok = ~np.isnan(vals).any(1)
    mask = np.zeros(len(df), dtype=bool)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return mask
    v = vals[idx]
    order = np.lexsort(tuple(-v[:, j] for j in reversed(range(v.shape[1]))))
    keep = []
    for i in order:
        if not any((v[k] >= v[i]).all() and (v[k] > v[i]).any() for k in keep):
            keep.append(i)
    mask[idx[keep]] = True
    return mask


def pareto_front(df: pd.DataFrame, maximize=("accuracy", "tops_per_w"), feasible_only: bool = True) -> pd.DataFrame:
    """The Pareto-optimal rows, sorted by the first objective then `point` (deterministic)."""
    sub = df[df["feasible"]] if feasible_only and "feasible" in df else df
    front = sub[pareto_mask(sub, maximize)]
    return front.sort_values([maximize[0], "point"], ascending=[False, True]).reset_index(drop=True)


# ------------------------------------------------------------------------------------ interactive
@known_kwargs
def explore_design(v: int = 4, c: int = 16, metric: str = "l1", table_bits: int = 8, ccus: int = 16,
                   lanes: int = 16, table_tile: int = 64, buffer_kb: float = 32, acc_buffer_kb: float = 64,
                   offchip_bytes_per_cycle: float = 16, clock_mhz: float = 500,
                   workload: str | Workload = "digits_cnn") -> cost.LUTDesign:
    """The LUTDesign `explore_point` evaluates for these arguments (same defaults): simulate its
    ``sim_config()`` to get the per-layer cycles behind a point's total. Raises ValueError for a design the
    hardware cannot build."""
    return design_from_params(dict(v=v, c=c, metric=metric, table_bits=table_bits, ccus=ccus, lanes=lanes,
                                   table_tile=table_tile, table_buffer_kb=buffer_kb, acc_buffer_kb=acc_buffer_kb,
                                   clock_mhz=clock_mhz, offchip_bytes_per_cycle=offchip_bytes_per_cycle), workload)


@known_kwargs
def explore_point(v: int = 4, c: int = 16, metric: str = "l1", table_bits: int = 8, ccus: int = 16,
                  lanes: int = 16, table_tile: int = 64, buffer_kb: float = 32, acc_buffer_kb: float = 64,
                  offchip_bytes_per_cycle: float = 16, clock_mhz: float = 500,
                  workload: str | Workload = "digits_cnn", baseline: str = "int8", node_nm: float = 45.0,
                  engine: str = "analytic", matcher=None) -> dict:
    """One design point, for an interactive explorer: bits, table bytes, cycles, area, power, efficiency
    against `baseline` at equal area, and accuracy with its source. An invalid design (a config the
    hardware cannot build) gives {"error": ...}; an unknown argument, workload, baseline or engine raises.
    ``workload``: a name, or a `Workload` (e.g. ``merge_repeats(name, layers)`` of a converted model's LUT
    layers: its name picks the stored accuracy). `explore_design` gives the design evaluated.
    ``matcher``: a function (workload, precision, target_area, clock_mhz, tech, offchip_bytes_per_cycle) ->
    baseline summary standing in for `matched_baseline` by area (the explorer passes a cached one)."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline={baseline!r}: use one of {BASELINES}")
    if engine not in ("analytic", "simulate"):
        raise ValueError(f"engine={engine!r}: use 'analytic' or 'simulate'")
    wl = workload_of(workload)
    try:
        design = explore_design(v=v, c=c, metric=metric, table_bits=table_bits, ccus=ccus, lanes=lanes,
                                table_tile=table_tile, buffer_kb=buffer_kb, acc_buffer_kb=acc_buffer_kb,
                                offchip_bytes_per_cycle=offchip_bytes_per_cycle, clock_mhz=clock_mhz, workload=wl)
    except (ValueError, TypeError) as err:
        return {"error": str(err)}
    tech = cost.Tech(node_nm=node_nm)
    s, _ = evaluate_design(design, wl, engine, tech)
    if matcher is None:
        b = matched_baseline(wl, baseline, s["area_mm2"], "area", clock_mhz, tech=tech,
                             offchip_bytes_per_cycle=offchip_bytes_per_cycle)
    else:
        b = matcher(wl, baseline, s["area_mm2"], clock_mhz, tech, offchip_bytes_per_cycle)
    acc = accuracy_table(wl.name)
    hit = acc[(acc["metric"] == metric) & (acc["v"] == v) & (acc["c"] == c)]
    return {"workload": wl.name, "bits_per_activation": math.log2(c) / v,
            "table_bytes": table_bytes(wl, v, c, table_bits),
            "cycles": s["cycles"], "latency_ms": s["time_s"] * 1e3, "area_mm2": s["area_mm2"],
            "power_w": s["power_w"], "tops": s["tops"], "tops_per_w": s["tops_per_w"],
            "tops_per_mm2": s["tops_per_mm2"], "baseline": f"{baseline} {b['rows']}x{b['cols']} (equal area)",
            "power_eff_ratio": s["tops_per_w"] / b["tops_per_w"],
            "tops_per_w_core": s["tops_per_w_core"],
            "power_eff_ratio_core": s["tops_per_w_core"] / b["tops_per_w_core"],
            "area_eff_ratio": s["tops_per_mm2"] / b["tops_per_mm2"],
            "accuracy": float(hit["accuracy"].iloc[0]) if len(hit) else None,
            "accuracy_source": hit["accuracy_source"].iloc[0] if len(hit) else "none"}
