"""lutnb.codesign.cost: cited constants, monotone component models, a hand-computed design."""
import math

import pytest

from lutnb.codesign import cost
from lutnb.hw import LUTDLAConfig, SystolicConfig


def test_every_constant_has_a_source():
    assert len(cost.CONSTANTS) >= 20
    for name, k in cost.CONSTANTS.items():
        assert k.name == name and isinstance(k.value, float) and k.unit
        assert len(k.source) > 15, name
        assert k.kind in ("published", "derived", "ours"), name
        if k.kind == "ours":
            assert "[ours]" in k.source, name
        assert "LUT-DLA" not in k.source, name          # nothing is presented as the paper's
    df = cost.constants_frame()
    assert df["source"].str.len().min() > 15


def test_horowitz_points_reproduced():
    assert cost.adder(8)[0] == pytest.approx(0.03) and cost.adder(32)[1] == pytest.approx(137)
    assert cost.multiplier(8)[1] == pytest.approx(282) and cost.multiplier(32)[0] == pytest.approx(3.1)
    assert cost.sram_energy_per_bit(8) * 64 == pytest.approx(10)
    assert cost.sram_energy_per_bit(32) * 64 == pytest.approx(20)
    assert cost.sram_energy_per_bit(1024) * 64 == pytest.approx(100)
    assert cost.dram_energy_per_byte() == pytest.approx(1950 / 8)


def test_monotone_components():
    for f in (cost.adder, cost.multiplier, cost.register, cost.comparator):
        e = [f(b) for b in (4, 8, 16, 32)]
        assert all(x[0] < y[0] and x[1] < y[1] for x, y in zip(e, e[1:])), f.__name__
    kbs = [0.5, 2, 8, 32, 256, 1024, 4096]
    e = [cost.sram_energy_per_bit(k) for k in kbs]
    a = [cost.sram_area_um2(k) for k in kbs]
    assert all(x < y for x, y in zip(e, e[1:])) and all(x < y for x, y in zip(a, a[1:]))
    for metric in ("l2", "l1", "chebyshev"):
        pe = [cost.distance_pe_total(metric, v, 8) for v in (2, 4, 8)]
        assert all(x[0] < y[0] and x[1] < y[1] for x, y in zip(pe, pe[1:]))
        pb = [cost.distance_pe_total(metric, 4, b) for b in (4, 8, 16)]
        assert all(x[1] < y[1] for x, y in zip(pb, pb[1:]))
    l2, l1, ch = (cost.distance_pe_total(m, 4, 8) for m in ("l2", "l1", "chebyshev"))
    assert l2[1] > l1[1] and l2[1] > ch[1] and l2[0] > l1[0]      # multipliers cost most
    # node scaling shrinks area and energy
    assert cost.adder(8, cost.Tech(node_nm=22))[1] < cost.adder(8)[1]
    assert cost.adder(8, cost.Tech(node_nm=22))[0] < cost.adder(8)[0]


def test_design_area_monotone_in_lanes_ccus_and_c():
    def area(**kw):
        d = cost.LUTDesign(LUTDLAConfig(table_buffer_bytes=65536, fifo_depth=512, **kw))
        return sum(cost.lut_area(d, max_S=64).values()), cost.lut_area(d, max_S=64)

    assert area(lanes=32)[0] > area(lanes=16)[0] > area(lanes=8)[0]
    assert area(ccus=32)[0] > area(ccus=16)[0]
    ccm = lambda a: sum(v for k, v in a.items() if k.startswith("ccm_"))
    assert ccm(area(c=32)[1]) > ccm(area(c=16)[1]) > ccm(area(c=8)[1])
    d = cost.dense_area
    assert sum(d(SystolicConfig(rows=32, cols=32), "int8").values()) > sum(
        d(SystolicConfig(rows=16, cols=16), "int8").values())
    assert sum(d(SystolicConfig(), "fp16").values()) > sum(d(SystolicConfig(), "int8").values()) > sum(
        d(SystolicConfig(), "int4").values())


def test_hand_computed_small_design():
    """L1 PE with v=2, 8-bit inputs; then a whole 1-CCU, c=2, 1-lane design on known totals."""
    a8 = lambda b: 36 * (b / 8) ** (math.log(137 / 36) / math.log(4))
    e8 = lambda b: 0.03 * (b / 8) ** (math.log(0.1 / 0.03) / math.log(4))
    dens = 0.03 / 36
    pe = cost.distance_pe("l1", 2, 8)
    assert pe["subtract"] == pytest.approx((2 * e8(8), 2 * a8(8)))
    assert pe["abs"] == pytest.approx((2 * (e8(9) + 1.862 * 9 * dens), 2 * (a8(9) + 1.862 * 9)))
    assert pe["adder_tree"] == pytest.approx((e8(10), a8(10)))
    assert pe["argmin"] == pytest.approx((e8(10) + 1.862 * 10 * dens, a8(10) + 1.862 * 10))
    reg_bits = 2 * 8 + 10 + 8
    assert pe["registers"] == pytest.approx((4.522 * reg_bits * dens, 4.522 * (reg_bits + 16)))

    cfg = LUTDLAConfig(ccus=1, c=2, v=2, metric="l1", lanes=1, table_tile=4, table_buffer_bytes=64,
                       fifo_depth=8, table_bits=8, acc_bits=16)
    d = cost.LUTDesign(cfg, acc_buffer_kb=1.0, act_buffer_kb=1.0)
    tot = {"distance_ops": 40, "lookup_adds": 10, "dram_bytes": 100}
    for op in ("tables", "indices", "outputs", "activations", "codebooks"):
        tot[f"sram_{op}_bytes"] = 0
    tot["sram_tables_bytes"] = 8
    e = cost.lut_energy(d, tot, max_S=2)
    pe_e = sum(x[0] for x in pe.values())
    assert sum(v for k, v in e.items() if k.startswith("ccm_")) == pytest.approx(20 * pe_e)
    assert e["imm_adders"] == pytest.approx(10 * e8(16))
    bank_kb = max(64 / 1024 / 4, 0.5)                          # table buffer banked 1 lane x 4 entries
    assert e["sram_tables"] == pytest.approx(64 * 10 / 64 * (bank_kb / 8) ** 0.5)
    assert e["dram"] == pytest.approx(100 * 1950 / 8)
    a = cost.lut_area(d, max_S=2)
    assert a["imm_adders"] == pytest.approx(4 * a8(16) / 1e6)
    assert a["sram_table"] == pytest.approx(64 * 8 * 0.346 / 0.5 / 1e6)
    s = cost.summarize(e, a, cycles=1000, clock_mhz=500, ops=2 * 1000)
    assert s["time_s"] == pytest.approx(2e-6)
    assert s["tops"] == pytest.approx(2000 / 2e-6 / 1e12)
    assert s["tops_per_w"] == pytest.approx(s["ops"] / s["energy_pj"])
    assert s["leakage_pj"] == pytest.approx(s["area_mm2"] * 25.066064 / 1.064 * 1e-3 * 2e-6 * 1e12)
    assert s["energy_core_pj"] == pytest.approx(s["energy_pj"] - e["dram"])          # core = system - DRAM
    assert s["tops_per_w_core"] == pytest.approx(s["ops"] / s["energy_core_pj"])
    assert s["tops_per_w_core"] > s["tops_per_w"] == s["tops_per_w_system"]
    df = cost.breakdown(e, a, s)
    assert df["energy_pj"].sum() == pytest.approx(s["energy_pj"])
    assert df["area_mm2"].sum() == pytest.approx(s["area_mm2"])


def test_dense_mac_widths():
    m8, m4 = cost.mac("int8"), cost.mac("int4")
    assert m8["multiplier"][0] == pytest.approx(0.2) and m8["adder"][0] == pytest.approx(0.1)
    assert m4["multiplier"][0] < m8["multiplier"][0]
    assert cost.mac("fp16")["multiplier"] == pytest.approx((1.1, 1640))
    with pytest.raises(ValueError):
        cost.Tech(node_nm=1)
    with pytest.raises(ValueError):
        cost.distance_pe("cosine", 4)


def test_leakage_is_sourced_and_not_negligible():
    k = cost.CONSTANTS["leakage_density"]
    assert k.kind == "derived" and "NanGate" in k.source and k.value == pytest.approx(23.56, rel=1e-3)
    # a 1 mm^2 block busy for 1 ms leaks ~23.6 nJ: far above the 1e-5 share the old 0.01 mW/mm^2 gave
    assert float(cost.leakage_mw(1.0)) == pytest.approx(23.56, rel=1e-3)


def test_accumulator_width_and_adder_tree():
    assert cost.required_acc_bits(8, 144) == 8 + 8 and cost.required_acc_bits(4, 2) == 8   # floor of 8 bits
    assert cost.required_acc_bits(8, 1) == 8 and cost.required_acc_bits(16, 1 << 20) == 36
    one, four = cost.imm_adders(16, 8, 1), cost.imm_adders(16, 8, 4)
    assert float(one["energy_per_lookup"]) == pytest.approx(cost.adder(16)[0])
    # g = 4: three 10-bit tree adds and one 16-bit accumulate per 4 look-ups
    want = (3 * cost.adder(10)[0] + cost.adder(16)[0]) / 4
    assert float(four["energy_per_lookup"]) == pytest.approx(want) and want < cost.adder(16)[0]


def test_regfile_vs_sram_accumulators_priced_from_cited_cells():
    e_rf, a_rf = cost.acc_storage_cost(1.0, 64, "regfile")
    e_sr, a_sr = cost.acc_storage_cost(1.0, 64, "sram")
    assert a_rf == pytest.approx(8192 * (4.522 + 1.862))                  # NanGate DFF_X1 + MUX2_X1 per bit
    assert a_sr == pytest.approx(8192 * 0.346 / 0.5)                      # Intel 45 nm cell / array efficiency
    assert e_rf == pytest.approx((4.522 + 1.862) * 0.03 / 36)
    assert a_rf > a_sr and e_rf < e_sr                                    # flip-flops: bigger, cheaper to touch
    d = cost.LUTDesign(LUTDLAConfig(), acc_buffer_kb=2.0, acc_storage="regfile")
    assert cost.lut_area(d, 64)["sram_accumulator"] == pytest.approx(cost.regfile_area_um2(2.0) / 1e6)
    with pytest.raises(ValueError, match=r"LUTDesign\.acc_storage='dram'"):
        cost.LUTDesign(acc_storage="dram")
