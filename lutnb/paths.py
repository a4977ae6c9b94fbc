"""Where things live: the repository root, figures/, results/, data/ (absolute paths)."""
from __future__ import annotations

import os
from pathlib import Path


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
