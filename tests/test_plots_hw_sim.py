"""Figures 3, 4, 6, 7 and 14b (lutnb.nb.plots_hw): what the review asked of them, checked on small inputs."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lutnb.hw import GemmWorkload, LUTDLAConfig, loop_order_traffic, table_swap_timeline  # noqa: E402
from lutnb.nb import plots_hw  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _breakdown(n, zero=(), seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: (np.zeros(n, int) if c in zero else rng.integers(1, 1000, n)) for c in plots_hw.STALL_COLORS})
    return df.assign(layer=[f"layer{i}" for i in range(n)])


def test_latency_legend_names_only_causes_with_cycles():
    zero = ("stall_bank_conflict", "stall_fifo_empty")
    fig = plots_hw.plot_latency_breakdowns([(_breakdown(3, zero), "a"), (_breakdown(5, zero, 1), "b")])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [plots_hw.STALL_LABELS[k] for k in plots_hw.STALL_COLORS if k not in zero]
    note = " ".join(t.get_text() for t in fig.texts)
    assert all(plots_hw.STALL_LABELS[k] in note for k in zero) and "0 cycles" in note


def test_latency_legend_keeps_a_cause_nonzero_in_one_panel_only():
    a = _breakdown(3, ("stall_bank_conflict",))
    b = _breakdown(4, (), 1)
    fig = plots_hw.plot_latency_breakdowns([(a, "a"), (b, "b")])
    assert plots_hw.STALL_LABELS["stall_bank_conflict"] in [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any("0 cycles" in t.get_text() for t in fig.texts)


def test_table_swap_title_names_shown_and_total_tiles():
    layer, cfg = GemmWorkload("swap", M=64, K=256, N=256), LUTDLAConfig(table_tile=32, lanes=2)
    tl_db, t_db = table_swap_timeline(layer, cfg)
    tl_sb, t_sb = table_swap_timeline(layer, cfg.replace(double_buffer=False))
    fig = plots_hw.plot_table_swap(tl_sb, t_sb, tl_db, t_db, max_tiles=5)
    title = fig._suptitle.get_text()
    assert f"first 5 of {len(tl_db)}" in title and f"totals over all {len(tl_db)} tiles" in title
    assert len(tl_db) > 5


def test_loop_orders_binary_units():
    work = GemmWorkload("w", M=512, K=576, N=256)
    orders = loop_order_traffic(work, LUTDLAConfig(), row_tile=128)
    fig = plots_hw.plot_loop_orders(orders, work)
    titles = [ax.get_title() for ax in fig.axes]
    assert "accumulator buffer (KiB)" in titles and "tables + activations + indices (MiB)" in titles
    acc = fig.axes[3]
    shown = sorted(float(t.get_text().replace(",", "")) for t in acc.texts)
    assert shown[-1] == pytest.approx(float(orders["accumulator_bytes"].max()) / 1024, rel=1e-2)


def _box_of(ax, prefix):
    """The FancyBboxPatch that holds the text starting with `prefix`: (x0, y0, x1, y1) in data units."""
    tx, ty = next(t for t in ax.texts if t.get_text().startswith(prefix)).get_position()
    for p in ax.patches:
        if type(p).__name__ == "FancyBboxPatch":
            x0, y0 = p.get_x(), p.get_y()
            if x0 <= tx <= x0 + p.get_width() and y0 <= ty <= y0 + p.get_height():
                return x0, y0, x0 + p.get_width(), y0 + p.get_height()
    raise AssertionError(f"no box around {prefix!r}")


def _arrows(ax):
    return [p._posA_posB for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]


def _inside(pt, box, pad=0.05):
    return box[0] - pad <= pt[0] <= box[2] + pad and box[1] - pad <= pt[1] <= box[3] + pad


def test_block_diagram_title_states_config_and_has_index_and_writeback_paths():
    cfg = LUTDLAConfig(metric="l1", acc_bits=19)
    fig = plots_hw.draw_block_diagram(cfg)
    ax = fig.axes[0]
    title = ax.get_title()
    assert "l1" in title and "19-bit accumulators" in title
    buf, lanes, dram = _box_of(ax, "index buf"), _box_of(ax, f"{cfg.lanes} lanes"), _box_of(ax, "off-chip DRAM")
    arrows = _arrows(ax)
    assert any(_inside(b, buf) and not _inside(a, buf) for a, b in arrows), "nothing flows into the index buffer"
    assert any(_inside(a, buf) and _inside(b, lanes) for a, b in arrows), "index buffer does not feed the lanes"
    assert any(_inside(a, lanes) and _inside(b, dram) for a, b in arrows), "no output write-back to DRAM"


def test_framework_fits_every_annotation_line():
    ann = {"dse": [f"line {i}" for i in range(7)], "model": ["a"]}
    fig = plots_hw.draw_framework(ann)
    fig.canvas.draw()
    ax = fig.axes[0]
    r = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(r)
    for t in ax.texts:
        if t.get_text().startswith("line "):
            b = t.get_window_extent(r)
            assert b.y0 >= axbox.y0 - 1 and b.y1 <= axbox.y1 + 1, t.get_text()
