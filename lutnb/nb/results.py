"""Results JSON that every notebook writes (results/NN_name.json), written atomically.

A FULL run (see `lutnb.nb.run`) also writes data/reference_results/NN_name.json, and both carry a
``provenance`` block; SMOKE results stay in results/ (git-ignored)."""
from __future__ import annotations

import json
import re
from pathlib import Path

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


# keys that hold wall-clock measurements (seconds, times, throughput measured on this machine): two runs with the
# same seed may differ there and nowhere else (the determinism tests, tools/compare_results.py)
TIMING = re.compile(r"(second|time|wall|elapsed|duration|_s$|_ms$|per_s)", re.I)


def is_timing(path: tuple) -> bool:
    """True when any key on `path` names a timing field (`TIMING`)."""
    return any(isinstance(k, str) and TIMING.search(k) for k in path)


def differences(a, b, path=()) -> list:
    """[(path, old, new)] for every leaf where a and b differ (a missing key shows as '<absent>')."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(((*path, k), a.get(k, "<absent>"), b.get(k, "<absent>")))
            else:
                out += differences(a[k], b[k], (*path, k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, (*path, i))]
    return [] if a == b else [(path, a, b)]
