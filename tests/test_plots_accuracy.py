"""The accuracy-side figures (lutnb.nb.plots) on small synthetic inputs with several seeds: what they draw."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lutnb.nb import plots  # noqa: E402
from lutnb.nb.figures import PALETTE, plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _records(seeds=(0, 1, 2), metrics=("l2", "l1"), models=("digits_cnn",), epochs=5):
    rng = np.random.default_rng(0)
    out = []
    for model in models:
        for metric in metrics:
            for seed in seeds:
                for method in ("lutboost", "single_stage"):
                    curve = [{"epoch": e, "stage": "joint", "test_acc": 80 + 3 * e + rng.normal(0, 1)}
                             for e in range(epochs + 1)]
                    out.append({"model": model, "method": method, "metric": metric, "seed": seed,
                                "fp32_acc": 98.0 + 0.1 * seed, "epoch_curve": curve})
    return out


def _stage_frames(rolled_back_last=True):
    stages = pd.DataFrame({"stage": ["calibrate", "centroids", "joint", "lut_qat"], "skipped": [False] * 4,
                           "rolled_back": [False, False, False, rolled_back_last],
                           "test_acc_lut": [92.0, 95.0, 98.0, 97.5], "test_acc_int8": [91.0, 94.5, 97.8, 97.0],
                           "recon_rel": [0.08, 0.05, 0.06, 0.06], "entropy_bits": [3.1, 3.3, 3.4, 3.4]}
                          ).set_index("stage")
    hist = pd.DataFrame([{"stage": s, "task": 0.5 / (k + 1), "recon": 0.3, "distill": 0.0 if s == "centroids" else 0.1}
                         for k, s in enumerate(["centroids"] * 2 + ["joint"] * 4 + ["lut_qat"])])
    hist["epoch"] = np.arange(1, len(hist) + 1)
    return stages, hist


def test_fig09_bands_per_method_and_metric_colours():
    fig = plots.plot_lutboost_vs_single_stage(_records())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2  # one model x two metrics
    for ax, metric in zip(axes, ("l2", "l1")):
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2  # one band per method (three seeds)
        assert sorted(bool(b.get_hatch()) for b in bands) == [False, True]  # baseline band hatched: told apart
        data_lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 6]  # epochs 0..5
        assert len(data_lines) == 2  # one mean line per method, not one per seed
        assert {matplotlib.colors.to_hex(ln.get_color()) for ln in data_lines} == {PALETTE[metric]}
        assert len({ln.get_linestyle() for ln in data_lines}) == 2  # methods told apart by line style
        assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert ax.get_title()
    assert axes[0].get_ylabel() and axes[0].get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("sd" in t for t in labels)  # the legend says what the band is
    assert "float tables" in fig._suptitle.get_text() and "INT8" in fig._suptitle.get_text()


def test_fig09_mean_line_is_the_mean_over_seeds():
    recs = _records(metrics=("l2",))
    fig = plots.plot_lutboost_vs_single_stage(recs)
    ax = fig.axes[0]
    curves = plots.epoch_curves(recs)
    want = curves[curves.method == "lutboost"].groupby("epoch").test_acc.mean().to_numpy()
    got = [ln.get_ydata() for ln in ax.lines if len(ln.get_xdata()) == 6]
    assert any(np.allclose(g, want) for g in got)


def test_fig09_one_seed_has_no_band_and_rejects_bad_input():
    fig = plots.plot_lutboost_vs_single_stage(_records(seeds=(0,), metrics=("l2",)))
    assert not [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert any("no band" in t.get_text() for t in fig.legends[0].get_texts())
    with pytest.raises(ValueError, match="band"):
        plots.plot_lutboost_vs_single_stage(_records(), band="iqr")
    no_curve = [{**r, "epoch_curve": [{"epoch": 0, "stage": "calibrate", "test_acc": None}]} for r in _records()]
    with pytest.raises(ValueError, match="track_test"):
        plots.plot_lutboost_vs_single_stage(no_curve)


def test_fig10_mean_and_sd_over_seeds():
    rows = [{"model": "digits_cnn", "metric": m, "v": v, "c": c, "bits": np.log2(c) / v, "seed": s,
             "fp32_acc": 98.0, "lut_acc": 90.0 + np.log2(c) / v + s} for m in ("l2", "chebyshev")
            for v, c in ((2, 16), (4, 16), (8, 16)) for s in range(3)]
    fig = plots.plot_accuracy_vs_bits(pd.DataFrame(rows))
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 2 * 3  # one point per (metric, v, c)
    means = sorted(float(b.lines[0].get_ydata()[0]) for b in bars)
    assert np.allclose(means, sorted([91.0 + b for b in (0.5, 1.0, 2.0)] * 2))  # mean of seeds 0, 1, 2: +1
    # the error bar spans ± 1 sd (sd of 0, 1, 2 is 1)
    seg = bars[0].lines[2][0].get_segments()[0]
    assert np.isclose(abs(seg[1][1] - seg[0][1]), 2.0)
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["0.5", "1", "2"]
    assert "(4,16)" in ax.get_xticklabels()[1].get_text()
    assert ax.get_xlabel() and ax.get_ylabel() and "sd" in ax.get_title()
    assert "log scale" in ax.get_xlabel()
    with pytest.raises(ValueError, match="lut_acc"):
        plots.plot_accuracy_vs_bits(pd.DataFrame(rows).drop(columns="lut_acc"))


def test_fig08_dot_plot_rolled_back_and_integer_epochs():
    stages, hist = _stage_frames()
    fig = plots.plot_lutboost_stages(stages, hist, fp32_acc=98.5, c=16)
    a, b, c, d = fig.axes
    assert [t.get_text() for t in a.get_xticklabels()] == list(stages.index)
    assert not a.patches  # dots, not bars (no truncated bar axis)
    hollow = [col for col in a.collections if len(col.get_offsets()) and np.allclose(col.get_facecolor()[0], 1.0)]
    assert len(hollow) == 2  # the rolled-back stage, float and INT8 tables
    # the stage after a rolled-back one starts from the kept state: no line leaves a rolled-back point
    mid = stages.assign(rolled_back=[False, False, True, False])  # the joint stage rolled back, lut_qat kept
    a_mid = plots.plot_lutboost_stages(mid, hist, fp32_acc=98.5, c=16).axes[0]
    rb = 2
    starts = [round(float(ln.get_xdata()[0])) for ln in a_mid.lines if len(ln.get_xdata()) == 2]
    ends = [round(float(ln.get_xdata()[1])) for ln in a_mid.lines if len(ln.get_xdata()) == 2]
    assert rb not in starts and ends.count(rb + 1) == 2 and starts.count(rb - 1) == 4
    fig_n = plots.plot_lutboost_stages(stages, hist, fp32_acc=98.5, c=16, n_test=450)
    assert "1 test image = 0.22 pt" in fig_n.axes[0].get_ylabel()
    # stage labels of (b) sit inside the axes (not clipped above the frame)
    assert all(t.get_position()[1] <= 1.0 for t in b.texts)
    assert isinstance(b.xaxis.get_major_locator(), MaxNLocator)
    assert b.get_yscale() == "log"
    drawn = {ln.get_label() for ln in b.lines}
    assert {"task", "recon", "distill"} <= drawn
    distill = next(ln for ln in b.lines if ln.get_label() == "distill")
    assert np.isnan(distill.get_ydata()[:2]).all()  # the centroid stage does not use it: not drawn at 0
    assert c.get_ylim()[0] == 0.0 and d.get_ylim()[0] == 0.0 and d.get_ylim()[1] >= 4.0
    assert "seed" in fig._suptitle.get_text()  # one run: the title says there is no spread
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_title()
    with pytest.raises(ValueError, match="entropy_bits"):
        plots.plot_lutboost_stages(stages.drop(columns="entropy_bits"), hist, 98.5, 16)


def test_fig06b_dots_bands_and_heldout_source():
    mini = [{"metric": m, "v": v, "quant_mean_cos": 0.95 - 0.05 * (v == 4), "quant_min_cos": 0.6,
             "quant_p05_cos": 0.9 - 0.05 * (v == 4)} for m in ("l2", "l1", "chebyshev") for v in (2, 4)]
    vit = [{"metric": m, "v": v, "seed": s, "drop_pt": 0.5 * s - 0.2} for m in ("l2", "l1", "chebyshev")
           for v in (2, 4) for s in range(3)]
    source = pd.DataFrame([{"metric": "l2", "v": 2, "source": s, "mean_cos": x} for s, x in (("a", 0.88), ("b", 0.9))])
    fig = plots.plot_transformer_fidelity(mini, vit, source)
    a, b = fig.axes[:2]
    assert not a.patches and not b.patches  # no bars on a truncated axis
    diamonds = [ln for ln in a.lines if ln.get_marker() == "D"]
    assert sum(len(ln.get_xdata()) for ln in diamonds) == 2
    bars = [c for c in b.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 6
    means = sorted(float(x.lines[0].get_ydata()[0]) for x in bars)
    assert np.allclose(means, 0.3)  # mean over seeds of 0.5 * s - 0.2
    assert "3 seeds" in b.get_title() and a.get_ylabel() and b.get_ylabel()
    assert any("held-out source" in t.get_text() for t in fig.legends[0].get_texts())
    with pytest.raises(ValueError, match="drop_pt"):
        plots.plot_transformer_fidelity(mini, [{k: v for k, v in r.items() if k != "drop_pt"} for r in vit])


def _lut_gemm_example():
    from types import SimpleNamespace

    import torch

    g = torch.Generator().manual_seed(0)
    M, K, N, v, c = 6, 8, 5, 2, 4
    S = K // v
    x = torch.relu(torch.randn(M, K, generator=g))
    W = torch.randn(N, K, generator=g)
    cb = torch.rand(S, c, v, generator=g)
    tables = torch.einsum("scv,nsv->scn", cb, W.reshape(N, S, v))
    idx = ((x.reshape(M, S, 1, v) - cb[None]) ** 2).sum(-1).argmin(-1)
    y_lut = sum(tables[s, idx[:, s]] for s in range(S))
    return SimpleNamespace(x=x, idx=idx, tables=tables, codebooks=cb, v=v, c=c, metric="l1", y_exact=x @ W.T,
                           y_lut=y_lut, weight=W)


def test_fig02_integer_ticks_and_row_zero_as_a_sum_of_lookups():
    ex = _lut_gemm_example()
    pts = np.random.default_rng(0).random((50, 2))
    fig = plots.plot_lut_gemm(ex, pts, {"l1": pts[:4]})
    pa, pb, pc, pd_, pe, pf = fig.axes[:6]
    for ax in (pb, pc, pd_):  # heatmaps of integer-indexed things: one tick per cell, no fractions
        ticks = list(ax.get_xticks()) + list(ax.get_yticks())
        assert all(float(t).is_integer() for t in ticks)
    assert list(pd_.get_yticks()) == list(range(ex.c))
    # (e): the look-up parts of row 0 add up to the look-up output of row 0
    sums = [c for c in pe.collections if len(c.get_offsets()) == ex.y_lut.shape[1]]
    assert any(np.allclose(c.get_offsets()[:, 1], ex.y_lut[0].numpy(), atol=1e-5) for c in sums)
    assert len(pe.patches) == ex.codebooks.shape[0] * ex.y_lut.shape[1]  # S stacked parts per output
    for ax in (pa, pb, pc, pd_, pe, pf):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    # (a) draws the example's own codebook of sub-space 0 (the one its tables use), not the one passed in
    assert any(np.allclose(c.get_offsets(), ex.codebooks[0].numpy()) for c in pa.collections
               if len(c.get_offsets()) == ex.c)
    # (e) one colour per sub-space: no two legend entries of the stacked parts share a colour
    part_colours = [tuple(h.get_facecolor()) for h in pe.get_legend().legend_handles if hasattr(h, "get_width")]
    assert len(part_colours) == ex.codebooks.shape[0] == len(set(part_colours))
    assert not plots.plot_lut_gemm(ex).axes[0].get_visible()  # no 2-D points: panel (a) is left out


def test_fig01_one_legend_entry_per_metric_and_v():
    rows = [{"method": f"INT{b}", "metric": "scalar", "v": 1, "c": None, "bits_per_activation": b,
             "rel_error": 0.5 / b} for b in (1, 2, 4, 8)]
    rows += [{"method": "VQ", "metric": m, "v": v, "c": c, "bits_per_activation": np.log2(c) / v,
              "rel_error": 0.4 * v / np.log2(c)} for m in ("l2", "l1") for v in (2, 4) for c in (4, 16)]
    fig = plots.plot_scalar_vs_vq(pd.DataFrame(rows))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == 1 + 2 + 2  # scalar, two metrics, two v
    fmt = fig.axes[0].xaxis.get_major_formatter()
    assert fmt(0.25, 0) == "0.25" and fmt(8.0, 0) == "8"  # bits as plain numbers, not 2^-2
