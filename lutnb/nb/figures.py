"""One plot style and one way to save figures (PNG + PDF under figures/)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "ipykernel" not in str(matplotlib.get_backend()).lower():
    # headless runs (papermill, CI) draw with Agg; inside Jupyter the inline backend is kept
    try:
        import IPython  # noqa: F401

        if IPython.get_ipython() is None:
            matplotlib.use("Agg")
    except ImportError:
        matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..files import figures_dir

PALETTE = {"l2": "#1f77b4", "l1": "#ff7f0e", "chebyshev": "#2ca02c", "fp32": "#444444"}


def set_style() -> None:
    """The project's plot style (sets matplotlib rcParams)."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "font.size": 10, "axes.titlesize": 11, "legend.frameon": False,
        "pdf.fonttype": 42, "svg.hashsalt": "lutnb", "path.simplify": True,
    })


def savefig(fig, name: str, directory: str | Path | None = None) -> dict[str, Path]:
    """Save `fig` as `<name>.png` and `<name>.pdf` under figures/ and return both paths."""
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"figure name {name!r}: give a bare stem such as 'fig05_accuracy_vs_bits'")
    out = Path(directory) if directory else figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        fig.savefig(p, metadata=meta)
        paths[ext] = p
    return paths
