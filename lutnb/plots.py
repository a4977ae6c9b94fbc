"""Plot functions shared by the notebooks (algorithm side). Each returns a matplotlib Figure."""
from __future__ import annotations

import numpy as np
import torch

from .distances import encode
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
