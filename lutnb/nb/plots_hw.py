"""Plots of the hardware side: the framework diagram (00), the block diagram, timelines and stall breakdowns
of the simulator (04), and the co-design figures (05)."""
from __future__ import annotations

import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from ..hw.config import LUTDLAConfig
from .figures import PALETTE, plt, set_style

FRAMEWORK_STAGES = (
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
    for key, label, color in FRAMEWORK_STAGES:
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


STALL_COLORS = {"imm_cycles": "#4c72b0", "stall_bank_conflict": "#c44e52", "stall_table_load": "#8172b2",
                "stall_offchip_bw": "#dd8452", "stall_fill": "#937860", "stall_fifo_empty": "#55a868"}


def _box(ax, x, y, w, h, text, color, fontsize=8):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="black", lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, text=""):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, lw=1, color="black"))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=7)


def draw_block_diagram(cfg: LUTDLAConfig, ax=None):
    """LUT-DLA's CCM -> index FIFO -> IMM drawn with matplotlib patches, labelled from `cfg`."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 5)
    ax.axis("off")
    _box(ax, 0.1, 3.9, 10.8, 0.8, f"off-chip DRAM  ({cfg.offchip_bytes_per_cycle:g} B/cycle, "
         f"{cfg.clock_mhz:g} MHz)", "#eeeeee", 9)
    _box(ax, 0.2, 0.4, 1.3, 3.0, f"activation\nSRAM\n({cfg.activation_bits}-bit)", "#fff2cc")
    ax.add_patch(Rectangle((1.8, 0.3), 3.0, 3.2, fc="#dae8fc", ec="black", lw=1))
    ax.text(3.3, 3.3, f"CCM: L={cfg.ccus} CCUs x c={cfg.c} PEs ({cfg.metric}, v={cfg.v})", ha="center",
            fontsize=8, weight="bold")
    shown = min(cfg.ccus, 4)
    for i in range(shown):
        y = 2.6 - i * 0.6
        pes = min(cfg.c, 6)
        for j in range(pes):
            ax.add_patch(Rectangle((2.0 + j * 0.42, y), 0.36, 0.4, fc="white", ec="black", lw=0.6))
            ax.text(2.18 + j * 0.42, y + 0.2, "d" if j < pes - 1 or pes == cfg.c else "..", ha="center",
                    va="center", fontsize=6)
        ax.text(4.6, y + 0.2, "argmin", fontsize=6, ha="center", va="center")
    if cfg.ccus > shown:
        ax.text(3.3, 0.45, f"... {cfg.ccus - shown} more CCUs", ha="center", fontsize=7)
    depth_cells = min(cfg.fifo_depth, 10)
    for i in range(depth_cells):
        ax.add_patch(Rectangle((5.1 + i * 0.1, 1.6), 0.1, 0.5, fc="#d5e8d4", ec="black", lw=0.5))
    ax.text(5.6, 2.3, f"index FIFO\ndepth {cfg.fifo_depth}\n({cfg.index_bits}-bit)", ha="center", fontsize=7)
    ax.add_patch(Rectangle((6.4, 0.3), 4.4, 3.2, fc="#f8cecc", ec="black", lw=1))
    ax.text(8.6, 3.3, f"IMM: P={cfg.lanes} look-up lanes, Tn={cfg.table_tile}", ha="center", fontsize=8,
            weight="bold")
    for i, name in enumerate(("ping", "pong") if cfg.double_buffer else ("table",)):
        _box(ax, 6.6 + i * 1.4, 2.1, 1.2, 0.9, f"{name}\n{cfg.c}x{cfg.table_tile}\n{cfg.table_bits}-bit",
             "white", 7)
    _box(ax, 9.5, 2.1, 1.2, 0.9, f"index buf\n(reuse)\n{cfg.sram_banks} banks", "white", 7)
    _box(ax, 6.6, 0.5, 4.1, 1.2, f"{cfg.lanes} lanes x {cfg.table_tile} adders\n"
         f"{cfg.acc_bits}-bit accumulators (LUT-Stationary)", "white", 8)
    _arrow(ax, (0.85, 3.9), (0.85, 3.4), "")
    _arrow(ax, (1.5, 1.9), (1.8, 1.9))
    _arrow(ax, (4.8, 1.85), (5.1, 1.85))
    _arrow(ax, (6.1, 1.85), (6.6, 1.2))
    _arrow(ax, (7.9, 3.9), (7.9, 3.0), f"table tiles ({cfg.table_tile_bytes} B)")
    _arrow(ax, (7.2, 2.1), (7.6, 1.7))
    ax.set_title("LUT-DLA block diagram drawn from LUTDLAConfig [our hardware model]", fontsize=10)
    return fig


def plot_timeline(ax, tl, title: str, max_tiles: int = 12, xlabel: bool = True):
    """Gantt chart of table loads (DMA) and look-up streaming (IMM) per table tile."""
    tl = tl.head(max_tiles)
    for _, r in tl.iterrows():
        ax.broken_barh([(r.dma_start, r.dma_end - r.dma_start)], (1.1, 0.8), fc="#dd8452", ec="black", lw=0.4)
        ax.broken_barh([(r.imm_start, r.imm_end - r.imm_start)], (0.1, 0.8), fc="#4c72b0", ec="black", lw=0.4)
        ax.text(r.imm_start + (r.imm_end - r.imm_start) / 2, 0.5, f"s{r.s}", ha="center", va="center",
                fontsize=6, color="white")
    ax.set_yticks([0.5, 1.5], ["IMM look-ups", "DMA table load"])
    if xlabel:
        ax.set_xlabel("cycle")
    ax.set_title(title, fontsize=9)


def plot_breakdown(ax, df, title: str):
    """Stacked bars: each layer's cycles split into busy, bank conflicts, table loads, stalls, fill."""
    bottom = None
    x = range(len(df))
    for col, color in STALL_COLORS.items():
        vals = df[col].to_numpy()
        ax.bar(x, vals, bottom=bottom, color=color, label=col.replace("_cycles", " (busy)").replace("stall_", ""))
        bottom = vals if bottom is None else bottom + vals
    ax.set_xticks(list(x), [str(n) for n in df["layer"]], rotation=90, fontsize=6)
    ax.set_ylabel("cycles")
    ax.set_title(title, fontsize=9)


def plot_loop_orders(orders, work, title_note: str = ""):
    """Figure 6: table reloads, off-chip + on-chip traffic, CCM encodes and accumulator size per loop order."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    panels = (("table_reloads", 1, "table reloads (count)", "#dd8452"),
              ("total_traffic_bytes", 1e6, "tables + activations + indices (MB)", "#4c72b0"),
              ("ccm_encodes", 1e6, "CCM encodes (millions)", "#8172b2"),
              ("accumulator_bytes", 1e3, "accumulator buffer (kB)", "#55a868"))
    for ax, (col, scale, label, color) in zip(axes, panels):
        ax.bar(range(len(orders)), orders[col] / scale, color=color)
        ax.set_xticks(range(len(orders)), list(orders["order"]), rotation=25, ha="right", fontsize=7)
        ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"Loop orders on {work.name} (M={work.M}, K={work.K}, N={work.N}){title_note}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_one_factor(curves, base: dict, metrics=(("tops_per_w_core", "core TOPS/W"),
                                                 ("tops_per_w", "system TOPS/W"),
                                                 ("tops_per_mm2", "TOPS/mm$^2$"),
                                                 ("utilization", "IMM lane utilisation"))):
    """Figure 11: one-factor-at-a-time curves around a base design; one panel per metric, one line per factor
    (x = the factor's value as a multiple of its base value, so every factor shares the axis)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4))
    factors = list(dict.fromkeys(curves["factor"]))
    colors = plt.get_cmap("tab10")
    for ax, (col, label) in zip(axes, metrics):
        for i, f in enumerate(factors):
            g = curves[curves["factor"] == f].sort_values("value")
            ax.plot(g["value"] / base[f], g[col], "o-", color=colors(i), label=f"{f} (base {base[f]:g})", ms=3)
        ax.axvline(1.0, color="0.6", lw=0.8)
        ax.set(xscale="log", xlabel="factor value / base value", ylabel=label)
        if col == "utilization":
            ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=6)
    fig.suptitle("One factor at a time around the balanced design (ResNet-18, our cost model)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_efficiency(points, label: str):
    """Figure 12: measured accuracy (stored records, labelled source and mode) against core TOPS/W and TOPS/mm^2.

    `points`: rows with tops_per_w_core, tops_per_mm2, accuracy, metric, v, c; `label` names the accuracy's
    source (e.g. "LUTBoost test accuracy, digits CNN, SMOKE run")."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, col, xl in ((axes[0], "tops_per_w_core", "core TOPS/W"), (axes[1], "tops_per_mm2", "TOPS/mm$^2$")):
        for m, g in points.groupby("metric"):
            ax.scatter(g[col], g["accuracy"], s=18, color=PALETTE.get(m, "k"), label=m)
            for _, r in g.iterrows():
                ax.annotate(f"v{r['v']} c{r['c']}", (r[col], r["accuracy"]), fontsize=6,
                            xytext=(2, 2), textcoords="offset points")
        ax.set(xlabel=xl, ylabel=label, xscale="log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_baseline_ratios(cmp, paper_power, paper_area):
    """Figure 13: LUT-DLA / baseline ratios, core and system power efficiency and area efficiency, at equal area
    and at equal throughput (one group of bars per matching, one bar per baseline)."""
    cols = (("power_eff_ratio_core", "power eff. ratio, core", paper_power),
            ("power_eff_ratio_system", "power eff. ratio, system", paper_power),
            ("area_eff_ratio", "area eff. ratio", paper_area))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    groups = list(cmp[["workload", "point", "matched_by"]].drop_duplicates().itertuples(index=False))
    precs = list(dict.fromkeys(cmp["baseline"]))
    for ax, (col, label, (lo, hi)) in zip(axes, cols):
        x = np.arange(len(groups))
        for i, prec in enumerate(precs):
            vals = [float(cmp[(cmp.workload == w) & (cmp.point == p) & (cmp.matched_by == mb)
                              & (cmp.baseline == prec)][col].iloc[0]) for w, p, mb in groups]
            ax.bar(x + (i - (len(precs) - 1) / 2) * 0.8 / len(precs), vals, 0.8 / len(precs), label=prec.upper())
        ax.axhspan(lo, hi, color="0.88", zorder=0, label="paper's range")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{w}\n{p}\nequal {mb}" for w, p, mb in groups], fontsize=6)
        ax.set(yscale="log", ylabel=f"{label} (LUT-DLA / baseline)")
    axes[0].legend(fontsize=7)
    fig.suptitle("LUT-DLA against dense baselines: core (on-chip) and system (+ DRAM) accountings", fontsize=10)
    fig.tight_layout()
    return fig
