"""lutnb.hw: configs, workloads, the two LUT-DLA engines, dense baselines against SCALE-Sim's numbers."""
import pytest
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lutnb.hw import (
    STALL_FIELDS,
    GemmWorkload,
    LUTDLAConfig,
    SystolicConfig,
    extract_workloads,
    read_scalesim_topology,
    simulate_dense_layer,
    simulate_layer,
    simulate_network,
    systolic_cycles,
    write_scalesim_topology,
)


@pytest.mark.parametrize("kw, field", [
    ({"lanes": 0}, "lanes"), ({"fifo_depth": 0}, "fifo_depth"), ({"table_bits": 3}, "table_bits"),
    ({"table_bits": 17}, "table_bits"), ({"acc_bits": 4}, "acc_bits"), ({"metric": "cos"}, "metric"),
    ({"table_buffer_bytes": 100}, "table_buffer_bytes"), ({"fifo_depth": 8}, "fifo_depth"),
    ({"activation_bits": 0}, "activation_bits"), ({"offchip_bytes_per_cycle": 0}, "offchip_bytes_per_cycle"),
])
def test_lut_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=rf"LUTDLAConfig\.{field}="):
        LUTDLAConfig(**kw)


def test_systolic_config_errors():
    with pytest.raises(ValueError, match=r"SystolicConfig\.dataflow='rs'"):
        SystolicConfig(dataflow="rs")
    with pytest.raises(ValueError, match=r"SystolicConfig\.rows=0"):
        SystolicConfig(rows=0)


@pytest.mark.parametrize("df, golden", [("ws", 11199), ("os", 10175), ("is", 14207)])
def test_scalesim_golden_cycles(df, golden):
    assert systolic_cycles(256, 256, 128, 32, 32, df)["total_cycles"] == golden
    g = GemmWorkload("g", M=256, K=256, N=128)
    rec = simulate_dense_layer(g, SystolicConfig(dataflow=df, offchip_bytes_per_cycle=32))   # link not the limit
    assert rec["total_cycles"] == rec["compute_cycles"] == golden and rec["stall_cycles"] == 0
    assert rec["dram_activations_words"] == 256 * 256 and rec["dram_weights_bytes"] == 256 * 128
    slow = simulate_dense_layer(g, SystolicConfig(dataflow=df, offchip_bytes_per_cycle=4))    # link-bound
    assert slow["compute_cycles"] == golden and slow["total_cycles"] == slow["link_cycles"] > golden
    assert slow["total_cycles"] == golden + slow["stall_offchip_bw"]


def test_dense_sram_counts_match_scalesim_reports():
    # numbers from SCALE-Sim 3.0.0's DETAILED_ACCESS_REPORT for the golden GEMM on 32x32
    w = GemmWorkload("g", M=256, K=256, N=128)
    got = {df: simulate_dense_layer(w, SystolicConfig(dataflow=df)) for df in ("ws", "os", "is")}
    ops = ("activations", "weights", "psums")
    # psums on chip = SCALE-Sim's OFMAP writes + the read-backs of every fold after the first (ws/is: 8 folds)
    back = 7 * 256 * 128
    assert [got["ws"][f"sram_{o}_words"] for o in ops] == [262144, 32768, 262144 + back]
    assert [got["os"][f"sram_{o}_words"] for o in ops] == [262144, 262144, 34816]
    assert [got["is"][f"sram_{o}_words"] for o in ops] == [65536, 262144, 262144 + back]
    assert got["os"]["dram_outputs_words"] == 32768 and got["ws"]["dram_psums_words"] == 0


def test_extract_workloads_and_scalesim_csv_roundtrip(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 10))
    ws = extract_workloads(model, (2, 3, 10, 10))
    assert [(w.M, w.K, w.N) for w in ws] == [(2 * 25, 27, 8), (2 * 25, 8, 4), (2, 100, 10)]
    assert ws[0].kind == "conv2d" and ws[0].stride == (2, 2) and ws[0].padding == (1, 1)
    back = read_scalesim_topology(write_scalesim_topology(ws, tmp_path / "t.csv"))
    assert [(w.M, w.K, w.N) for w in back] == [(w.M, w.K, w.N) for w in ws]
    one = extract_workloads(model, (1, 3, 10, 10))[:2]
    conv = read_scalesim_topology(write_scalesim_topology(one, tmp_path / "c.csv", mode="conv"))
    assert [(w.M, w.K, w.N) for w in conv] == [(w.M, w.K, w.N) for w in one]


def _identity_holds(r):
    """One timeline: busy + the named stall parts == total, and the off-chip link fits inside it."""
    parts = r["imm_cycles"] + sum(r[f] for f in STALL_FIELDS)
    return (parts == r["total_cycles"] == r["imm_cycles"] + r["stall_cycles"]
            and r["total_cycles"] >= r["link_cycles"] and min(r[f] for f in STALL_FIELDS) >= 0)


@st.composite
def layer_and_config(draw):
    L, P = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c = draw(st.sampled_from([2, 4, 8, 16]))
    cfg = LUTDLAConfig(
        ccus=L, lanes=P, c=c, v=draw(st.integers(1, 5)), fifo_depth=L + P + draw(st.integers(0, 10)),
        table_tile=draw(st.integers(1, 8)), table_buffer_bytes=1 << 20, double_buffer=draw(st.booleans()),
        sram_banks=draw(st.integers(1, c)),
        offchip_bytes_per_cycle=draw(st.sampled_from([0.5, 1, 3, 16, 128])),
        m_tile=draw(st.one_of(st.none(), st.integers(1, 24))), table_bits=draw(st.sampled_from([4, 8, 16])),
        adder_fanin=draw(st.integers(1, min(P, 3))))
    w = GemmWorkload("x", M=draw(st.integers(1, 40)), K=draw(st.integers(1, 24)), N=draw(st.integers(1, 20)))
    return w, cfg, draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None)
@given(layer_and_config())
def test_reference_engine_equals_fast_engine(case):
    w, cfg, seed = case
    fast, ref = simulate_layer(w, cfg, "fast", seed=seed), simulate_layer(w, cfg, "reference", seed=seed)
    assert fast == ref
    assert _identity_holds(fast)


def test_stall_causes_show_up_and_sum():
    w = GemmWorkload("x", M=64, K=32, N=48)
    slow_ccm = simulate_layer(w, LUTDLAConfig(ccus=2, lanes=8, fifo_depth=10, table_tile=16), "reference")
    assert slow_ccm["stall_fifo_empty"] > 0
    fast_ccm = simulate_layer(w, LUTDLAConfig(ccus=8, lanes=2, fifo_depth=10, table_tile=16), "reference")
    assert fast_ccm["ccm_stall_fifo_full"] > 0
    low_bw = simulate_layer(w, LUTDLAConfig(offchip_bytes_per_cycle=1, table_tile=16), "reference")
    assert low_bw["stall_offchip_bw"] > 0
    few_banks = simulate_layer(w, LUTDLAConfig(sram_banks=2, table_tile=16), "reference")
    assert few_banks["stall_bank_conflict"] > 0
    no_db = simulate_layer(w, LUTDLAConfig(double_buffer=False, table_tile=16, offchip_bytes_per_cycle=64), "fast")
    db = simulate_layer(w, LUTDLAConfig(double_buffer=True, table_tile=16, offchip_bytes_per_cycle=64), "fast")
    assert no_db["stall_table_load"] > db["stall_table_load"] and no_db["total_cycles"] > db["total_cycles"]
    for r in (slow_ccm, fast_ccm, low_bw, few_banks, no_db, db):
        assert _identity_holds(r)


def test_records_report_bytes_with_widths_and_network_frame():
    cfg = LUTDLAConfig(table_bits=4, acc_bits=24, activation_bits=8)
    ws = [GemmWorkload("a", M=50, K=36, N=70), GemmWorkload("b", M=9, K=8, N=3)]
    df, totals = simulate_network(ws, cfg)
    assert len(df) == 2 and totals["total_cycles"] == int(df["total_cycles"].sum())
    r = df.iloc[0]
    assert r["indices_bits"] == 4 and r["tables_bits"] == 4 and r["psums_bits"] == 24 and r["outputs_bits"] == 8
    S = 9
    assert r["dram_tables_words"] == S * 16 * 70 and r["dram_tables_bytes"] == S * 16 * 70 // 2
    assert r["dram_activations_bytes"] == 50 * 36 and r["dram_outputs_bytes"] == 50 * 70
    assert r["sram_psums_words"] == (2 * S - 1) * 50 * 70 and r["dram_psums_words"] == 0
    assert totals["stall_cycles"] == sum(totals[f] for f in STALL_FIELDS)
    assert totals["total_cycles"] == totals["imm_cycles"] + totals["stall_cycles"]
    assert 0 < totals["utilization"] <= 1


@settings(max_examples=300, deadline=None)
@given(layer_and_config())
def test_stall_parts_sum_to_total_and_ccm_stall_is_not_a_part(case):
    w, cfg, seed = case
    r = simulate_layer(w, cfg, "fast", seed=seed)
    assert _identity_holds(r)
    assert r["stall_cycles"] <= r["total_cycles"]


def test_large_activations_tiny_tables_are_link_bound():
    """M*K activation bytes far above the table bytes: the link, not the IMM, sets the time."""
    w = GemmWorkload("wide", M=4096, K=512, N=4)
    cfg = LUTDLAConfig(offchip_bytes_per_cycle=4, table_tile=4, table_buffer_bytes=4096)
    r = simulate_layer(w, cfg)
    assert r["dram_activations_bytes"] > 50 * r["dram_tables_bytes"]
    assert r["total_cycles"] == r["link_cycles"] > 2 * (r["imm_cycles"] + r["stall_fill"])
    assert r["stall_offchip_bw"] > r["imm_cycles"] and _identity_holds(r)
    fast_link = simulate_layer(w, cfg.replace(offchip_bytes_per_cycle=1024))
    assert fast_link["total_cycles"] < r["total_cycles"] / 4 and fast_link["stall_offchip_bw"] < r["stall_offchip_bw"]


def test_fifo_at_min_unthrottled_depth_never_throttles_the_ccm():
    """At cfg.min_unthrottled_fifo_depth the layer is as fast as with an unbounded FIFO; a CCM no faster than
    the IMM is never blocked (a faster one is back-pressured, which costs nothing and is reported)."""
    w = GemmWorkload("x", M=300, K=64, N=40)
    for L, P, c in ((16, 16, 16), (32, 4, 8), (8, 32, 32)):
        cfg = LUTDLAConfig(ccus=L, lanes=P, c=c, fifo_depth=L + P, table_tile=8, table_buffer_bytes=1 << 16)
        deep = simulate_layer(w, cfg.replace(fifo_depth=cfg.min_unthrottled_fifo_depth))
        assert deep["total_cycles"] == simulate_layer(w, cfg.replace(fifo_depth=10**6))["total_cycles"]
        assert deep["total_cycles"] < simulate_layer(w, cfg)["total_cycles"]      # the shallow FIFO throttles
        if L <= P:
            assert deep["ccm_stall_fifo_full"] == 0


def test_adder_fanin_cuts_accumulator_traffic_not_lookups():
    w = GemmWorkload("x", M=64, K=64, N=32)
    one = simulate_layer(w, LUTDLAConfig(table_tile=32, table_buffer_bytes=1 << 16))
    four = simulate_layer(w, LUTDLAConfig(table_tile=32, table_buffer_bytes=1 << 16, adder_fanin=4))
    S = 16
    assert one["sram_psums_words"] == (2 * S - 1) * 64 * 32 and four["sram_psums_words"] == (2 * 4 - 1) * 64 * 32
    assert one["lookup_adds"] == four["lookup_adds"] and one["lookups"] == four["lookups"]
    assert four == simulate_layer(w, LUTDLAConfig(table_tile=32, table_buffer_bytes=1 << 16, adder_fanin=4),
                                  "reference")
    with pytest.raises(ValueError, match=r"LUTDLAConfig\.adder_fanin=64"):
        LUTDLAConfig(adder_fanin=64)
