"""Figure 3: the framework overview (model -> LUTBoost -> tables -> simulator / DSE), annotated with a real run."""
from __future__ import annotations

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .figures import plt, set_style

STAGES = (
    ("model", "trained fp32 model", "#dfe9f5"),
    ("lutboost", "LUTBoost\n(convert, calibrate,\ncentroids, joint, LUT-QAT)", "#fde8d0"),
    ("tables", "tables + integer engine\n(INT-b T_s = C_s W_s^T)", "#e2f0d9"),
    ("simulator", "cycle-level simulator\n(CCM -> FIFO -> IMM)", "#ece2f3"),
    ("dse", "cost model + co-design\nspace exploration", "#f8dede"),
)


def draw_framework(annotations: dict[str, list[str]] | None = None, title: str = ""):
    """Draw the pipeline as five boxes with arrows; `annotations[stage]` lines are printed under each box.

    Stage keys: model, lutboost, tables, simulator, dse. Pass numbers computed by a real run.
    """
    set_style()
    annotations = annotations or {}
    fig, ax = plt.subplots(figsize=(13, 3.9))
    ax.set_xlim(-0.5, 101)
    ax.set_ylim(9, 47)
    ax.axis("off")
    w, h, gap, y = 16.6, 13.0, 3.5, 24.0
    x = 1.0
    centers = []
    for key, label, color in STAGES:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4,rounding_size=1.5", fc=color,
                                    ec="#333333", lw=1.2))
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=8.4, weight="bold")
        lines = annotations.get(key, [])
        for i, line in enumerate(lines):
            ax.text(x + w / 2, y - 3.2 - 3.6 * i, line, ha="center", va="top", fontsize=8.3, color="#222222")
        centers.append((x, x + w))
        x += w + gap
    for (_, right), (left, _) in zip(centers[:-1], centers[1:]):
        ax.add_patch(FancyArrowPatch((right + 0.5, y + h / 2), (left - 0.5, y + h / 2), arrowstyle="-|>",
                                     mutation_scale=16, lw=1.5, color="#333333"))
    # the DSE feeds model parameters back to LUTBoost
    ax.add_patch(FancyArrowPatch((centers[-1][0] + w / 2, y + h + 0.8), (centers[1][0] + w / 2, y + h + 0.8),
                                 connectionstyle="arc3,rad=0.12", arrowstyle="-|>", mutation_scale=14, lw=1.1,
                                 color="#8a3b3b", ls="--"))
    ax.text(50, 46.5, "co-design: (v, c, metric, table bits) <-> (CCUs, lanes, buffers, bandwidth)", ha="center",
            va="top", fontsize=8.5, color="#8a3b3b")
    if title:
        fig.suptitle(title, fontsize=11, y=1.02)
    return fig
