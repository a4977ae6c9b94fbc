"""lutnb.hw.traffic: one traffic model for both sides; a test that fails if one side drops or adds a term."""
import numpy as np
import pytest

from lutnb.codesign import cost
from lutnb.codesign.analytic import analytic_lut_totals
from lutnb.codesign.workloads import merge_repeats
from lutnb.hw import GemmWorkload, LUTDLAConfig, SystolicConfig, simulate_dense_layer, simulate_layer, traffic


def test_both_sides_count_the_same_terms_with_the_same_rule():
    """Same layer, same number of accumulator folds: the accumulation terms are identical word for word."""
    M, K, N = 96, 64, 40
    lut = simulate_layer(GemmWorkload("x", M=M, K=K, N=N), LUTDLAConfig(v=8, adder_fanin=1, table_tile=40,
                                                                         table_buffer_bytes=1 << 16))
    dense = simulate_dense_layer(GemmWorkload("x", M=M, K=K, N=N), SystolicConfig(rows=8, cols=64, ofmap_sram_kb=64))
    folds = 8                                           # S = 64 / 8 sub-spaces; ceil(64 / 8) array folds
    for rec in (lut, dense):
        assert rec["sram_psums_words"] == folds * M * N + (folds - 1) * M * N
        assert rec["dram_outputs_words"] == M * N and rec["dram_psums_words"] == 0
        assert rec["dram_activations_words"] == M * K
        assert rec["outputs_bits"] == 8 and rec["psums_bits"] == 32
        assert rec["total_cycles"] >= rec["link_cycles"] == int(np.ceil(rec["dram_bytes"] / (
            16 if rec is lut else 10)))
    # every off-chip term on each side is in dram_bytes, and the operand sets are the documented ones
    for rec, ops in ((lut, traffic.LUT_OPERANDS), (dense, traffic.DENSE_OPERANDS)):
        assert rec["dram_bytes"] == sum(rec[f"dram_{op}_bytes"] for op in ops)
        assert rec["sram_bytes"] == sum(rec[f"sram_{op}_bytes"] for op in ops)
        assert {k[5:-6] for k in rec if k.startswith("dram_") and k.endswith("_words")} == set(ops)


def test_row_tiling_and_spill_rule_are_the_same_on_both_sides():
    """WS dense and LUT-DLA both row-tile so the partial sums fit their buffer and re-fetch the stationary
    operand (weights / tables) per row tile; a layout that cannot tile (is) spills by the shared rule."""
    w = GemmWorkload("x", M=4096, K=256, N=64)
    fits = simulate_dense_layer(w, SystolicConfig(rows=32, cols=32, ofmap_sram_kb=1024))
    small = simulate_dense_layer(w, SystolicConfig(rows=32, cols=32, ofmap_sram_kb=64))   # 4096*32*4 B > 64 KiB
    Tm = 64 * 1024 * 8 // 32 // 32
    assert fits["dram_weights_words"] == 256 * 64 and fits["dram_psums_words"] == 0
    assert small["dram_weights_words"] == (4096 // Tm) * 256 * 64 and small["dram_psums_words"] == 0
    assert small["compute_cycles"] > fits["compute_cycles"]           # each row tile refills the array
    lut = simulate_layer(w, LUTDLAConfig(m_tile=Tm, table_tile=64, table_buffer_bytes=1 << 16))
    assert lut["dram_tables_words"] == (4096 // Tm) * (256 // 4) * 16 * 64 and lut["dram_psums_words"] == 0
    wide = simulate_dense_layer(GemmWorkload("y", M=64, K=256, N=4096),
                                SystolicConfig(rows=32, cols=32, dataflow="is", ofmap_sram_kb=64))
    assert wide["dram_psums_words"] == 2 * 7 * 64 * 4096                # 32 x 4096 psums > 64 KiB: spill
    acc = traffic.accumulation(10, 3, np.array([1, 4]), np.array([50, 50]), 40)
    assert acc["dram_psums"].tolist() == [0, 2 * 3 * 30]


def test_cost_model_and_simulator_use_the_same_words():
    """The sweep's closed form reads lutnb.hw.traffic too: its per-operand bytes equal the simulator's."""
    w = GemmWorkload("x", M=50, K=36, N=70)
    cfg = LUTDLAConfig(table_bits=4, acc_bits=16, m_tile=20, adder_fanin=2, table_tile=32)
    rec = simulate_layer(w, cfg)
    p = {**cfg.to_dict(), "bank_extra": 0.0}
    tot = analytic_lut_totals(merge_repeats("one", [w]), p)
    for op in traffic.LUT_OPERANDS:
        assert float(tot[f"sram_{op}_bytes"]) == rec[f"sram_{op}_bytes"], op
        assert float(tot[f"dram_{op}_bytes"]) == rec[f"dram_{op}_bytes"], op
    d = cost.dense_traffic(w.M, w.K, w.N, SystolicConfig(), "int8")
    r = simulate_dense_layer(w, SystolicConfig())
    for op in traffic.DENSE_OPERANDS:
        assert d[f"sram_{op}_words"] == r[f"sram_{op}_words"] and d[f"dram_{op}_words"] == r[f"dram_{op}_words"]
    assert d["total_cycles"] == r["total_cycles"]


@pytest.mark.parametrize("bw", [1, 4, 64])
def test_dense_link_rule(bw):
    w = GemmWorkload("g", M=256, K=256, N=128)
    r = simulate_dense_layer(w, SystolicConfig(offchip_bytes_per_cycle=bw))
    assert r["total_cycles"] == max(r["compute_cycles"], r["link_cycles"])
    assert r["total_cycles"] == r["compute_cycles"] + r["stall_offchip_bw"]
