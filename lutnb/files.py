"""Where things live and how they are written: repository paths, atomic writes, checkpoints, run caches."""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def repo_root() -> Path:
    """The repository root (override with LUTNB_ROOT, e.g. for an installed, non-editable copy)."""
    env = os.environ.get("LUTNB_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd().resolve()


def _sub(name: str, env: str) -> Path:
    p = Path(os.environ[env]).resolve() if os.environ.get(env) else repo_root() / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def figures_dir() -> Path:
    return _sub("figures", "LUTNB_FIGURES")


def results_dir() -> Path:
    return _sub("results", "LUTNB_RESULTS")


def smoke_figures_dir() -> Path:
    """Where SMOKE runs put their figures: figures/_smoke/ (git-ignored), under LUTNB_FIGURES when set."""
    p = figures_dir() / "_smoke"
    p.mkdir(parents=True, exist_ok=True)
    return p


def reference_dir() -> Path:
    """Where FULL runs put their results JSON with provenance: data/reference_results/ (committed), or
    LUTNB_REFERENCE (the runner's --out and the tests point it elsewhere)."""
    env = os.environ.get("LUTNB_REFERENCE")
    p = Path(env).resolve() if env else data_dir() / "reference_results"
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_dir() -> Path:
    return _sub("data", "LUTNB_DATA")


def current_umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temp file in the same folder, fsync, then rename over `path`.

    The file ends with the mode a normal ``open()`` gives a new file, 0o666 & ~umask (`tempfile.mkstemp`
    alone would leave 0o600, unreadable to the user's group on a shared machine); this also applies when
    the file replaces an older one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; pass a file path")
    mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not hasattr(os, "fchmod"):
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically: serialize in memory, then `atomic_write_bytes` (temp file, fsync, rename)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or not written by `save_checkpoint`."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, numbers and strings only.

    A file that cannot be read (truncated, corrupt, junk, or holding arbitrary pickled objects) raises
    `CheckpointError` naming the path; lutnb never loads such a file with ``weights_only=False``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file; pass the path of a .pt file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch reports damage as RuntimeError, UnpicklingError, EOFError, ...
        reason = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else ""
        if "weights_only" in str(e) or "WeightsUnpickler" in str(e):
            reason = "it holds objects other than tensors, dicts, lists, numbers and strings"
        detail = f" ({type(e).__name__}: {reason[:200]})" if reason else f" ({type(e).__name__})"
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a lutnb checkpoint (truncated, corrupt, or written by "
            f"something else){detail}; delete it and write it again (e.g. re-run without resume)") from None


def json_safe(obj: Any) -> Any:
    """`obj` as plain JSON values: numpy and 0-d tensor scalars unwrapped, NaN/inf as None, floats rounded to
    10 digits, keys as strings."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, 10)
    return obj


# ------------------------------------------------------------------------------------------- run cache
class RunCache:
    """Finished runs of a long sweep, one JSON line each: what makes FULL notebook runs resumable.

    A run is stored under the hash of a description of everything that determines it (a JSON-able dict: the
    function, its arguments, the configuration). `run(desc, fn)` returns the stored record when there is one
    (with ``cached: True``), else calls `fn()`, appends its record (one write, flushed and fsynced) and returns
    it. A line cut short by a killed run is ignored. The description does not cover the code itself: delete
    the file after changing the training code."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @staticmethod
    def key(desc: dict) -> str:
        import hashlib

        text = json.dumps(desc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def records(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            try:
                item = json.loads(line)
                out[item["key"]] = item["record"]
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def get(self, desc: dict) -> dict | None:
        rec = self.records().get(self.key(desc))
        return None if rec is None else {**rec, "cached": True}

    def put(self, desc: dict, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": self.key(desc), "desc": json_safe(desc), "record": json_safe(record)},
                          sort_keys=True, default=str) + "\n"
        with open(self.path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def run(self, desc: dict, fn) -> dict:
        hit = self.get(desc)
        if hit is not None:
            return hit
        record = fn()
        self.put(desc, record)
        return record


def describe_value(value: Any) -> Any:
    """A JSON-able stand-in for one argument of a cached run: scalars and containers as they are; a tensor,
    an ``nn.Module`` or a list of strings by a hash of its contents; anything else by its type name."""
    import hashlib

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): describe_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value) and len(value) > 16:
            return {"strings": len(value), "sha256": hashlib.sha256("\n".join(value).encode()).hexdigest()[:16]}
        return [describe_value(v) for v in value]
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return {"tensor": list(t.shape), "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]}
    if isinstance(value, torch.nn.Module):
        h = hashlib.sha256()
        for name, t in value.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return {"module": type(value).__name__, "sha256": h.hexdigest()[:16]}
    name = getattr(value, "name_or_path", None)
    if name and os.path.isabs(str(name)):  # a local folder: where it is installed must not change the key
        name = "/".join(Path(str(name)).parts[-2:])
    return {"object": type(value).__name__, **({"name_or_path": str(name)} if name else {})}


def cacheable(ignore: tuple[str, ...] = ("progress",)):
    """Give a function that returns a record (a dict) a ``cache=`` keyword: with a path, the call is looked up
    in / stored to that `RunCache`, keyed by the function's name and all its arguments (defaults applied;
    the names in `ignore` left out)."""
    import functools
    import inspect

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, cache: str | os.PathLike | None = None, **kwargs):
            if cache is None:
                return fn(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            if bound.arguments.get("return_model"):
                raise ValueError(f"{fn.__name__}(cache=...) stores numbers only; with return_model=True pass "
                                 "cache=None")
            desc = {"fn": f"{fn.__module__}.{fn.__qualname__}",
                    **{k: describe_value(v) for k, v in bound.arguments.items() if k not in ignore}}
            return RunCache(cache).run(desc, lambda: fn(*args, **kwargs))

        return wrapper

    return deco
