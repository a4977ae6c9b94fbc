"""What a design space, a point or a design may say: the DSE's parameter names, their types, and the checks
every sweep input passes (errors name the key or value and list the valid ones)."""
from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
from dataclasses import fields

import numpy as np
import pandas as pd

from ..hw import METRICS, LUTDLAConfig
from .accuracy import PROXY_SOURCE, accuracy_table, proxy_accuracy_table, stored_accuracy_table  # noqa: F401

LUT_FIELDS = {f.name for f in fields(LUTDLAConfig)}
DESIGN_FIELDS = {"acc_buffer_kb", "act_buffer_kb", "table_buffer_kb", "acc_storage"}

# ------------------------------------------------------------------------------------ input checks
PARAM_KEYS = frozenset((LUT_FIELDS - {"m_tile"}) | DESIGN_FIELDS)     # what a space, a point or a design sets
INT_PARAMS = frozenset({"v", "c", "ccus", "lanes", "table_tile", "table_bits", "fifo_depth", "acc_bits",
                        "activation_bits", "sram_banks", "table_buffer_bytes", "adder_fanin"})
REAL_PARAMS = frozenset({"offchip_bytes_per_cycle", "clock_mhz", "table_buffer_kb", "acc_buffer_kb",
                         "act_buffer_kb"})
# columns evaluate_points writes: a sweep's rows may be fed back (as points, or to design_from_params);
# they are recomputed, never read as parameters
RESULT_COLUMNS = frozenset({"point", "reason", "feasible", "workload", "accuracy", "accuracy_source", "area_mm2",
                            "energy_pj", "energy_leakage_pj", "cycles", "latency_ms", "power_w", "tops",
                            "tops_per_w", "tops_per_mm2", "sram_kb", "bits_per_activation", "table_bytes",
                            "energy_core_pj", "power_core_w", "tops_per_w_core", "tops_per_w_system",
                            "utilization", "link_cycles"})
RESULT_PREFIXES = (("area_", "_mm2"), ("energy_", "_pj"))
M_TILE_NOTE = ("m_tile is not a DSE parameter: the accumulator buffer sets it (m_tile = acc_buffer_kb * 8192 // "
               "(table_tile * acc_bits)); sweep acc_buffer_kb instead")


def _is_result_column(key) -> bool:
    return key in RESULT_COLUMNS or (isinstance(key, str) and any(key.startswith(a) and key.endswith(b)
                                                                  for a, b in RESULT_PREFIXES))


def check_keys(keys, where: str, results_allowed: bool) -> None:
    """Every key a DSE parameter (or, where allowed, a column a sweep writes); else name it and list the valid."""
    keys = list(keys)
    if "m_tile" in keys:
        raise ValueError(f"{where}: {M_TILE_NOTE}")
    unknown = [k for k in keys if k not in PARAM_KEYS and not (results_allowed and _is_result_column(k))]
    if unknown:
        hints = {k: difflib.get_close_matches(str(k), sorted(PARAM_KEYS), n=1) for k in unknown}
        said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
        raise ValueError(f"{where}: unknown key(s) {said}; valid keys: {sorted(PARAM_KEYS)}")
    if "table_buffer_kb" in keys and "table_buffer_bytes" in keys:
        raise ValueError(f"{where}: both table_buffer_kb and table_buffer_bytes given; give one of them")


def _check_value(key: str, value, where: str) -> None:
    """The type of one parameter value (ranges are the config's: an out-of-range point is pruned with a reason)."""
    if isinstance(value, float) and math.isnan(value) or value is None or value is pd.NA:
        raise ValueError(f"{where}: {key} has a missing value ({value!r}); give every point a value")
    is_bool = isinstance(value, (bool, np.bool_))
    if key in INT_PARAMS and (is_bool or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{where}: {key}={value!r} is a {type(value).__name__}; {key} takes integers")
    if key in REAL_PARAMS and (is_bool or not isinstance(value, numbers.Real)):
        raise TypeError(f"{where}: {key}={value!r} is a {type(value).__name__}; {key} takes numbers")
    if key == "double_buffer" and not is_bool:
        raise TypeError(f"{where}: double_buffer={value!r} is a {type(value).__name__}; use True or False")
    if key == "metric" and value not in METRICS:
        raise ValueError(f"{where}: metric={value!r} is not a distance metric; use one of {METRICS}")
    if key == "acc_storage" and value not in ("sram", "regfile"):
        raise ValueError(f"{where}: acc_storage={value!r}: use 'sram' or 'regfile'")


def check_space(space) -> dict:
    """A design space {parameter: non-empty sequence of values}, checked; returns it."""
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict {{parameter: values}}, not {type(space).__name__}")
    if not space:
        raise ValueError("space is empty: give at least one parameter, e.g. {'v': (2, 4)}, or None for "
                         "DEFAULT_SPACE")
    check_keys(space, "space", results_allowed=False)
    for k, vals in space.items():
        if isinstance(vals, (str, bytes, dict)) or not isinstance(vals, (list, tuple, range, np.ndarray, pd.Series)):
            raise TypeError(f"space[{k!r}]={vals!r}: give a list or tuple of values, e.g. {k!r}: ({vals!r},)")
        if len(vals) == 0:
            raise ValueError(f"space[{k!r}] is empty: the sweep would have no points; give at least one value")
        for val in vals:
            _check_value(k, val, f"space[{k!r}]")
    return space


def check_points(points, where: str = "points", need_point: bool = False) -> pd.DataFrame:
    """A DataFrame of design points: known columns only, typed values, at least one row."""
    if not isinstance(points, pd.DataFrame):
        raise TypeError(f"{where} must be a pandas DataFrame (see grid_points / random_points), "
                        f"not {type(points).__name__}")
    if len(points) == 0:
        raise ValueError(f"{where} has no rows: nothing to evaluate (an empty space or a filter that kept nothing)")
    check_keys(points.columns, f"{where} columns", results_allowed=True)
    if need_point and "point" not in points.columns:
        raise ValueError(f"{where} has no 'point' column (the id rows are sorted by); add one, e.g. "
                         "points.insert(0, 'point', range(len(points)))")
    for k in points.columns:
        if k in PARAM_KEYS:
            for val in pd.unique(points[k].to_numpy(dtype=object)):
                _check_value(k, val, f"{where}[{k!r}]")
    return points


def positive_int_arg(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r}: must be an integer >= 1")
    if value < 1:
        raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    return int(value)


def known_kwargs(fn):
    """Refuse unknown keyword arguments with the valid names listed (Python's own error lists none)."""
    names = list(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        unknown = [k for k in kw if k not in names]
        if unknown:
            hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
            said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise TypeError(f"{fn.__name__}: unknown argument(s) {said}; valid: {names}")
        return fn(*args, **kw)

    return wrapper
