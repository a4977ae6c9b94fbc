"""Plots of the accuracy side (vector quantization, LUTBoost, transformers) that are more than a call and a
line of styling. The hardware side (framework, block diagram, simulator, co-design) is `lutnb.nb.plots_hw`."""
from __future__ import annotations

import numpy as np
import torch

from ..vq.distances import encode
from .figures import PALETTE, plt, set_style


def plot_scalar_vs_vq(df, title: str = ""):
    """Figure 1: relative output error vs bits per activation, scalar INT-b against VQ (v, c) per metric."""
    set_style()
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    sc = df[df.method != "VQ"].sort_values("bits_per_activation")
    ax.plot(sc.bits_per_activation, sc.rel_error, "k-s", label="scalar INT-b (MSE-optimal clip)")
    markers = {1: "o", 2: "^", 4: "D", 8: "v", 9: "P"}
    vq = df[df.method == "VQ"]
    for metric, sub in vq.groupby("metric", sort=False):
        for v, s2 in sub.groupby("v"):
            s2 = s2.sort_values("bits_per_activation")
            ax.plot(s2.bits_per_activation, s2.rel_error, marker=markers.get(v, "o"), ls=":", color=PALETTE[metric],
                    alpha=0.85, label=f"VQ {metric}, v={v}")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.text(1.0, ax.get_ylim()[1] * 0.98, " 1 bit", va="top", color="grey")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bits per activation element (VQ: log2(c)/v)")
    ax.set_ylabel("relative output error ||ΔY|| / ||Y||")
    ax.set_title(title or "Scalar vs vector quantization of a layer's activations")
    ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_voronoi(ax, points: np.ndarray, codebook: np.ndarray, metric: str, res: int = 300):
    """Nearest-centroid regions of a 2-D sub-space under `metric`, with the sub-vectors and centroids."""
    lo = np.minimum(points.min(0), codebook.min(0))
    hi = np.maximum(points.max(0), codebook.max(0))
    pad = 0.08 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], res),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], res))
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32).unsqueeze(1)
    lab = encode(grid, torch.tensor(codebook, dtype=torch.float32).unsqueeze(0), metric)[:, 0].numpy()
    ax.imshow(lab.reshape(res, res), origin="lower", cmap="tab20", alpha=0.35, aspect="auto",
              extent=(gx.min(), gx.max(), gy.min(), gy.max()), interpolation="nearest")
    ax.scatter(points[:, 0], points[:, 1], s=4, c="k", alpha=0.35, linewidths=0)
    ax.scatter(codebook[:, 0], codebook[:, 1], s=70, marker="*", c=PALETTE.get(metric, "r"), edgecolors="k")
    ax.set_title(f"{metric}")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")


def plot_lut_gemm(ex, points2d: np.ndarray | None = None, codebooks2d: dict | None = None):
    """Figure 2: a LUT GEMM from a real small example: sub-vectors, centroids, indices, one table, the sums."""
    set_style()
    ncols = 4 if points2d is None else 5
    fig = plt.figure(figsize=(3.2 * ncols, 3.6))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    k = 0
    if points2d is not None:
        metric = ex.metric
        plot_voronoi(axes[0], points2d, codebooks2d[metric], metric)
        axes[0].set_title(f"(a) sub-space 0: nearest centroid ({metric})")
        k = 1
    x = ex.x.numpy()
    ax = axes[k]
    im = ax.imshow(x, cmap="viridis", aspect="auto")
    for s in range(1, ex.codebooks.shape[0]):
        ax.axvline(s * ex.v - 0.5, color="w", lw=2)
    ax.set_title(f"({chr(97 + k)}) activations X: {x.shape[0]} rows,\nK={x.shape[1]} split into v={ex.v}")
    ax.set_xlabel("k")
    ax.set_ylabel("row m")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[k + 1]
    idx = ex.idx.numpy()
    ax.imshow(idx, cmap="tab10", aspect="auto", vmin=0, vmax=max(9, ex.c - 1))
    for (i, j), val in np.ndenumerate(idx):
        ax.text(j, i, str(val), ha="center", va="center", fontsize=9)
    ax.set_title(f"({chr(98 + k)}) indices idx[m, s]\n(c={ex.c} centroids per sub-space)")
    ax.set_xlabel("sub-space s")
    ax.set_ylabel("row m")
    ax = axes[k + 2]
    t0 = ex.tables[0].numpy()
    im = ax.imshow(t0, cmap="coolwarm", aspect="auto", vmin=-np.abs(t0).max(), vmax=np.abs(t0).max())
    ax.set_title("(%s) table T_0[j, n] = C_0[j]·W[n, 0]" % chr(99 + k))
    ax.set_xlabel("output n")
    ax.set_ylabel("centroid j")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[k + 3]
    ye, yl = ex.y_exact.numpy().ravel(), ex.y_lut.numpy().ravel()
    ax.scatter(ye, yl, s=14, c=PALETTE.get(ex.metric, "C0"))
    lim = [min(ye.min(), yl.min()), max(ye.max(), yl.max())]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_title("(%s) Y = Σ_s T_s[idx] vs exact X W^T" % chr(100 + k))
    ax.set_xlabel("exact")
    ax.set_ylabel("look-up sum")
    fig.tight_layout()
    return fig


def plot_error_heatmaps(df):
    """VQ relative output error per (v, c), one panel per metric."""
    set_style()
    vq = df[df.method == "VQ"]
    metrics = list(dict.fromkeys(vq.metric))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    vmax = vq.rel_error.max()
    for ax, metric in zip(axes[0], metrics):
        piv = vq[vq.metric == metric].pivot(index="v", columns="c", values="rel_error")
        im = ax.imshow(piv.values, cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(piv.columns)), piv.columns)
        ax.set_yticks(range(len(piv.index)), piv.index)
        for (i, j), val in np.ndenumerate(piv.values):
            ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if val > 0.6 * vmax else "k")
        ax.set_xlabel("c (centroids)")
        ax.set_ylabel("v (sub-vector length)")
        ax.set_title(metric)
        ax.grid(False)
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02)
    return fig


def plot_transformer_fidelity(minilm_rows: list[dict], vit_rows: list[dict]):
    """Two panels: MiniLM cosine to fp32 (mean bar, min marker) and ViT accuracy drop, per metric and v."""
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = ["l2", "l1", "chebyshev"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, rows, key in ((a, minilm_rows, "minilm"), (b, vit_rows, "vit")):
        vs = sorted({r["v"] for r in rows})
        w = 0.8 / max(1, len(vs))
        for j, v in enumerate(vs):
            xs, means, lows = [], [], []
            for i, m in enumerate(metrics):
                sel = [r for r in rows if r["metric"] == m and r["v"] == v]
                if not sel:
                    continue
                xs.append(i + (j - (len(vs) - 1) / 2) * w)
                if key == "minilm":
                    means.append(sel[0]["quant_mean_cos"])
                    lows.append(sel[0]["quant_min_cos"])
                else:
                    means.append(float(np.mean([r["drop_pt"] for r in sel])))
            ax.bar(xs, means, w * 0.9, label=f"v={v} ({4 / v:g} bit/act)")
            if key == "minilm":
                ax.plot(xs, lows, "k_", markersize=14, label="minimum" if j == 0 else None)
        ax.set_xticks(range(len(metrics)), metrics)
    a.axhline(0.98, color="grey", ls="--", lw=1)
    a.set_ylabel("cosine to fp32 embedding (held-out)")
    a.set_title("all-MiniLM-L6-v2, 36 LUT Linears, INT8 tables")
    a.set_ylim(0, 1.02)
    a.legend(fontsize=8, loc="lower right")
    b.axhline(1.4, color="grey", ls="--", lw=1)
    b.set_ylabel("accuracy drop vs fp32 (pt, mean of seeds)")
    b.set_title("tiny ViT on digits, INT8 tables")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_centroid_gradients(x: np.ndarray, codebook: np.ndarray, grads: dict, idx: dict, titles: dict | None = None):
    """One panel per backward mode: 2-D rows coloured by their centroid, centroids as stars, and the direction
    a gradient step moves each centroid (-grad; red: task loss, blue: reconstruction loss). Each loss's arrows
    are scaled on their own so the longest is a fifth of the data's span (directions, not magnitudes: print the
    norms for those). grads: {mode: {"task": (c, 2), "recon": (c, 2)}}."""
    modes = list(grads)
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.8), squeeze=False)
    span = float(np.ptp(x, axis=0).max())
    for ax, mode in zip(axes[0], modes):
        ax.scatter(x[:, 0], x[:, 1], c=idx[mode], cmap="tab10", vmin=0, vmax=9, s=10, alpha=0.5)
        ax.scatter(codebook[:, 0], codebook[:, 1], marker="*", s=220, c="black", zorder=3)
        for kind, color, lw in (("recon", "#1f77b4", 5), ("task", "#d62728", 1.8)):  # task drawn on top
            longest = float(np.linalg.norm(grads[mode][kind], axis=1).max())
            if longest == 0.0:
                ax.text(0.02, 0.02 + 0.06 * (kind == "recon"), f"no {kind}-loss gradient", transform=ax.transAxes,
                        color=color, fontsize=8)
                continue
            step = -grads[mode][kind] / longest * span / 5
            for j in range(len(codebook)):
                if np.linalg.norm(step[j]) > 1e-9:
                    ax.annotate("", xy=codebook[j] + step[j], xytext=codebook[j], zorder=4,
                                arrowprops={"arrowstyle": "->", "color": color, "lw": lw,
                                            "alpha": 0.5 if kind == "recon" else 1.0})
        ax.set_title((titles or {}).get(mode, f'backward="{mode}"'), fontsize=9)
        ax.set_xlabel("sub-vector element 0")
    axes[0][0].set_ylabel("sub-vector element 1")
    axes[0][-1].plot([], [], color="#d62728", label="-grad of the task loss")
    axes[0][-1].plot([], [], color="#1f77b4", label="-grad of the reconstruction loss")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
