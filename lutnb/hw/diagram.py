"""Figures for notebook 04: the block diagram drawn from a config, loop orders, swap timeline, breakdowns."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from .config import LUTDLAConfig

STALL_COLORS = {"imm_cycles": "#4c72b0", "stall_bank_conflict": "#c44e52", "table_load_cycles": "#8172b2",
                "stall_offchip_bw": "#dd8452", "fill_cycles": "#937860", "stall_fifo_empty": "#55a868"}


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
        ax.bar(x, vals, bottom=bottom, color=color, label=col.replace("_cycles", "").replace("stall_", ""))
        bottom = vals if bottom is None else bottom + vals
    ax.set_xticks(list(x), [str(n) for n in df["layer"]], rotation=90, fontsize=6)
    ax.set_ylabel("cycles")
    ax.set_title(title, fontsize=9)
