"""One plot style and one way to save figures (PNG + PDF: FULL under figures/, SMOKE under figures/_smoke/)."""
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

from ..files import figures_dir, smoke_figures_dir
from .run import run_mode

# one colour, one meaning: the three distance metrics and the fp32 reference everywhere; the other keys are roles
# used inside one figure (table precision, loss terms, codebook entropy), chosen not to clash with the metrics
PALETTE = {"l2": "#1f77b4", "l1": "#ff7f0e", "chebyshev": "#2ca02c", "fp32": "#444444",
           "float_tables": "#9467bd", "int8_tables": "#8c564b", "task": "#d62728", "recon": "#17becf",
           "distill": "#bcbd22", "entropy": "#e377c2"}
METRIC_ORDER = ("l2", "l1", "chebyshev")


def set_style() -> None:
    """The project's plot style (sets matplotlib rcParams)."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "font.size": 10, "axes.titlesize": 11, "legend.frameon": False,
        "pdf.fonttype": 42, "svg.hashsalt": "lutnb", "path.simplify": True,
    })


SMOKE_NOTE = "SMOKE run (CI sizes): a plumbing check, not a result"


def stamp_smoke(fig) -> None:
    """Mark `fig` as a SMOKE figure: a large diagonal watermark and a suptitle suffix (once per figure)."""
    if getattr(fig, "_lutnb_smoke", False):
        return
    fig.text(0.5, 0.5, "SMOKE", transform=fig.transFigure, ha="center", va="center", rotation=25,
             fontsize=72, color="red", alpha=0.18, fontweight="bold", zorder=1000)
    sup = getattr(fig, "_suptitle", None)
    fig.suptitle(f"{sup.get_text()}\n[{SMOKE_NOTE}]" if sup is not None and sup.get_text() else f"[{SMOKE_NOTE}]",
                 color="red" if sup is None else sup.get_color())
    fig._lutnb_smoke = True


def savefig(fig, name: str, directory: str | Path | None = None, smoke: bool | None = None) -> dict[str, Path]:
    """Save `fig` as `<name>.png` and `<name>.pdf` and return both paths.

    SMOKE (the current run's mode from `lutnb.nb.begin_run`, or `smoke=True`): stamped "SMOKE" and written to
    figures/_smoke/ (git-ignored). FULL: written to figures/. `directory` overrides the folder (the stamp stays)."""
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"figure name {name!r}: give a bare stem such as 'fig05_accuracy_vs_bits'")
    is_smoke = run_mode(smoke)
    if is_smoke:
        stamp_smoke(fig)
    out = Path(directory) if directory else (smoke_figures_dir() if is_smoke else figures_dir())
    out.mkdir(parents=True, exist_ok=True)
    mode = SMOKE_NOTE if is_smoke else "FULL run"
    paths = {}
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        meta = {"CreationDate": None, "Subject": f"lutnb {mode}"} if ext == "pdf" else {
            "Software": None, "Description": f"lutnb {mode}"}
        fig.savefig(p, metadata=meta)
        paths[ext] = p
    return paths
