"""Where things live and how they are written: repository paths, atomic writes, checkpoints."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

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


def data_dir() -> Path:
    return _sub("data", "LUTNB_DATA")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, numbers and strings only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)
