"""Plots of the hardware side: the framework diagram (00), the block diagram, timelines and stall breakdowns
of the simulator (04), and the co-design figures (05)."""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from ..codesign.dse import pareto_mask
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
    w, h, gap, y = 16.6, 13.0, 3.5, 24.0
    n_lines = max([len(v) for v in annotations.values()] + [4])
    y_low = min(9.0, y - 3.2 - 3.6 * n_lines)                      # every annotation line stays in the axes
    fig, ax = plt.subplots(figsize=(13, 3.9 * (47 - y_low) / 38))
    ax.set_xlim(-0.5, 101)
    ax.set_ylim(y_low, 47)
    ax.axis("off")
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




def _box(ax, x, y, w, h, text, color, fontsize=8):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="black", lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, text=""):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, lw=1, color="black"))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=7)


def draw_block_diagram(cfg: LUTDLAConfig, ax=None):
    """LUT-DLA's CCM -> index FIFO -> IMM drawn with matplotlib patches, labelled from `cfg`."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(11.5, 4.6))
    ax.set_xlim(0, 11.5)
    ax.set_ylim(0, 5)
    ax.axis("off")
    _box(ax, 0.1, 3.9, 11.3, 0.8, f"off-chip DRAM  ({cfg.offchip_bytes_per_cycle:g} B/cycle, "
         f"{cfg.clock_mhz:g} MHz)", "#eeeeee", 9)
    _box(ax, 0.2, 0.4, 1.3, 3.0, f"activation\nSRAM\n({cfg.activation_bits}-bit)", "#fff2cc")
    ax.add_patch(Rectangle((1.8, 0.3), 3.0, 3.2, fc="#dae8fc", ec="black", lw=1))
    ax.text(3.3, 3.22, f"CCM: L={cfg.ccus} CCUs x c={cfg.c} PEs\n({cfg.metric}, v={cfg.v})", ha="center",
            va="center", fontsize=7.5, weight="bold")
    shown = min(cfg.ccus, 4)
    for i in range(shown):
        y = 2.6 - i * 0.6
        pes = min(cfg.c, 6)
        for j in range(pes):
            ax.add_patch(Rectangle((1.95 + j * 0.38, y), 0.32, 0.4, fc="white", ec="black", lw=0.6))
            ax.text(2.11 + j * 0.38, y + 0.2, "d" if j < pes - 1 or pes == cfg.c else "..", ha="center",
                    va="center", fontsize=6)
        ax.text(4.7, y + 0.2, "argmin", fontsize=6.5, ha="right", va="center")
    if cfg.ccus > shown:
        ax.text(3.3, 0.45, f"... {cfg.ccus - shown} more CCUs", ha="center", fontsize=7)
    depth_cells = min(cfg.fifo_depth, 10)
    for i in range(depth_cells):
        ax.add_patch(Rectangle((5.1 + i * 0.1, 1.6), 0.1, 0.5, fc="#d5e8d4", ec="black", lw=0.5))
    ax.text(5.6, 2.3, f"index FIFO\ndepth {cfg.fifo_depth}\n({cfg.index_bits}-bit)", ha="center", fontsize=7)
    ax.add_patch(Rectangle((6.4, 0.3), 4.4, 3.2, fc="#f8cecc", ec="black", lw=1))
    ax.text(7.1, 3.25, f"IMM: P={cfg.lanes} look-up lanes, Tn={cfg.table_tile}", ha="left", va="center",
            fontsize=8, weight="bold")
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
    _arrow(ax, (6.85, 3.9), (6.85, 3.0))
    ax.text(6.75, 3.7, f"table tiles ({cfg.table_tile_bytes} B)", ha="right", va="center", fontsize=7)
    _arrow(ax, (7.2, 2.1), (7.6, 1.7))
    # indices written once into the index buffer (from the FIFO) and re-read for the other column tiles
    ax.add_patch(FancyArrowPatch((6.1, 1.9), (9.8, 2.1), connectionstyle="angle,angleA=0,angleB=90,rad=0",
                                 arrowstyle="-|>", mutation_scale=10, lw=1, color="black"))
    ax.text(8.9, 1.93, "indices", fontsize=6.5, ha="center", va="bottom")
    _arrow(ax, (10.4, 2.1), (10.4, 1.7))
    ax.text(10.45, 1.9, "re-read", fontsize=6.5, ha="left", va="center")
    # outputs written back to DRAM after the last sub-space
    ax.add_patch(FancyArrowPatch((10.7, 1.0), (11.15, 3.9), connectionstyle="angle,angleA=0,angleB=90,rad=0",
                                 arrowstyle="-|>", mutation_scale=10, lw=1, color="black"))
    ax.text(11.22, 2.4, "outputs (write-back)", fontsize=7, rotation=90, ha="left", va="center")
    ax.set_title(f"Fig. 4: LUT-DLA block diagram for {cfg.metric}, v={cfg.v}, c={cfg.c}, {cfg.table_bits}-bit "
                 f"tables, {cfg.acc_bits}-bit accumulators (drawn from LUTDLAConfig) [our hardware model]",
                 fontsize=10)
    return fig


# ---- one meaning per colour: each mapping below is used by every panel of its figure -------------------
STALL_COLORS = {"imm_cycles": "#4c72b0", "stall_bank_conflict": "#c44e52", "stall_table_load": "#8172b2",
                "stall_offchip_bw": "#dd8452", "stall_fill": "#937860", "stall_fifo_empty": "#55a868"}
STALL_LABELS = {"imm_cycles": "look-ups issued (busy)", "stall_bank_conflict": "stall: bank conflict",
                "stall_table_load": "stall: table load", "stall_offchip_bw": "stall: off-chip link",
                "stall_fill": "stall: pipeline fill", "stall_fifo_empty": "stall: index FIFO empty"}
TIMELINE_COLORS = {"dma": "#dd8452", "imm": "#4c72b0"}
ORDER_COLORS = {"LS": "#4c72b0", "LS, no index reuse": "#9db4d8", "OS": "#dd8452", "IS": "#55a868"}
BASELINE_COLORS = {"int8": "#4c72b0", "int4": "#dd8452", "fp16": "#55a868"}
MATCH_MARKERS = {"area": "o", "throughput": "s"}
METRIC_STYLES = {"l2": ("o", "-"), "l1": ("s", "-"), "chebyshev": ("^", "--")}
SOURCE_MARKERS = {"lutboost": "o", "single_stage": "s", "kmeans": "^"}
FACTOR_COLORS = {"ccus": "#4c72b0", "lanes": "#dd8452", "table_tile": "#55a868", "acc_buffer_kb": "#c44e52",
                 "offchip_bytes_per_cycle": "#8172b2", "adder_fanin": "#937860", "table_buffer_kb": "#da8bc3",
                 "clock_mhz": "#8c8c8c"}
COMPONENT_LABELS = {"ccm": "CCM (distance PEs)", "imm": "IMM (look-up adders)", "pe": "MAC array (dense)",
                    "sram": "SRAM buffers", "dram": "DRAM (off chip)", "leakage": "leakage", "dense": "dense unit"}
COMPONENT_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c",
                    "#ccb974", "#64b5cd")


def plain_number(x: float, _pos=None) -> str:
    """Tick label for a log axis: 0.25, 0.5, 1, 2, 40 (no 10^x or 2x10^-1 notation)."""
    if x <= 0:
        return ""
    return f"{x:.3g}" if x < 1000 else f"{x:,.0f}"


def set_log_ticks(ax, axis: str = "x", values=None) -> None:
    """Log scale on `axis` with plain-number labels; `values` fixes the ticks (e.g. the factor multiples)."""
    getattr(ax, f"set_{axis}scale")("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(sorted(set(values))) if values is not None else
                        LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(plain_number))
    a.set_minor_formatter(NullFormatter())
    if values is not None:
        a.set_minor_locator(NullLocator())


def legend_below(fig, handles, labels, ncol: int | None = None, y: float = 0.0) -> object:
    """One legend for the whole figure, centred under the panels (it never covers data)."""
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), ncol=ncol or len(labels),
                      frameon=False, fontsize=9)


def plot_timeline(ax, tl, title: str, max_tiles: int = 12, xlabel: bool = True):
    """Gantt chart of table loads (DMA) and look-up streaming (IMM) per table tile s."""
    tl = tl.head(max_tiles)
    for _, r in tl.iterrows():
        ax.broken_barh([(r.dma_start, r.dma_end - r.dma_start)], (1.1, 0.8), fc=TIMELINE_COLORS["dma"], ec="black",
                       lw=0.4)
        ax.broken_barh([(r.imm_start, r.imm_end - r.imm_start)], (0.1, 0.8), fc=TIMELINE_COLORS["imm"], ec="black",
                       lw=0.4)
        ax.text(r.imm_start + (r.imm_end - r.imm_start) / 2, 0.5, f"s{r.s}", ha="center", va="center",
                fontsize=7, color="white")
    ax.set_yticks([0.5, 1.5], ["IMM look-ups", "DMA table load"])
    ax.set_ylim(0, 2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    ax.grid(axis="y", visible=False)
    if xlabel:
        ax.set_xlabel("cycle")
    ax.set_title(title, fontsize=10, loc="left")


def plot_table_swap(tl_single, t_single: dict, tl_double, t_double: dict, max_tiles: int = 12):
    """Figure 7: table-tile loads and look-up streaming with one table buffer (top) and two (bottom)."""
    set_style()
    fig, axes = plt.subplots(2, 1, figsize=(11, 4.4), sharex=True)
    plot_timeline(axes[0], tl_single, f"single buffer: {t_single['total_cycles']:,} cycles, "
                  f"{t_single['stall_table_load']:,} exposed table-load cycles", max_tiles, xlabel=False)
    plot_timeline(axes[1], tl_double, f"double buffer (ping-pong): {t_double['total_cycles']:,} cycles, "
                  f"{t_double['stall_table_load'] + t_double['stall_offchip_bw']:,} exposed load + link cycles",
                  max_tiles)
    handles = [Patch(fc=TIMELINE_COLORS[k], ec="black", lw=0.4) for k in ("dma", "imm")]
    n_tiles = len(tl_double)
    shown = min(max_tiles, n_tiles)
    fig.suptitle(f"Fig. 7: table swaps, first {shown} of {n_tiles} table tiles drawn; cycle counts are totals "
                 f"over all {n_tiles} tiles (our simulator)", fontsize=11)
    fig.tight_layout()
    legend_below(fig, handles, ["DMA loads table tile s", "IMM streams rows through tile s"])
    return fig


def plot_breakdown(ax, df, title: str):
    """Stacked bars from 0: each layer's cycles split into busy look-ups and the named stall causes."""
    bottom = np.zeros(len(df))
    x = np.arange(len(df))
    for col, color in STALL_COLORS.items():
        vals = df[col].to_numpy(dtype=float)
        ax.bar(x, vals, bottom=bottom, color=color, label=STALL_LABELS[col], width=0.8)
        bottom = bottom + vals
    ax.set_xticks(list(x), [str(n) for n in df["layer"]], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(df) - 0.4)
    ax.set_ylim(0, max(float(bottom.max()), 1.0) * 1.05)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:,.0f}"))
    ax.set_ylabel("cycles")
    ax.set_title(title, fontsize=9)


def plot_latency_breakdowns(panels, width_ratios=None, title: str = ""):
    """Figure 14 (latency half): one stacked-bar panel per (per-layer DataFrame, title), one shared legend."""
    set_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 4.6), gridspec_kw={"width_ratios": width_ratios}
                             if width_ratios else None, squeeze=False)
    for ax, (df, t) in zip(axes[0], panels):
        plot_breakdown(ax, df, t)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    shown = [k for k in STALL_COLORS if any(float(df[k].sum()) > 0 for df, _ in panels)]
    zero = [STALL_LABELS[k] for k in STALL_COLORS if k not in shown]
    legend_below(fig, [Patch(color=STALL_COLORS[k]) for k in shown], [STALL_LABELS[k] for k in shown], y=-0.01)
    if zero:
        fig.text(0.5, -0.07, "0 cycles in every panel (not drawn): " + ", ".join(zero), ha="center", va="top",
                 fontsize=8.5, color="#444444")
    return fig


def plot_loop_orders(orders, work, title_note: str = ""):
    """Figure 6: table reloads, off-chip + on-chip traffic, CCM encodes and accumulator size per loop order.

    One colour per loop order in every panel; horizontal bars from 0 with the value printed at the bar's end."""
    set_style()
    panels = (("table_reloads", 1, "table reloads (count)"),
              ("total_traffic_bytes", 2 ** 20, "tables + activations + indices (MiB)"),
              ("ccm_encodes", 1e6, "CCM encodes (millions)"),
              ("accumulator_bytes", 2 ** 10, "accumulator buffer (KiB)"))
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.0), sharey=True)
    names = list(orders["order"])
    y = np.arange(len(names))[::-1]
    colors = [ORDER_COLORS.get(o, "0.5") for o in names]
    for ax, (col, scale, label) in zip(axes, panels):
        vals = orders[col].to_numpy(dtype=float) / scale
        ax.barh(y, vals, color=colors, height=0.65)
        top = float(vals.max()) if len(vals) else 1.0
        ax.set_xlim(0, (top if top > 0 else 1.0) * 1.3)
        for yi, v in zip(y, vals):
            ax.text(v + 0.02 * ax.get_xlim()[1], yi, f"{v:,.0f}" if col == "table_reloads" else f"{v:,.3g}",
                    va="center", fontsize=8)
        if col == "table_reloads":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, names)
    fig.suptitle(f"Fig. 6: loop orders on {work.name} (M={work.M}, K={work.K}, N={work.N}){title_note}; "
                 "closed-form counts, our model", fontsize=10)
    fig.tight_layout()
    return fig


def plot_one_factor(curves, base: dict, metrics=(("tops_per_w_core", "core TOPS/W (on chip)"),
                                                 ("tops_per_w", "system TOPS/W (+ DRAM)"),
                                                 ("tops_per_mm2", "TOPS/mm$^2$"),
                                                 ("utilization", "IMM lanes busy (%)")),
                    title: str = "Fig. 11: one hardware factor at a time around the balanced design "
                                 "(ResNet-18, our 45 nm cost model)"):
    """Figure 11: one-factor-at-a-time curves around a base design; one panel per metric, one colour per factor
    in every panel, x = the factor's value over its base value (log scale), one legend under the panels."""
    set_style()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4))
    axes = np.atleast_1d(axes)
    factors = list(dict.fromkeys(curves["factor"]))
    multiples = sorted({float(v) / base[f] for f in factors for v in curves.loc[curves["factor"] == f, "value"]})
    handles = []
    for ax, (col, label) in zip(axes, metrics):
        scale = 100.0 if col == "utilization" else 1.0
        for i, f in enumerate(factors):
            g = curves[curves["factor"] == f].sort_values("value")
            (h,) = ax.plot(g["value"] / base[f], g[col] * scale, "o-", ms=3.5, lw=1.4,
                           color=FACTOR_COLORS.get(f, COMPONENT_COLORS[i % len(COMPONENT_COLORS)]))
            if ax is axes[0]:
                handles.append(h)
        ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
        set_log_ticks(ax, "x", [m for m in multiples if m >= min(multiples)])
        ax.set_xlabel("value / balanced value (log)")
        ax.set_title(label, fontsize=10)
        ax.set_ylim(0, 105 if col == "utilization" else None)
        if col != "utilization":
            ax.set_ylim(0, ax.get_ylim()[1] * 1.05)
            ax.ticklabel_format(axis="y", useOffset=False)
        plt.setp(ax.get_xticklabels(), rotation=0, fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    legend_below(fig, handles, [f"{f} (balanced: {base[f]:g})" for f in factors], ncol=min(len(factors), 3))
    return fig


def _dense_log_ticks(ax, axis: str, lo: float, hi: float) -> None:
    """Log scale on `axis` with ticks at 1, 1.5, 2, 3, 5, 7 per decade inside [lo, hi] (at least two ticks),
    plain-number labels and no minor labels."""
    decades = range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
    ticks = [m * 10.0 ** d for d in decades for m in (1, 1.5, 2, 3, 5, 7) if lo <= m * 10.0 ** d <= hi]
    set_log_ticks(ax, axis, ticks if len(ticks) >= 2 else [lo, hi])


def plot_accuracy_vs_efficiency(points, title: str = "Fig. 12: Pareto fronts of measured test accuracy against "
                                                     "efficiency, balanced hardware (our cost model)"):
    """Figure 12: measured accuracy (stored records) against core TOPS/W and TOPS/mm^2, with each panel's Pareto
    front (higher accuracy and higher efficiency) drawn as a step line through its points.

    `points`: rows with model, source, metric, v, c, accuracy (a fraction), tops_per_w_core, tops_per_mm2 and
    optionally n_seeds and accuracy_std (error bars where more than one seed). Colour = distance metric,
    marker = conversion mode (source); one row of panels per model; only front points are labelled (v, c),
    with alternating offsets so neighbouring labels do not overlap."""
    set_style()
    models = sorted(set(points["model"]))
    fig, axes = plt.subplots(len(models), 2, figsize=(12, 3.8 * len(models)), squeeze=False)
    for row, model in zip(axes, models):
        sub = points[points["model"] == model].reset_index(drop=True)
        for ax, col, xl, name in ((row[0], "tops_per_w_core", "core TOPS/W (on chip, log)", "core TOPS/W"),
                                  (row[1], "tops_per_mm2", "TOPS/mm$^2$ (log)", "TOPS/mm$^2$")):
            for (m, src), g in sub.groupby(["metric", "source"]):
                err = g["accuracy_std"] * 100 if "accuracy_std" in g else None
                ax.errorbar(g[col], g["accuracy"] * 100, yerr=err, fmt=SOURCE_MARKERS.get(src, "D"), ms=5,
                            color=PALETTE.get(m, "k"), capsize=2, lw=1, ls="none", alpha=0.85)
            # L1 and Chebyshev (and the conversion modes) can share a point: one label per (v, c) on the front
            front = sub[pareto_mask(sub, (col, "accuracy"))].sort_values([col, "accuracy"])
            ax.step(front[col], front["accuracy"] * 100, where="post", color="0.35", lw=1.2, ls="--", zorder=1)
            for i, r in enumerate(front.drop_duplicates(["v", "c"], keep="last").itertuples()):
                dy = 8 if i % 2 == 0 else -13
                ax.annotate(f"v{r.v},c{r.c}", (getattr(r, col), r.accuracy * 100), fontsize=7, xytext=(4, dy),
                            textcoords="offset points", ha="left", color="0.2")
            x = sub[col].to_numpy(dtype=float)
            _dense_log_ticks(ax, "x", x.min() / 1.15, x.max() * 1.25)
            ax.set_xlim(x.min() / 1.15, x.max() * 1.25)
            ax.set(xlabel=xl, ylabel="test accuracy (%)")
            ax.set_title(f"{model}: accuracy against {name}", fontsize=10, loc="left")
    metrics = sorted(set(points["metric"]))
    sources = sorted(set(points["source"]))
    handles = [Line2D([], [], color=PALETTE.get(m, "k"), marker="o", ls="none") for m in metrics]
    handles += [Line2D([], [], color="0.3", marker=SOURCE_MARKERS.get(s, "D"), ls="none") for s in sources]
    handles.append(Line2D([], [], color="0.35", ls="--"))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    legend_below(fig, handles, [f"metric: {m}" for m in metrics] + [f"conversion: {s}" for s in sources]
                 + ["Pareto front (labelled v, c)"], ncol=min(len(handles), 4))
    return fig


def plot_no_records(message: str):
    """A figure that says why it is empty (no stored records), instead of plotting a proxy as if measured."""
    set_style()
    fig, ax = plt.subplots(figsize=(8, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, wrap=True)
    return fig


def plot_baseline_ratios(cmp, paper_power, paper_area,
                         title: str = "Fig. 13: LUT-DLA / dense baseline efficiency, balanced design only "
                                      "(v=4, c=16, L1, INT8 tables; our cost model)"):
    """Figure 13: LUT-DLA / baseline ratios as dots on a log axis (no truncated bars): core power efficiency,
    system power efficiency and area efficiency. Rows = (workload, matching); colour = baseline precision in
    every panel; the shaded band is the paper's reported range; the line at 1 is parity."""
    set_style()
    cols = (("power_eff_ratio_core", "power efficiency, core (on chip)", paper_power),
            ("power_eff_ratio_system", "power efficiency, system (+ DRAM)", paper_power),
            ("area_eff_ratio", "area efficiency (TOPS/mm$^2$)", paper_area))
    groups = list(cmp[["workload", "matched_by"]].drop_duplicates().itertuples(index=False))
    precs = list(dict.fromkeys(cmp["baseline"]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 1.2 + 0.62 * len(groups) * 1.4), sharey=True)
    y = np.arange(len(groups))[::-1].astype(float)
    offsets = {p: (i - (len(precs) - 1) / 2) * 0.22 for i, p in enumerate(precs)}
    for ax, (col, label, (lo, hi)) in zip(axes, cols):
        vals_all = cmp[col].to_numpy(dtype=float)
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        ax.axvline(1.0, color="k", lw=0.9, zorder=1)
        for prec in precs:
            for yi, (w, mb) in zip(y, groups):
                v = cmp[(cmp.workload == w) & (cmp.matched_by == mb) & (cmp.baseline == prec)][col]
                for val in v:
                    ax.plot([1.0, val], [yi + offsets[prec]] * 2, color=BASELINE_COLORS.get(prec, "0.4"), lw=1,
                            zorder=2)
                    ax.plot(val, yi + offsets[prec], "o", ms=7, color=BASELINE_COLORS.get(prec, "0.4"), zorder=3)
        span = np.concatenate([vals_all, [lo, hi, 1.0]])
        ax.set_xlim(span.min() / 1.5, span.max() * 1.5)
        set_log_ticks(ax, "x")
        ax.set_xlabel("LUT-DLA / baseline (log); > 1: LUT-DLA better")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, [f"{w}\nequal {mb}" for w, mb in groups])
    axes[0].set_ylim(y.min() - 0.6, y.max() + 0.6)
    handles = [Line2D([], [], color=BASELINE_COLORS.get(p, "0.4"), marker="o", ls="none") for p in precs]
    handles.append(Patch(color="0.9"))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    legend_below(fig, handles, [f"vs {p.upper()} array" for p in precs]
                 + ["paper's reported range (different baselines, node and accounting)"])
    return fig


def plot_distance_pe_cost(pe, bits: int = 8, v_for_bits: int = 4,
                          title: str = "Fig. 5: distance PE cost per metric at 45 nm (our component model)"):
    """Figure 5: area and energy of one distance PE against v (at `bits`), and area against activation bits
    (at v=`v_for_bits`); one colour and marker per metric in every panel, v and bits on log2 axes with
    integer ticks."""
    set_style()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    metrics = list(dict.fromkeys(pe["metric"]))
    handles = []
    for m in metrics:
        marker, ls = METRIC_STYLES.get(m, ("o", "-"))
        style = {"color": PALETTE.get(m, "k"), "marker": marker, "ls": ls, "ms": 5}
        sb = pe[(pe.metric == m) & (pe.bits == bits)].sort_values("v")
        (h,) = axes[0].plot(sb.v, sb.area_um2, **style)
        handles.append(h)
        axes[1].plot(sb.v, sb.energy_pj, **style)
        sv = pe[(pe.metric == m) & (pe.v == v_for_bits)].sort_values("bits")
        axes[2].plot(sv.bits, sv.area_um2, **style)
    panels = ((axes[0], "v", f"v (sub-vector length, {bits}-bit activations)", "area per PE (µm$^2$, log)"),
              (axes[1], "v", f"v (sub-vector length, {bits}-bit activations)", "energy per evaluation (pJ, log)"),
              (axes[2], "bits", f"activation bits (v = {v_for_bits})", "area per PE (µm$^2$, log)"))
    for ax, xcol, xl, yl in panels:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(pe[xcol]))))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:.0f}"))
        ax.xaxis.set_minor_locator(NullLocator())
        set_log_ticks(ax, "y")
        ax.set(xlabel=xl, ylabel=yl)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    legend_below(fig, handles, metrics)
    return fig


def plot_area_power_breakdown(bars: dict, title: str = "Fig. 14 (cost half): where area and power go, ResNet-18 "
                                                        "(our 45 nm cost model)", offchip: str = "dram"):
    """Figure 14, cost half: horizontal stacked bars from 0, one bar per design (`bars[label]` = a frame indexed
    by component group with area_mm2 and power_w), one colour per component group in every panel. Panels: area;
    system power (on-chip parts + the `offchip` group); core power (on-chip parts only, its own scale, so the
    parts the core accounting counts stay visible when DRAM dominates the system bar)."""
    set_style()
    labels = list(bars)
    groups = sorted(set().union(*(b.index for b in bars.values())))
    colors = {g: COMPONENT_COLORS[i % len(COMPONENT_COLORS)] for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.9 + 0.45 * len(labels)), sharey=True)
    y = np.arange(len(labels))[::-1]
    panels = ((axes[0], "area_mm2", "area (mm$^2$)", groups),
              (axes[1], "power_w", "system power (W): on chip + DRAM", groups),
              (axes[2], "power_w", "core power (W): on chip only", [g for g in groups if g != offchip]))
    for ax, col, xl, gs in panels:
        left = np.zeros(len(labels))
        for g in gs:
            vals = np.array([float(b[col].get(g, 0.0)) for b in bars.values()])
            ax.barh(y, vals, left=left, color=colors[g], height=0.7)
            left += vals
        ax.set_xlim(0, left.max() * 1.05 if left.max() > 0 else 1)
        ax.set_xlabel(xl)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, [lbl.replace("\n", " ") for lbl in labels], fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    legend_below(fig, [Patch(color=colors[g]) for g in groups], [COMPONENT_LABELS.get(g, g) for g in groups],
                 ncol=min(len(groups), 6))
    return fig
