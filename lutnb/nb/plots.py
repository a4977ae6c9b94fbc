"""Plots of the accuracy side (vector quantization, LUTBoost, transformers) that are more than a call and a
line of styling. The hardware side (framework, block diagram, simulator, co-design) is `lutnb.nb.plots_hw`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..vq.distances import encode
from .figures import METRIC_ORDER, PALETTE, plt, set_style

METHOD_DASHES = {"lutboost": "", "single_stage": (5, 2)}  # seaborn dash specs: LUTBoost solid, baseline dashed
METHOD_LABELS = {"lutboost": "LUTBoost", "single_stage": "single stage (same epochs)"}
BANDS = {"sd": "± 1 sd over seeds", "ci": "95 % CI of the mean over seeds (bootstrap)"}
V_MARKERS = {1: "P", 2: "o", 4: "s", 8: "^", 16: "v"}


def _require(df, columns, what: str) -> None:
    """Raise a clear error when the DataFrame / records for `what` lack `columns`."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{what}: no rows to plot")


def _seaborn_errorbar(band: str):
    if band not in BANDS:
        raise ValueError(f"band={band!r}: use one of {sorted(BANDS)}")
    return "sd" if band == "sd" else ("ci", 95)


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
                    alpha=0.85)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.text(1.0, ax.get_ylim()[1] * 0.98, " 1 bit", va="top", color="grey")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda b, _: f"{b:g}"))
    ax.set_xlabel("bits per activation element (VQ: log2(c)/v)")
    ax.set_ylabel("relative output error ||ΔY|| / ||Y||")
    ax.set_title(title or "Scalar vs vector quantization of a layer's activations")
    handles = [Line2D([], [], color="k", marker="s", label="scalar INT-b (MSE-optimal clip)")]
    handles += [Line2D([], [], color=PALETTE[m], ls=":", lw=2, label=f"VQ, {m}") for m in dict.fromkeys(vq.metric)]
    handles += [Line2D([], [], color="grey", marker=markers.get(v, "o"), ls="", label=f"VQ, v = {v}")
                for v in sorted(set(vq.v))]
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.text(0.01, -0.02, "VQ codebooks fitted on one half of the layer's input rows; both methods' errors measured on "
             "the other half.\nVQ at v = 1 is non-uniform (k-means) scalar quantization; uniform INT-b is the black "
             "line. Metrics whose points coincide hide each other.", fontsize=8, va="top", color="0.3")
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


def plot_voronoi_panels(points: np.ndarray, codebooks: dict):
    """One `plot_voronoi` panel per metric: codebooks = {metric: (c, 2) centroids of the same 2-D points}."""
    if not codebooks:
        raise ValueError("codebooks: give {metric: (c, 2) array} for at least one metric")
    set_style()
    fig, axes = plt.subplots(1, len(codebooks), figsize=(4 * len(codebooks), 3.6), squeeze=False)
    for ax, (metric, cb) in zip(axes[0], codebooks.items()):
        plot_voronoi(ax, points, cb, metric)
    fig.tight_layout()
    return fig


def _int_ticks(ax, n_rows: int, n_cols: int) -> None:
    """Integer ticks on both axes of an `imshow` panel (cell centres)."""
    ax.set_xticks(range(n_cols))
    ax.set_yticks(range(n_rows))
    ax.grid(False)


def plot_lut_gemm(ex, points2d: np.ndarray | None = None, codebooks2d: dict | None = None):
    """Figure 2: a LUT GEMM from a real small example, in reading order: (a) nearest-centroid regions of one
    2-D sub-space (if ``points2d``), (b) the activations X split into sub-vectors, (c) their indices, (d) one
    table, (e) row 0 worked out as a sum of look-ups, (f) look-up sums against the exact X W^T."""
    set_style()
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 8.2), layout="constrained")
    (pa, pb, pc), (pd_, pe, pf) = axes
    if points2d is not None and ex.v == 2:
        # the example's own codebook of sub-space 0 (its first v = 2 inputs), the one the tables in (d) use;
        # `codebooks2d` is accepted for compatibility and not drawn
        metric = ex.metric
        c0 = ex.codebooks[0].numpy()
        plot_voronoi(pa, points2d, c0, metric)
        x0 = ex.x[:, :2].numpy()
        pa.scatter(x0[:, 0], x0[:, 1], marker="o", s=36, color="w", edgecolor="k", lw=0.8, zorder=5,
                   label="rows of X in (b)")
        pa.legend(loc="upper right", fontsize=7.5)
        pa.set_title(f"(a) sub-space 0 of the example, its c = {len(c0)} centroids C_0:\n"
                     f"nearest centroid ({metric})")
        pa.set_xlabel("activation x[0]")
        pa.set_ylabel("activation x[1]")
    else:
        pa.set_visible(False)
    x = ex.x.numpy()
    S = ex.codebooks.shape[0]
    im = pb.imshow(x, cmap="viridis", aspect="auto")
    _int_ticks(pb, *x.shape)
    for s in range(1, S):
        pb.axvline(s * ex.v - 0.5, color="w", lw=2.5)
    pb.set_title(f"(b) activations X ({x.shape[0]} rows, K = {x.shape[1]}),\n"
                 f"split into S = {S} sub-vectors of v = {ex.v}")
    pb.set_xlabel("input k")
    pb.set_ylabel("row m")
    fig.colorbar(im, ax=pb, shrink=0.85, label="activation")
    idx = ex.idx.numpy()
    pc.imshow(idx, cmap="Pastel1", aspect="auto", vmin=0, vmax=8)
    _int_ticks(pc, *idx.shape)
    for (i, j), val in np.ndenumerate(idx):
        pc.text(j, i, str(val), ha="center", va="center", fontsize=10)
    pc.set_title(f"(c) indices idx[m, s]: nearest of c = {ex.c}\ncentroids, {np.log2(ex.c):g} bits per sub-vector")
    pc.set_xlabel("sub-space s")
    pc.set_ylabel("row m")
    t0 = ex.tables[0].numpy()
    lim = float(np.abs(t0).max()) or 1.0
    im = pd_.imshow(t0, cmap="coolwarm", aspect="auto", vmin=-lim, vmax=lim)
    _int_ticks(pd_, *t0.shape)
    pd_.set_title("(d) table of sub-space 0, built offline:\nT_0[j, n] = C_0[j] · W[n, sub-vector 0]")
    pd_.set_xlabel("output n")
    pd_.set_ylabel("centroid j")
    fig.colorbar(im, ax=pd_, shrink=0.85, label="table entry")
    parts = np.stack([ex.tables[s, int(ex.idx[0, s])].numpy() for s in range(S)])  # (S, N)
    n_out = parts.shape[1]
    bottom_pos, bottom_neg = np.zeros(n_out), np.zeros(n_out)
    colors = plt.get_cmap("Set2")  # no red: the exact values are red crosses
    for s in range(S):
        part = parts[s]
        base = np.where(part >= 0, bottom_pos, bottom_neg)
        pe.bar(range(n_out), part, bottom=base, color=colors(s % 8), edgecolor="k", lw=0.6,
               label=f"s = {s}: T_{s}[{int(ex.idx[0, s])}]")
        bottom_pos += np.clip(part, 0, None)
        bottom_neg += np.clip(part, None, 0)
    pe.scatter(range(n_out), parts.sum(0), marker="_", s=300, color="k", zorder=3, label="sum (look-up)")
    pe.scatter(range(n_out), ex.y_exact[0].numpy(), marker="x", s=50, color=PALETTE["task"], zorder=4,
               label="exact X W^T")
    pe.axhline(0, color="k", lw=0.8)
    pe.set_xticks(range(n_out))
    pe.set_xlabel("output n")
    pe.set_ylabel("value")
    pe.set_title(f"(e) row m = 0: Y[0, n] = Σ_s T_s[idx[0, s], n],\n{S} look-ups and adds per output "
                 f"(colour = sub-space s)")
    pe.legend(fontsize=7, loc="best", framealpha=0.85)
    ye, yl = ex.y_exact.numpy().ravel(), ex.y_lut.numpy().ravel()
    pf.scatter(ye, yl, s=16, c=PALETTE.get(ex.metric, "C0"))
    lo, hi = min(ye.min(), yl.min()), max(ye.max(), yl.max())
    pf.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    pf.set_aspect("equal", adjustable="datalim")
    pf.set_title(f"(f) all {ye.size} outputs: look-up sum vs exact;\nthe gap is the quantization of X")
    pf.set_xlabel("exact X W^T")
    pf.set_ylabel("look-up sum")
    pf.legend(loc="upper left", fontsize=8)
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


# ---- notebook 02: LUTBoost ------------------------------------------------------------------------------------

def stage_history(report) -> pd.DataFrame:
    """Per-epoch loss terms of a LUTBoost report, one row per epoch over all stages: stage, epoch (cumulative,
    from 1), task, recon, distill (what `plot_lutboost_stages` draws)."""
    rows = [{"stage": s.stage, **h} for s in report.stages for h in s.history]
    out = pd.DataFrame(rows)
    if len(out):
        out["epoch"] = np.arange(1, len(out) + 1)
    return out


def plot_lutboost_stages(stages: pd.DataFrame, history: pd.DataFrame, fp32_acc: float, c: int, title: str = "",
                         n_test: int | None = None):
    """Figure 8, one LUTBoost run: (a) test accuracy after each stage (float and INT8 tables, dot plot; rolled-back
    stages hollow), (b) loss terms per epoch with the stage boundaries, (c) relative reconstruction error and
    (d) codebook entropy after each stage. stages: `report.to_frame()`; history: `stage_history(report)`.
    A stage starts from the state the guard kept, so (a) draws each point's line from the last stage that was not
    rolled back. `n_test`: test images, to mark what one image is worth in points."""
    _require(stages, ["test_acc_lut", "test_acc_int8", "recon_rel", "entropy_bits"], "stages (report.to_frame())")
    set_style()
    done = stages[~stages["skipped"]] if "skipped" in stages else stages
    rolled = done["rolled_back"].astype(bool).to_numpy() if "rolled_back" in done else np.zeros(len(done), bool)
    x = np.arange(len(done))
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.2), gridspec_kw={"hspace": 0.55, "wspace": 0.3})
    (a, b), (cax, d) = axes
    for col, key, dx, marker in (("test_acc_lut", "float_tables", -0.08, "o"),
                                 ("test_acc_int8", "int8_tables", 0.08, "s")):
        vals = done[col].to_numpy(dtype=float)
        kept = 0  # the state the next stage starts from (runner: a rolled-back stage reloads the best state)
        for i in range(1, len(vals)):
            a.plot([kept + dx, i + dx], [vals[kept], vals[i]], color=PALETTE[key], lw=1, alpha=0.5,
                   ls=":" if rolled[i] else "-")
            if not rolled[i]:
                kept = i
        a.scatter(x[~rolled] + dx, vals[~rolled], marker=marker, s=45, color=PALETTE[key], zorder=3)
        a.scatter(x[rolled] + dx, vals[rolled], marker=marker, s=45, facecolors="white", edgecolors=PALETTE[key],
                  zorder=3)
    a.axhline(fp32_acc, color=PALETTE["fp32"], ls=":", lw=1.2)
    a.set_xticks(x, done.index)
    a.set_xlim(-0.5, len(done) - 0.5)
    a.set_ylabel("test accuracy (%)" + (f"\n1 test image = {100.0 / n_test:.2f} pt" if n_test else ""))
    a.set_xlabel("after stage")
    a.set_title("(a) accuracy after each stage", pad=16)
    handles = [Line2D([], [], color=PALETTE["float_tables"], marker="o", label="float tables"),
               Line2D([], [], color=PALETTE["int8_tables"], marker="s", label="INT8 tables"),
               Line2D([], [], color=PALETTE["fp32"], ls=":", label=f"fp32 ({fp32_acc:.2f} %)")]
    if rolled.any():
        handles.append(Line2D([], [], color="grey", marker="o", mfc="white", ls="", label="rolled back (val. drop)"))
    a.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, fontsize=8)

    if len(history):
        _require(history, ["stage", "epoch"], "history (stage_history(report))")
        for col, ls in (("task", "-"), ("recon", "--"), ("distill", "-.")):
            if col in history and (history[col] > 0).any():  # a term a stage does not use (0) is not drawn
                b.plot(history["epoch"], history[col].where(history[col] > 0), ls, marker="o", ms=3,
                       color=PALETTE[col], label=col)
        bounds = history.groupby("stage", sort=False)["epoch"].agg(["min", "max"])
        last = len(bounds) - 1
        for i, (name, (lo, hi)) in enumerate(bounds.iterrows()):
            if i:
                b.axvline(lo - 0.5, color="grey", lw=0.8)
            # inside the frame, in headroom above the data: the first label starts at the left edge, the last
            # ends at the right edge (a one-epoch stage is narrower than its name)
            if last and i in (0, last):  # axes coordinates: 1 % in from the left / right edge
                b.text(0.01 if i == 0 else 0.99, 0.97, name, transform=b.transAxes, ha="left" if i == 0 else "right",
                       va="top", fontsize=7.5, color="grey")
            else:
                b.text((lo + hi) / 2, 0.97, name, transform=b.get_xaxis_transform(), ha="center", va="top",
                       fontsize=7.5, color="grey")
        b.set_yscale("log")
        ylo, yhi = b.get_ylim()
        b.set_ylim(ylo, yhi * 2.2)  # headroom for the stage labels
        plain = FuncFormatter(lambda y, _: f"{y:g}")  # 0.02, not 2x10^-2
        b.yaxis.set_major_formatter(plain)
        b.yaxis.set_minor_formatter(FuncFormatter(  # label 2, 3 and 5 x 10^k only: no crowding
            lambda y, _: f"{y:g}" if y > 0 and round(y / 10 ** np.floor(np.log10(y))) in (2, 3, 5) else ""))
        b.tick_params(axis="y", which="minor", labelsize=7)
        b.xaxis.set_major_locator(MaxNLocator(integer=True))
        b.set_xlabel("epoch (all training stages)")
        b.set_ylabel("mean loss per sample (log)")
        b.legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=3, fontsize=8)
    else:
        b.text(0.5, 0.5, "no training epochs", transform=b.transAxes, ha="center")
    b.set_title("(b) loss terms per epoch", pad=16)

    cax.plot(x, done["recon_rel"], marker="o", color=PALETTE["recon"])
    cax.set_ylim(0, max(1e-9, float(done["recon_rel"].max())) * 1.15)
    cax.set_xticks(x, done.index)
    cax.set_xlim(-0.5, len(done) - 0.5)
    cax.set_xlabel("after stage")
    cax.set_ylabel("||Y_lut - Y||² / ||Y||² (mean of layers)")
    cax.set_title("(c) reconstruction error")
    d.plot(x, done["entropy_bits"], marker="o", color=PALETTE["entropy"])
    d.axhline(np.log2(c), color="grey", ls="--", lw=1)
    d.text(len(done) - 0.5, np.log2(c), f"log2(c) = {np.log2(c):g} bits (all {c} centroids equally used)",
           ha="right", va="bottom", fontsize=8, color="grey")
    d.set_ylim(0, np.log2(c) * 1.12)
    d.set_xticks(x, done.index)
    d.set_xlim(-0.5, len(done) - 0.5)
    d.set_xlabel("after stage")
    d.set_ylabel("codebook-use entropy (bits)")
    d.set_title("(d) codebook use (mean of layers)")
    fig.suptitle(title or "LUTBoost, one run (a single seed: no spread shown)")
    return fig


def epoch_curves(records: list[dict]) -> pd.DataFrame:
    """Long table of the per-epoch test accuracy in `compare` records: model, method, metric, seed, epoch,
    test_acc, fp32_acc (epochs without a test measurement are dropped)."""
    rows = []
    for r in records:
        for e in r.get("epoch_curve") or []:
            if e.get("test_acc") is not None:
                rows.append({"model": r["model"], "method": r["method"], "metric": r["metric"], "seed": r["seed"],
                             "epoch": e["epoch"], "test_acc": e["test_acc"], "fp32_acc": r["fp32_acc"]})
    return pd.DataFrame(rows, columns=["model", "method", "metric", "seed", "epoch", "test_acc", "fp32_acc"])


def plot_lutboost_vs_single_stage(records: list[dict], band: str = "sd", title: str = ""):
    """Figure 9: test accuracy per epoch, LUTBoost (solid) against the single-stage baseline (dashed), mean over
    seeds with a band (``band``: "sd" or "ci"); one row per model, one column per metric (colour = metric)."""
    import seaborn as sns

    err = _seaborn_errorbar(band)
    df = epoch_curves(records)
    if not len(df):
        raise ValueError("records hold no per-epoch test accuracy: run compare(..., track_test=True)")
    set_style()
    models = list(dict.fromkeys(df.model))
    metrics = [m for m in METRIC_ORDER if m in set(df.metric)] + sorted(set(df.metric) - set(METRIC_ORDER))
    methods = [m for m in METHOD_DASHES if m in set(df.method)]
    fig, axes = plt.subplots(len(models), len(metrics), figsize=(3.6 * len(metrics) + 0.6, 3.0 * len(models) + 0.4),
                             squeeze=False, sharex=True, sharey="row", layout="constrained")
    for i, model in enumerate(models):
        for j, metric in enumerate(metrics):
            ax = axes[i][j]
            sub = df[(df.model == model) & (df.metric == metric)]
            if not len(sub):
                ax.set_visible(False)
                continue
            colour = PALETTE.get(metric, "k")
            for meth in methods:  # LUTBoost: filled band; baseline: hatched, unfilled band (they overlap)
                band_kws = ({"alpha": 0.22, "lw": 0} if meth == "lutboost" else
                            {"facecolor": "none", "edgecolor": colour, "hatch": "////", "alpha": 0.45, "lw": 0})
                sns.lineplot(data=sub[sub.method == meth], x="epoch", y="test_acc", color=colour,
                             dashes=False, ls="-" if meth == "lutboost" else "--",
                             errorbar=err if sub.seed.nunique() > 1 else None, err_kws=band_kws,
                             marker="o", markersize=3.5, markeredgewidth=0, legend=False, ax=ax)
            fp = sub.groupby("seed").fp32_acc.first()
            ax.axhline(fp.mean(), color=PALETTE["fp32"], ls=":", lw=1.2)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            n = sub.seed.nunique()
            ax.set_title(f"{model}, {metric} ({n} seed{'s' if n > 1 else ''})", color=PALETTE.get(metric, "k"))
            ax.set_xlabel("epoch (0 = after k-means)" if i == len(models) - 1 else "")
            ax.set_ylabel("test accuracy (%), float tables" if j == 0 else "")
    handles = [Line2D([], [], color="k", ls="-", label=METHOD_LABELS["lutboost"]),
               Line2D([], [], color="k", ls="--", label=METHOD_LABELS["single_stage"]),
               Line2D([], [], color=PALETTE["fp32"], ls=":", label="fp32 (mean over seeds)"),
               plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.25,
                             label=f"LUTBoost band: {BANDS[band]}" if df.seed.nunique() > 1 else "one seed: no band")]
    if df.seed.nunique() > 1 and "single_stage" in methods:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="none", edgecolor="grey", hatch="////",
                                     label=f"single-stage band: {BANDS[band]}"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8.5)
    fig.suptitle(title or "LUTBoost vs single-stage conversion at equal epochs (line: mean over seeds)\n"
                 "test accuracy with float tables during training; the accuracy table reports the kept state "
                 "with INT8 tables", fontsize=10.5)
    return fig


# ---- notebook 03: accuracy vs bits ----------------------------------------------------------------------------

def plot_accuracy_vs_bits(df: pd.DataFrame, title: str = ""):
    """Figure 10: test accuracy (INT8 tables) against bits per activation, mean ± 1 sd over seeds per (metric, v, c);
    one panel per model, colour = metric, marker = v; x ticks at the swept bits, labelled with their (v, c).
    df: one row per run with model, metric, v, c, bits, seed, fp32_acc, lut_acc."""
    _require(df, ["model", "metric", "v", "c", "bits", "seed", "fp32_acc", "lut_acc"], "accuracy-vs-bits records")
    set_style()
    models = list(dict.fromkeys(df.model))
    metrics = [m for m in METRIC_ORDER if m in set(df.metric)] + sorted(set(df.metric) - set(METRIC_ORDER))
    g = (df.groupby(["model", "metric", "v", "c", "bits"], sort=False)
         .agg(mean=("lut_acc", "mean"), sd=("lut_acc", "std"), seeds=("seed", "nunique")).reset_index())
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models) + 1.8, 4.4), squeeze=False,
                             layout="constrained")
    offsets = {m: 2 ** (0.035 * (k - (len(metrics) - 1) / 2)) for k, m in enumerate(metrics)}  # dodge on log2 x
    for ax, model in zip(axes[0], models):
        s = g[g.model == model]
        for metric in metrics:
            m = s[s.metric == metric].sort_values(["bits", "v"])
            xs = m.bits * offsets[metric]
            ax.plot(xs, m["mean"], color=PALETTE.get(metric, "k"), lw=1.2, alpha=0.8)
            for x, row in zip(xs, m.itertuples()):
                ax.errorbar(x, row.mean, yerr=0.0 if np.isnan(row.sd) else row.sd, color=PALETTE.get(metric, "k"),
                            marker=V_MARKERS.get(row.v, "D"), ms=5.5, capsize=2.5, lw=1.2)
        fp = df[df.model == model].groupby("seed").fp32_acc.first()
        ax.axhline(fp.mean(), color=PALETTE["fp32"], ls=":", lw=1.2)
        if len(fp) > 1:
            ax.axhspan(fp.mean() - fp.std(), fp.mean() + fp.std(), color=PALETTE["fp32"], alpha=0.08, lw=0)
        ax.set_xscale("log", base=2)
        ticks = s.groupby("bits").apply(lambda t: ", ".join(f"({v},{c})" for v, c in
                                                            sorted(set(zip(t.v, t.c)))), include_groups=False)
        ax.set_xticks(list(ticks.index), [f"{b:g}\n{lab}" for b, lab in ticks.items()], fontsize=8)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel("bits per activation, log2(c)/v (log scale)  [(v, c) below]")
        ax.set_ylabel("test accuracy (%), INT8 tables")
        n = int(df[df.model == model].seed.nunique())
        ax.set_title(f"{model} ({n} seeds: mean ± 1 sd)" if n > 1 else f"{model} (1 seed: no error bar)")
    handles = [Line2D([], [], color=PALETTE.get(m, "k"), lw=1.5, label=m) for m in metrics]
    handles += [Line2D([], [], color="grey", marker=V_MARKERS.get(v, "D"), ls="", label=f"v = {v}")
                for v in sorted(set(df.v))]
    handles.append(Line2D([], [], color=PALETTE["fp32"], ls=":", label="fp32 (mean; shade ± 1 sd)"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8.5)
    fig.suptitle(title or "Accuracy against bits per activation (LUTBoost, INT8 tables)")
    return fig


# ---- notebook 06: transformers --------------------------------------------------------------------------------

def plot_transformer_fidelity(minilm_rows: list[dict], vit_rows: list[dict],
                              heldout_source: pd.DataFrame | None = None):
    """Figure 6b. (a) MiniLM: cosine of LUT to fp32 sentence embeddings per metric and v (dot: mean; bar from the
    5th percentile; x: minimum), on the project's templated held-out sentences, with (hollow diamonds) the mean
    on held-out *sources* where ``heldout_source`` gives them (columns metric, v, source, mean_cos).
    (b) tiny ViT on digits: accuracy drop (fp32 - LUT, points), every seed a dot, mean ± 1 sd."""
    mini = pd.DataFrame(minilm_rows)
    vit = pd.DataFrame(vit_rows)
    _require(mini, ["metric", "v", "quant_mean_cos", "quant_min_cos", "quant_p05_cos"], "minilm_rows")
    _require(vit, ["metric", "v", "seed", "drop_pt"], "vit_rows")
    set_style()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    for ax, df in ((a, mini), (b, vit)):
        vs = sorted(set(df.v))
        metrics = [m for m in METRIC_ORDER if m in set(df.metric)]
        for k, v in enumerate(vs):
            for j, metric in enumerate(metrics):
                x = k + (j - (len(metrics) - 1) / 2) * 0.22
                sel = df[(df.metric == metric) & (df.v == v)]
                if not len(sel):
                    continue
                col = PALETTE.get(metric, "k")
                if ax is a:
                    r = sel.iloc[0]
                    ax.vlines(x, r.quant_p05_cos, r.quant_mean_cos, color=col, lw=2)
                    ax.plot(x, r.quant_mean_cos, "o", color=col, ms=7)
                    ax.plot(x, r.quant_min_cos, "x", color=col, ms=6)
                    if heldout_source is not None:
                        h = heldout_source[(heldout_source.metric == metric) & (heldout_source.v == v)]
                        ax.plot([x + 0.07] * len(h), h.mean_cos, "D", mfc="white", mec=col, ms=6, ls="")
                else:
                    d = sel.drop_pt.to_numpy(dtype=float)
                    jitter = np.linspace(-0.05, 0.05, len(d)) if len(d) > 1 else np.zeros(1)
                    ax.scatter(x + jitter, d, s=12, color=col, alpha=0.5, lw=0)
                    ax.errorbar(x, d.mean(), yerr=d.std(ddof=1) if len(d) > 1 else 0.0, fmt="o", color=col, ms=7,
                                capsize=3)
        cs = {v: sorted(set(df[df.v == v].c)) if "c" in df else [] for v in vs}
        ax.set_xticks(range(len(vs)), [f"v = {v}\n" + ", ".join(f"({np.log2(c) / v:g} bit/act, c = {c})" for c in cs[v])
                                       if cs[v] else f"v = {v}" for v in vs])
        ax.set_xlim(-0.6, len(vs) - 0.4)
        ax.grid(axis="x", visible=False)
    a.axhline(0.98, color="grey", ls="--", lw=1)
    a.text(a.get_xlim()[1], 0.98, "our target, 0.98 (README, known gaps) ", ha="right", va="bottom", fontsize=8,
           color="grey")
    a.set_ylabel("cosine to the fp32 embedding")
    a.set_title("(a) all-MiniLM-L6-v2: 36 LUT Linears, INT8 tables\nembedding fidelity (no labels: not accuracy)")
    a.set_ylim(top=1.0)
    b.axhline(0.0, color=PALETTE["fp32"], lw=0.8)
    b.set_ylabel("accuracy drop vs fp32 (points)")
    n_seeds = int(vit.seed.nunique())
    b.set_title("(b) toy ViT on 8x8 digits, INT8 tables\n"
                + (f"{n_seeds} seeds: dots, mean ± 1 sd" if n_seeds > 1 else "1 seed: no spread"))
    metrics = [m for m in METRIC_ORDER if m in set(mini.metric) | set(vit.metric)]
    handles = [Line2D([], [], color=PALETTE[m], marker="o", ls="", label=m) for m in metrics]
    handles += [Line2D([], [], color="grey", marker="o", ls="", label="(a) mean, templated held-out sentences"),
                Line2D([], [], color="grey", lw=2, label="(a) from 5th percentile to mean"),
                Line2D([], [], color="grey", marker="x", ls="", label="(a) minimum")]
    if heldout_source is not None and len(heldout_source):
        sources = ", ".join(dict.fromkeys(heldout_source.source))
        handles.append(Line2D([], [], color="grey", marker="D", mfc="white", ls="",
                              label=f"(a) mean, held-out source ({sources})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    return fig
