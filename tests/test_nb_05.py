"""Notebook 05 runs in SMOKE mode and its numbers hold."""
import pytest


@pytest.mark.notebook
def test_nb_05_design_space_exploration(run_notebook):
    res = run_notebook("05_design_space_exploration")
    assert res["smoke"] is True and res["n_points"] >= 1000
    assert res["constants_all_sourced"] is True and res["n_constants"] >= 20
    assert res["accuracy_sources"]
    assert 0.2 < res["pe_area_l1_over_l2"] < 0.8 and 0.2 < res["pe_area_chebyshev_over_l2"] < 0.8
    assert res["ccm_area_increases_with_c"] is True
    assert res["analytic_vs_exact_max_dev"] < 0.03
    assert set(res["ofat_factors"]) >= {"ccus", "lanes", "table_tile", "adder_fanin"}
    for name in ("resnet18", "bert_base"):
        assert 0 < res["feasible"][name] < res["n_points"]
        assert res["pareto_sizes"][f"{name}_tops_per_w"] >= 1
        # the 18 ratios split into points with a stored accuracy (compared with the paper) and proxy-only points
        measured, proxy = res["ratios"][name], res["ratios_proxy_only"][name]
        assert measured["n_ratios"] + proxy["n_ratios"] == 18
        assert not set(measured["points"]) & set(proxy["points"])
        if not measured["n_ratios"]:
            assert measured["power_eff_ratio_core_max"] is None   # no range is given where nothing was measured
        r = measured if measured["n_ratios"] else proxy
        for acc in ("core", "system"):
            lo, hi = r[f"power_eff_ratio_{acc}_min"], r[f"power_eff_ratio_{acc}_max"]
            assert 0.05 < lo <= hi < 50
        assert r["power_eff_ratio_core_max"] > r["power_eff_ratio_system_max"]        # DRAM narrows every gap
        assert 0.05 < r["area_eff_ratio_min"] <= r["area_eff_ratio_max"] < 200
        assert r["power_eff_ratio_core_vs_fp16_max"] > r["power_eff_ratio_core_vs_int4_max"]   # FP16 is weakest
        # both accountings for every compared design: 3 LUT-DLA points + 18 matched baselines
        rows = res["accountings"][name]
        assert len(rows) == 3 + 18
        assert all(x["tops_per_w_core"] > x["tops_per_w_system"] > 0 for x in rows)
    overlap = res["paper_range_overlap_resnet18_balanced"]
    assert overlap["n"] == 6 and 0 <= overlap["core"] <= 6 and 0 <= overlap["system"] <= 6
    assert res["table_bytes_over_weights"] == {"int8_weights": 4.0, "int4_weights": 8.0}
    table = res["efficiency_table"]
    assert {(t["baseline"], t["matched_by"]) for t in table} == {(b, m) for b in ("int8", "int4", "fp16")
                                                               for m in ("area", "throughput")}
    assert len(res["cost_validation"]) == 2
    for chip in res["cost_validation"]:
        assert 0.1 < chip["tops_per_w_ratio"] < 10 and 0.01 < chip["area_ratio"] < 10
    assert len(res["design_points"]) == 6 and len(res["accelerators"]) == 12
    assert {"area", "power", "SRAM", "accuracy", "config:"} & set(res["pruned_reasons"]["resnet18"])
    for stem in ("fig05_distance_pe_cost", "fig11_hardware_cost", "fig12_pareto_fronts",
                 "fig13_baseline_comparison", "fig14_area_power_breakdown"):
        assert f"{stem}.png" in res["_figures"] and f"{stem}.pdf" in res["_figures"]
