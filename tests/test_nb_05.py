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
    for name in ("resnet18", "bert_base"):
        assert 0 < res["feasible"][name] < res["n_points"]
        assert res["pareto_sizes"][f"{name}_tops_per_w"] >= 1
        r = res["ratios"][name]
        assert r["n_ratios"] == 18
        assert 0.1 < r["power_eff_ratio_min"] <= r["power_eff_ratio_max"] < 10
        assert 0.1 < r["area_eff_ratio_min"] <= r["area_eff_ratio_max"] < 200
        assert r["power_eff_ratio_vs_fp16_max"] > r["power_eff_ratio_vs_int4_max"]   # FP16 is the weakest
        assert "vs" in r["power_eff_ratio_min_from"] and "vs" in r["area_eff_ratio_max_from"]
    assert len(res["design_points"]) == 6 and len(res["accelerators"]) == 12
    assert {"area", "power", "SRAM", "accuracy", "config:"} & set(res["pruned_reasons"]["resnet18"])
    for stem in ("fig05_distance_pe_cost", "fig11_hardware_cost", "fig12_pareto_fronts",
                 "fig13_baseline_comparison", "fig14_area_power_breakdown"):
        assert f"{stem}.png" in res["_figures"] and f"{stem}.pdf" in res["_figures"]
