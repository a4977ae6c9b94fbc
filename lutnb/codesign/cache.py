"""The DSE sweep cache: one `.npz` file per (points, workload, constraints, technology), arrays plus a JSON
schema record, read with ``allow_pickle=False`` (a planted file can never run code)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_write_bytes
from .accuracy import PROXY_SOURCE, accuracy_table, proxy_accuracy_table, stored_accuracy_table  # noqa: F401

CACHE_SCHEMA = "lutnb-dse-cache-1"
CACHE_SUFFIX = ".npz"


class DSECacheError(ValueError):
    """A DSE cache file that is not one `run_sweep` wrote (truncated, junk, another schema or key)."""


def _cache_column(s: pd.Series):
    """(meta, array or None): numpy-typed columns go to the archive as they are; extension (string, nullable)
    and object columns go into the JSON meta as plain values (missing values as null)."""
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind in "biuf":
        return {"name": s.name, "store": "array"}, s.to_numpy()
    values = [None if (v is None or v is pd.NA) else (v.item() if isinstance(v, np.generic) else v)
              for v in s.tolist()]
    if not all(v is None or isinstance(v, (str, int, float, bool)) for v in values):
        return None, None                                  # not representable without pickle: do not cache
    if isinstance(dt, pd.StringDtype):
        kind = {"kind": "string", "storage": dt.storage, "na": "NA" if dt.na_value is pd.NA else "nan"}
    elif isinstance(dt, np.dtype) and dt.kind == "O":
        kind = {"kind": "object"}
    else:
        kind = {"kind": "extension", "dtype": str(dt)}
    return {"name": s.name, "store": "json", "values": values, **kind}, None


def write_sweep_cache(path: Path, df: pd.DataFrame, key: str) -> bool:
    """Write a sweep result as an .npz (no pickles: arrays plus a JSON schema); False if it cannot be stored."""
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or df.index.step != 1:
        return False
    meta = {"schema": CACHE_SCHEMA, "key": key, "rows": len(df), "columns": []}
    arrays = {}
    for i, name in enumerate(df.columns):
        if not isinstance(name, str):
            return False
        col, arr = _cache_column(df[name])
        if col is None:
            return False
        if arr is not None:
            arrays[f"c{i}"] = arr
        meta["columns"].append(col)
    buf = io.BytesIO()
    np.savez_compressed(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return True


def read_sweep_cache(path: Path, key: str | None = None) -> pd.DataFrame:
    """Read a cache file written by `write_sweep_cache`, checking its schema (never unpickles anything)."""
    fix = "delete the file and the sweep recomputes it"
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise DSECacheError(f"DSE cache {path}: no schema record (not a file run_sweep wrote); {fix}")
            meta = json.loads(z["__meta__"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("schema") != CACHE_SCHEMA:
                found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
                raise DSECacheError(f"DSE cache {path}: schema {found!r}, expected {CACHE_SCHEMA!r}; {fix}")
            if key is not None and meta.get("key") != key:
                raise DSECacheError(f"DSE cache {path}: written for key {meta.get('key')!r}, not {key!r}; {fix}")
            rows, cols = meta["rows"], {}
            for i, col in enumerate(meta["columns"]):
                if col["store"] == "array":
                    vals = z[f"c{i}"]
                elif col["kind"] == "string":
                    na = pd.NA if col["na"] == "NA" else np.nan
                    vals = pd.array(col["values"], dtype=pd.StringDtype(col["storage"], na_value=na))
                elif col["kind"] == "object":
                    vals = pd.Series(col["values"], dtype=object).to_numpy()
                else:
                    vals = pd.array(col["values"], dtype=col["dtype"])
                if len(vals) != rows:
                    raise DSECacheError(f"DSE cache {path}: column {col['name']!r} has {len(vals)} rows, "
                                        f"expected {rows}; {fix}")
                cols[col["name"]] = vals
    except DSECacheError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise DSECacheError(f"DSE cache {path}: unreadable ({type(err).__name__}: {err}); {fix}") from err
    return pd.DataFrame(cols, index=pd.RangeIndex(rows))
