"""The hardware-side figures (lutnb.nb.plots_hw) and notebook 05's helpers (lutnb.codesign.report) on small inputs:
what is drawn (artists, labels, colours, tick locators), that nothing overlaps, and what the helpers compute."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lutnb.codesign import report  # noqa: E402
from lutnb.codesign.accuracy import AccuracyRecord  # noqa: E402
from lutnb.hw import GemmWorkload, LUTDLAConfig, loop_order_traffic, table_swap_timeline  # noqa: E402
from lutnb.nb import plots_hw  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _boxes(fig, artists):
    r = fig.canvas.get_renderer()
    return [a.get_window_extent(r) for a in artists]


def _legend_clear_of_axes(fig):
    """Every figure legend lies outside every axes' data area."""
    fig.canvas.draw()
    legends = fig.legends
    assert legends, "figure has no shared legend"
    for lb in _boxes(fig, legends):
        for ab in _boxes(fig, [ax.patch for ax in fig.axes]):
            assert not lb.overlaps(ab), "legend overlaps a panel"


def _integer_locator(axis) -> bool:
    """The axis puts ticks on integers only, however the range is cut."""
    loc = axis.get_major_locator()
    return isinstance(loc, MaxNLocator) and all(float(t).is_integer() for lo, hi in ((0, 3.7), (0, 0.9), (11, 17.2))
                                               for t in loc.tick_values(lo, hi))


def _facecolors(ax):
    return {to_hex(p.get_facecolor()) for p in ax.patches if p.get_width() and p.get_height()}


def test_plain_number_labels():
    assert [plots_hw.plain_number(x) for x in (0.25, 1.0, 4.0, 146.1, 2500.0)] == ["0.25", "1", "4", "146", "2,500"]
    assert plots_hw.plain_number(0) == ""


def test_loop_orders_one_colour_per_order_and_integer_reloads():
    work = GemmWorkload("w", M=512, K=576, N=256)
    orders = loop_order_traffic(work, LUTDLAConfig(), row_tile=128)
    fig = plots_hw.plot_loop_orders(orders, work)
    axes = fig.axes
    assert len(axes) == 4
    colours = [tuple(to_hex(p.get_facecolor()) for p in ax.patches) for ax in axes]
    assert all(c == colours[0] for c in colours), "a loop order changes colour between panels"
    assert len(set(colours[0])) == len(orders)
    assert _integer_locator(axes[0].xaxis)
    for ax in axes:
        assert ax.get_xlim()[0] == 0                                              # bars start at 0
        assert len(ax.texts) == len(orders)                                        # each bar carries its value
    ticks = sorted(axes[0].get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks] == list(orders["order"])                       # read top to bottom


def test_table_swap_two_rows_integer_cycles_and_legend():
    layer, cfg = GemmWorkload("swap", M=64, K=256, N=256), LUTDLAConfig(table_tile=32, lanes=2)
    tl_db, t_db = table_swap_timeline(layer, cfg)
    tl_sb, t_sb = table_swap_timeline(layer, cfg.replace(double_buffer=False))
    fig = plots_hw.plot_table_swap(tl_sb, t_sb, tl_db, t_db, max_tiles=5)
    ax_sb, ax_db = fig.axes
    assert len(ax_sb.collections) == 2 * 5 and len(ax_db.collections) == 2 * 5     # DMA + IMM bar per tile
    assert f"{t_sb['total_cycles']:,}" in ax_sb.get_title(loc="left")
    assert _integer_locator(ax_db.xaxis) and ax_db.get_xlabel() == "cycle"
    _legend_clear_of_axes(fig)


def _breakdown(n, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.integers(0, 1000, n) for c in plots_hw.STALL_COLORS})
    return df.assign(layer=[f"layer{i}" for i in range(n)])


def test_latency_breakdowns_stack_to_total_and_share_colours():
    panels = [(_breakdown(3), "a"), (_breakdown(7, 1), "b")]
    fig = plots_hw.plot_latency_breakdowns(panels, width_ratios=[1, 2])
    for ax, (df, _) in zip(fig.axes, panels):
        assert len(ax.patches) == len(df) * len(plots_hw.STALL_COLORS)
        tops = np.zeros(len(df))
        for p in ax.patches:
            i = int(round(p.get_x() + p.get_width() / 2))
            tops[i] = max(tops[i], p.get_y() + p.get_height())
        assert tops == pytest.approx(df[list(plots_hw.STALL_COLORS)].sum(axis=1).to_numpy())
        assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= tops.max()               # nothing cut at the top
        assert _facecolors(ax) <= set(plots_hw.STALL_COLORS.values())
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(plots_hw.STALL_LABELS.values())
    _legend_clear_of_axes(fig)


def _ofat():
    base = {"ccus": 8, "lanes": 8}
    rows = [{"factor": f, "value": base[f] * m, "tops_per_w_core": 2 + m, "tops_per_w": 0.02 + 0.001 * m,
             "tops_per_mm2": 0.1 * m, "utilization": min(1.0, 0.2 * m)} for f in base for m in (0.25, 0.5, 1, 2, 4)]
    return pd.DataFrame(rows), base


def test_one_factor_colours_ticks_and_legend():
    curves, base = _ofat()
    fig = plots_hw.plot_one_factor(curves, base)
    assert len(fig.axes) == 4
    per_panel = [[to_hex(line.get_color()) for line in ax.get_lines() if line.get_linestyle() == "-"]
                 for ax in fig.axes]
    assert all(p == per_panel[0] for p in per_panel) and len(set(per_panel[0])) == 2   # one colour per factor
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["0.25", "0.5", "1", "2", "4"]
    assert fig.axes[3].get_ylim() == (0, 105)                                           # utilisation in %
    assert max(fig.axes[3].get_lines()[0].get_ydata()) <= 100
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ccus (balanced: 8)", "lanes (balanced: 8)"]
    _legend_clear_of_axes(fig)


def _measured():
    rows = [{"model": "digits_cnn", "source": s, "metric": m, "v": v, "c": 16, "table_bits": 8,
             "accuracy": 0.9 - 0.01 * v, "n_seeds": 2, "n_test": 450, "tops_per_w_core": 2.0 + v,
             "tops_per_w": 0.02, "tops_per_mm2": 0.1 * v} for s in ("lutboost", "kmeans") for m in ("l1", "chebyshev")
            for v in (2, 4)]
    return pd.DataFrame(rows)


def test_seed_spread_and_accuracy_figure():
    recs = [AccuracyRecord("digits_cnn", "l1", 2, 16, a, "lutboost", seed=s) for s, a in ((0, 0.80), (1, 0.90))]
    recs.append(AccuracyRecord("digits_cnn", "l1", 2, 16, 0.3, "proxy: 1 - rel. error"))
    m = report.with_seed_spread(_measured(), recs)
    one = m[(m.source == "lutboost") & (m.metric == "l1") & (m.v == 2)]
    assert one["accuracy_std"].iloc[0] == pytest.approx(np.std([0.8, 0.9], ddof=1))   # proxies never count
    assert (m.drop(one.index)["accuracy_std"] == 0).all()
    fig = plots_hw.plot_accuracy_vs_efficiency(m)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_ylabel() == "test accuracy (%)"                                   # short, not cut
        assert len(ax.texts) == 2                                                       # one label per (v, c)
        ys = np.concatenate([line.get_ydata() for line in ax.get_lines() if len(line.get_ydata())])
        assert ys.min() > 1                                                             # plotted in %
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["metric: chebyshev", "metric: l1", "conversion: kmeans", "conversion: lutboost",
                      "Pareto front (labelled v, c)"]
    _legend_clear_of_axes(fig)
    r = fig.canvas.get_renderer()
    for ax in fig.axes:                                       # the y-label fits along its axis (never cut short)
        assert ax.yaxis.label.get_window_extent(r).height <= ax.get_window_extent(r).height


def _comparisons():
    rows = []
    for wl in ("resnet18", "bert_base"):
        for mb in ("area", "throughput"):
            for prec, (core, system, area) in {"int8": (1.3, 0.3, 0.7), "int4": (0.8, 0.15, 0.5),
                                               "fp16": (4.0, 0.6, 1.5)}.items():
                rows.append({"workload": wl, "point": report.BALANCED_LABEL, "baseline": prec, "matched_by": mb,
                             "power_eff_ratio_core": core, "power_eff_ratio_system": system, "area_eff_ratio": area,
                             "power_in_paper_range_core": 1.4 <= core <= 7.0,
                             "power_in_paper_range_system": 1.4 <= system <= 7.0,
                             "area_in_paper_range": 1.5 <= area <= 146.1, "baseline_array": "32x32",
                             "base_tops_per_w_core": 2.0, "base_tops_per_w_system": 0.1, "base_tops_per_mm2": 0.2})
    return pd.DataFrame(rows)


def test_baseline_ratios_dots_one_colour_per_precision():
    cmp = _comparisons()
    fig = plots_hw.plot_baseline_ratios(cmp, (1.4, 7.0), (1.5, 146.1))
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and "log" in ax.get_xlabel()                     # the scale is stated
        dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert len(dots) == len(cmp) == 12                                               # 4 rows x 3 baselines
        assert {to_hex(d.get_color()) for d in dots} == set(plots_hw.BASELINE_COLORS.values())
        lo, hi = ax.get_xlim()
        assert lo < min(d.get_xdata()[0] for d in dots) and hi > max(d.get_xdata()[0] for d in dots)
    _legend_clear_of_axes(fig)


def test_distance_pe_cost_integer_axes():
    pe = report.distance_pe_table(vs=(2, 4, 8), bits=(4, 8))
    assert len(pe) == 3 * 3 * 2 and (pe[["energy_pj", "area_um2"]] > 0).all().all()
    fig = plots_hw.plot_distance_pe_cost(pe, bits=8, v_for_bits=4)
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2", "4", "8"]
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["4", "8"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3, 3]
    _legend_clear_of_axes(fig)


def test_area_power_breakdown_from_zero_with_groups():
    b = pd.DataFrame({"component": ["ccm_pe", "ccm_reg", "imm_adders", "dram", "dense_unit_pe"],
                      "area_mm2": [0.1, 0.05, 0.2, 0.0, 0.3], "power_w": [0.01, 0.01, 0.02, 1.0, 0.05]})
    g = report.component_groups(b)
    assert list(g.index) == ["ccm", "dense", "dram", "imm"]
    assert g.loc["ccm", "area_mm2"] == pytest.approx(0.15)
    fig = plots_hw.plot_area_power_breakdown({"a": g, "b": g.drop(index="dram")})
    for ax in fig.axes:
        assert ax.get_xlim()[0] == 0
        assert len(ax.patches) == 2 * (len(g) - ("core" in ax.get_xlabel()))   # the core-only panel has no DRAM
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["CCM (distance PEs)", "dense unit", "DRAM (off chip)",
                                                                   "IMM (look-up adders)"]
    _legend_clear_of_axes(fig)


def test_wins_losses_and_plain_words():
    cmp = _comparisons()
    wl = report.wins_and_losses(cmp, "resnet18")
    assert len(wl) == 6
    assert set(wl.loc[wl.wins_power_core, "baseline"]) == {"int8", "fp16"}
    assert not wl.wins_power_system.any()
    breakdown = pd.DataFrame({"component": ["dram", "imm"], "energy_share": [0.9, 0.1]})
    summary = {"tops": 1.0, "area_mm2": 2.0, "utilization": 0.5}
    text = report.plain_words(cmp, summary, breakdown, "resnet18")
    assert "system accounting: 0.15-0.60x; wins against none" in text
    assert "INT4 (equal area)" in text.split("core accounting")[1].split("\n")[0].split("loses")[1]
    assert "DRAM is 90%" in text
    h = report.headline_vs(cmp, "int8")
    assert h["core"] == {"wins": 4, "n": 4, "min": 1.3, "max": 1.3}
    assert h["system"]["wins"] == 0 and h["area"]["wins"] == 0
    with pytest.raises(ValueError, match="baseline 'int2'"):
        report.headline_vs(cmp, "int2")
    with pytest.raises(ValueError, match="workload='vgg'"):
        report.wins_and_losses(cmp, "vgg")


def test_ratio_block_and_accountings():
    cmp = _comparisons()
    cols = ("power_eff_ratio_core", "power_eff_ratio_system", "area_eff_ratio")
    sub = cmp[cmp.workload == "resnet18"]
    ranges = {c: {"min": float(sub[c].min()), "max": float(sub[c].max())} for c in cols}
    blk = report.ratio_block(cmp, ranges, "resnet18", cols)
    assert blk["n_ratios"] == 6 and blk["power_eff_ratio_core_vs_fp16_max"] == 4.0
    assert blk["power_inside_paper_range_core"] == 2 and blk["power_inside_paper_range_system"] == 0
    rows = report.accountings(cmp, {("resnet18", "p"): {"tops_per_w_core": 3.0, "tops_per_w": 0.1,
                                                         "tops_per_mm2": 0.2}}, "resnet18")
    assert len(rows) == 1 + 6 and rows[0]["design"] == "LUT-DLA p"


def test_chosen_points_needs_a_feasible_point():
    with pytest.raises(ValueError, match="no feasible point"):
        report.chosen_points(pd.DataFrame({"feasible": [False, False]}), None)


def test_block_diagram_labels_follow_config():
    cfg = LUTDLAConfig(ccus=2, lanes=4, c=8, table_tile=16)
    fig = plots_hw.draw_block_diagram(cfg)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "L=2 CCUs x c=8 PEs" in texts and "P=4 look-up lanes, Tn=16" in texts
    assert f"table tiles ({cfg.table_tile_bytes} B)" in texts


def test_versus_table_rows_per_point_and_matching():
    t = report.versus_table(_comparisons(), "fp16")
    assert t.shape == (4, 3) and list(t.columns) == ["power, core", "power, system", "area"]
    assert (t["power, core"] == 4.0).all()
    with pytest.raises(ValueError, match="'int2'"):
        report.versus_table(_comparisons(), "int2")


def test_pareto_mask_keeps_only_undominated_points():
    import pandas as pd

    from lutnb.codesign.dse import pareto_mask  # figure 12's front uses the DSE's own mask

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.0, 0.5], "y": [0.9, 0.8, 0.5, 0.7, 0.95]})
    # (2, 0.7) is beaten by (2, 0.8); the others trade accuracy for efficiency
    assert pareto_mask(df, ("x", "y")).tolist() == [True, True, True, False, True]


def test_fig12_draws_front_and_labels_only_front_points():
    from lutnb.nb.plots_hw import plot_accuracy_vs_efficiency

    pts = pd.DataFrame({"model": "digits_cnn", "source": "lutboost", "metric": ["l1", "l1", "l2"], "v": [4, 4, 8],
                        "c": [16, 8, 8], "accuracy": [0.98, 0.97, 0.90], "tops_per_w_core": [2.0, 1.0, 3.0],
                        "tops_per_mm2": [0.5, 0.6, 0.7]})
    fig = plot_accuracy_vs_efficiency(pts)
    ax_w, ax_a = fig.axes[:2]
    assert "core TOPS/W" in ax_w.get_title(loc="left") and "TOPS/mm" in ax_a.get_title(loc="left")
    # TOPS/W front: (2, .98) and (3, .90); (1, .97) is dominated, so it carries no label
    assert sorted(t.get_text() for t in ax_w.texts) == ["v4,c16", "v8,c8"]
    assert len(ax_w.get_xticks()) >= 3
    plt.close(fig)


def test_fig14_has_a_core_only_power_panel_without_dram():
    from lutnb.nb.plots_hw import plot_area_power_breakdown

    bars = {"A": pd.DataFrame({"area_mm2": [1.0, 0.0], "power_w": [0.1, 9.9]}, index=["imm", "dram"]),
            "B": pd.DataFrame({"area_mm2": [2.0, 0.0], "power_w": [0.2, 5.0]}, index=["pe", "dram"])}
    fig = plot_area_power_breakdown(bars)
    core, system = fig.axes[2], fig.axes[1]
    assert "core" in core.get_xlabel() and "DRAM" in system.get_xlabel()
    assert core.get_xlim()[1] < 0.5 < system.get_xlim()[1]   # the core panel's scale is the on-chip parts alone
    plt.close(fig)


def test_fig13_band_label_names_the_differences():
    from lutnb.nb.plots_hw import plot_baseline_ratios

    cmp = pd.DataFrame({"workload": "resnet18", "matched_by": "area", "baseline": "int8",
                        "power_eff_ratio_core": [2.0], "power_eff_ratio_system": [0.5], "area_eff_ratio": [1.2]})
    fig = plot_baseline_ratios(cmp, (1.4, 7.0), (1.5, 146.1))
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "paper's reported range (different baselines, node and accounting)" in texts
    assert "balanced design" in fig._suptitle.get_text()
    plt.close(fig)


def test_comparison_ratios_split_stored_from_proxy_points():
    cmp = pd.DataFrame({"workload": "resnet18", "point": ["bal", "bal", "fast", "fast"], "baseline": "int8",
                        "matched_by": ["area", "throughput"] * 2, "baseline_array": "8x8",
                        "power_eff_ratio_core": [2.0, 3.0, 20.0, 30.0], "power_eff_ratio_system": [0.5, 0.6, 5.0, 6.0],
                        "area_eff_ratio": [1.0, 1.1, 70.0, 71.0],
                        "power_in_paper_range_core": [True, True, False, False],
                        "power_in_paper_range_system": False, "area_in_paper_range": False})
    chosen = {("resnet18", "bal"): pd.Series({"accuracy": 0.98, "accuracy_source": "stored: lutboost"}),
              ("resnet18", "fast"): pd.Series({"accuracy": 0.62, "accuracy_source": "proxy: 1 - rel. error"})}
    cmp = report.with_accuracy_source(cmp, chosen)
    m = report.comparison_ratios(cmp, "resnet18", measured=True)
    p = report.comparison_ratios(cmp, "resnet18", measured=False)
    assert (m["n_ratios"], m["power_eff_ratio_core_max"], m["points"]) == (2, 3.0, ["bal"])
    assert (p["n_ratios"], p["area_eff_ratio_max"], p["points"]) == (2, 71.0, ["fast"])
    none = report.comparison_ratios(cmp[cmp.point == "fast"], "resnet18", measured=True)
    assert none["n_ratios"] == 0 and none["power_eff_ratio_core_min"] is None
    assert "no compared point" in report.range_words(none, "x")
