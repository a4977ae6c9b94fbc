"""Results JSON that every notebook writes (results/NN_name.json), written atomically."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_bytes, results_dir


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, 10)
    return obj


def write_results(name: str, payload: dict, directory: str | Path | None = None) -> Path:
    """Write `payload` to results/<name>.json (sorted keys, floats rounded to 10 digits)."""
    out = Path(directory) if directory else results_dir()
    text = json.dumps(_clean(payload), indent=2, sort_keys=True) + "\n"
    return atomic_write_bytes(out / f"{name}.json", text.encode())


def read_results(name: str, directory: str | Path | None = None) -> dict:
    out = Path(directory) if directory else results_dir()
    return json.loads((out / f"{name}.json").read_text())
