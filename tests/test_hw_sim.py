"""lutnb.hw: configs, workloads, the two LUT-DLA engines, dense baselines against SCALE-Sim's numbers."""
import pytest
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lutnb.hw import (
    STALL_CAUSES,
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
    rec = simulate_dense_layer(GemmWorkload("g", M=256, K=256, N=128), SystolicConfig(dataflow=df))
    assert rec["total_cycles"] == golden and rec["stall_cycles"] == 0
    assert rec["dram_activations_words"] == 256 * 256 and rec["dram_weights_bytes"] == 256 * 128


def test_dense_sram_counts_match_scalesim_reports():
    # numbers from SCALE-Sim 3.0.0's DETAILED_ACCESS_REPORT for the golden GEMM on 32x32
    w = GemmWorkload("g", M=256, K=256, N=128)
    got = {df: simulate_dense_layer(w, SystolicConfig(dataflow=df)) for df in ("ws", "os", "is")}
    ops = ("activations", "weights", "outputs")
    assert [got["ws"][f"sram_{o}_words"] for o in ops] == [262144, 32768, 262144]
    assert [got["os"][f"sram_{o}_words"] for o in ops] == [262144, 262144, 34816]
    assert [got["is"][f"sram_{o}_words"] for o in ops] == [65536, 262144, 262144]
    assert got["os"]["dram_outputs_words"] == 32768


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
    imm_side = (r["imm_cycles"] + r["stall_bank_conflict"] + r["table_load_cycles"] + r["stall_offchip_bw"]
                + r["fill_cycles"] + r["stall_fifo_empty"])
    return imm_side == r["total_cycles"] and r["stall_cycles"] == sum(r[f"stall_{c}"] for c in STALL_CAUSES)


@st.composite
def layer_and_config(draw):
    L, P = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c = draw(st.sampled_from([2, 4, 8, 16]))
    cfg = LUTDLAConfig(
        ccus=L, lanes=P, c=c, v=draw(st.integers(1, 5)), fifo_depth=L + P + draw(st.integers(0, 10)),
        table_tile=draw(st.integers(1, 8)), table_buffer_bytes=1 << 20, double_buffer=draw(st.booleans()),
        sram_banks=draw(st.integers(1, c)),
        offchip_bytes_per_cycle=draw(st.sampled_from([0.5, 1, 3, 16, 128])),
        m_tile=draw(st.one_of(st.none(), st.integers(1, 24))), table_bits=draw(st.sampled_from([4, 8, 16])))
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
    assert fast_ccm["stall_fifo_full"] > 0
    low_bw = simulate_layer(w, LUTDLAConfig(offchip_bytes_per_cycle=1, table_tile=16), "reference")
    assert low_bw["stall_offchip_bw"] > 0
    few_banks = simulate_layer(w, LUTDLAConfig(sram_banks=2, table_tile=16), "reference")
    assert few_banks["stall_bank_conflict"] > 0
    no_db = simulate_layer(w, LUTDLAConfig(double_buffer=False, table_tile=16), "fast")
    db = simulate_layer(w, LUTDLAConfig(double_buffer=True, table_tile=16), "fast")
    assert no_db["table_load_cycles"] > db["table_load_cycles"] and no_db["total_cycles"] > db["total_cycles"]
    for r in (slow_ccm, fast_ccm, low_bw, few_banks, no_db, db):
        assert _identity_holds(r)


def test_records_report_bytes_with_widths_and_network_frame():
    cfg = LUTDLAConfig(table_bits=4, acc_bits=24, activation_bits=8)
    ws = [GemmWorkload("a", M=50, K=36, N=70), GemmWorkload("b", M=9, K=8, N=3)]
    df, totals = simulate_network(ws, cfg)
    assert len(df) == 2 and totals["total_cycles"] == int(df["total_cycles"].sum())
    r = df.iloc[0]
    assert r["indices_bits"] == 4 and r["tables_bits"] == 4 and r["outputs_bits"] == 24
    S = 9
    assert r["dram_tables_words"] == S * 16 * 70 and r["dram_tables_bytes"] == S * 16 * 70 // 2
    assert r["dram_activations_bytes"] == 50 * 36 and r["dram_outputs_bytes"] == 50 * 70 * 3
    assert totals["stall_cycles"] == sum(totals[f"stall_{c}"] for c in STALL_CAUSES)
    assert 0 < totals["utilization"] <= 1
