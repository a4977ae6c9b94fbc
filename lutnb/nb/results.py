"""Results JSON that every notebook writes (results/NN_name.json), written atomically.

A FULL run (see `lutnb.nb.run`) also writes data/reference_results/NN_name.json, and both carry a
``provenance`` block; SMOKE results stay in results/ (git-ignored)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import atomic_write_bytes, json_safe, reference_dir, results_dir
from .run import provenance, run_mode


def write_results(name: str, payload: dict, directory: str | Path | None = None,
                  smoke: bool | None = None) -> Path:
    """Write `payload` to results/<name>.json (sorted keys, floats rounded to 10 digits).

    FULL (the current run's mode, or `smoke=False`): `payload` plus ``provenance`` (`lutnb.nb.run.provenance`)
    goes to results/<name>.json and to data/reference_results/<name>.json (LUTNB_REFERENCE overrides the
    latter). SMOKE, or no run begun (tools that write their own records): results/ only, payload unchanged."""
    out = Path(directory) if directory else results_dir()
    is_smoke = run_mode(smoke, required=False)
    if is_smoke is False:
        if "provenance" in payload:
            raise ValueError(f"write_results({name!r}): the payload already has a 'provenance' key; FULL results "
                             "get theirs from lutnb.nb.run.provenance(): rename that key")
        payload = {**payload, "provenance": provenance()}
    text = json.dumps(json_safe(payload), indent=2, sort_keys=True) + "\n"
    if is_smoke is False:
        atomic_write_bytes(reference_dir() / f"{name}.json", text.encode())
    return atomic_write_bytes(out / f"{name}.json", text.encode())


def read_results(name: str, directory: str | Path | None = None) -> dict:
    out = Path(directory) if directory else results_dir()
    return json.loads((out / f"{name}.json").read_text())


# keys whose values are wall-clock measurements or dates: two runs of the same seed differ only in these
TIMING_KEYS = frozenset({"seconds", "wall_seconds", "wall_s", "date_utc", "started", "elapsed", "time_s",
                         "lutboost_s", "single_s", "run_seconds_total", "provenance"})


def comparable(payload: Any) -> Any:
    """`payload` without its timing fields (`TIMING_KEYS`, and keys ending in ``_seconds``): what two runs
    with the same seed must reproduce exactly (the determinism tests compare this)."""
    if isinstance(payload, dict):
        return {k: comparable(v) for k, v in payload.items()
                if k not in TIMING_KEYS and not str(k).endswith("_seconds")}
    if isinstance(payload, list):
        return [comparable(v) for v in payload]
    return payload


def differences(a: Any, b: Any, path: str = "", limit: int = 10) -> list[str]:
    """Up to `limit` places where two (comparable) results differ, as 'path: a != b' lines."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if k not in x or k not in y:
                    out.append(f"{p}/{k}: only in {'second' if k not in x else 'first'}")
                else:
                    walk(x[k], y[k], f"{p}/{k}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, w) in enumerate(zip(x, y)):
                walk(u, w, f"{p}[{i}]")
        elif x != y:
            out.append(f"{p or '/'}: {str(x)[:80]} != {str(y)[:80]}")

    walk(a, b, path)
    return out
