import pytest

pytestmark = pytest.mark.notebook


def test_notebook_00_overview(run_notebook):
    res = run_notebook("00_overview")
    assert res["engine_bit_identical"] is True
    assert res["engine_test_acc"] == pytest.approx(res["lut_int8_test_acc"], abs=1e-6)  # same predictions
    assert res["fp32_test_acc"] > 97.0
    assert res["lut_int8_test_acc"] > 90.0  # SMOKE-length LUTBoost; notebook 02 holds the real bar
    assert res["lut_layers"] == 3 and res["table_bytes"] > 0
    assert res["lut_cycles"] > 0 and res["dense_ws32_cycles"] > 0
    # one source of truth: the DSE point is the simulated design on the exported model's layers
    assert res["one_source_of_truth"] is True
    assert res["dse_cycles"] == res["lut_cycles"] and res["dse_table_bytes"] == res["table_bytes"]
    assert res["tops_per_w"] > 0 and res["power_eff_ratio_vs_int8"] > 0
    assert [s["stage"] for s in res["stages"]] == ["calibrate", "centroids", "joint", "lut_qat"]
    assert {"fig03_framework_overview.png", "fig03_framework_overview.pdf"} <= set(res["_figures"])
    # one name, one link, and the LUTBoost state that was kept
    assert res["design_name"] == "package default"
    assert res["dense_ws32_offchip_bytes_per_cycle"] == res["offchip_bytes_per_cycle"]
    assert res["lut_over_dense_cycles"] == pytest.approx(res["lut_cycles"] / res["dense_ws32_cycles"])
    names = [s["stage"] for s in res["stages"]]
    assert res["selected_stage"] in names and res["selected_stage"] not in res["rolled_back_stages"]
    assert set(res["rolled_back_stages"]) <= set(names)
    assert res["kmeans_test_acc"] == pytest.approx(res["stages"][0]["test_acc_int8"])
    assert res["gain_over_kmeans_pt"] == pytest.approx(res["lut_int8_test_acc"] - res["kmeans_test_acc"])
    assert res["balanced_cycles"] > 0 and res["balanced_tops_per_w_core"] > 0


def test_notebook_07_interactive_explorer(run_notebook, tmp_path):
    from conftest import seed_proxy_results

    seed_proxy_results(tmp_path / "results")  # the explorer reads proxy records (as notebook 01 writes)
    res = run_notebook("07_interactive_explorer")
    pts = {(p["v"], p["c"]): p for p in res["points"]}
    assert pts[(4, 16)]["bits_per_activation"] == pytest.approx(1.0)
    assert pts[(8, 16)]["bits_per_activation"] == pytest.approx(0.5)
    assert pts[(4, 64)]["table_bytes"] == pytest.approx(4 * pts[(4, 16)]["table_bytes"])
    assert pts[(2, 16)]["table_bytes"] > pts[(4, 16)]["table_bytes"] > pts[(8, 16)]["table_bytes"]
    assert all(p["cycles"] > 0 and p["area_mm2"] > 0 for p in res["points"])
    assert all(p["tops_per_w_core"] > p["tops_per_w"] > 0 for p in res["points"])       # core and system shown
    assert all(p["power_eff_ratio_core"] > 0 and p["power_eff_ratio"] > 0 for p in res["points"])
    assert res["explorer_calls"] >= 1
