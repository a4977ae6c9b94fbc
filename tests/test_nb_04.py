"""Notebook 04 runs in SMOKE mode and its numbers hold."""
import pytest


@pytest.mark.notebook
def test_nb_04_simulate_accelerator(run_notebook):
    res = run_notebook("04_simulate_accelerator")
    assert res["engines_agree"] is True and res["functional_exact"] is True
    assert res["golden_ws_cycles"] == 11199 and res["golden_ws_total_cycles_with_link"] >= 11199
    assert res["stall_causes_sum_ok"] is True
    assert res["digits_layers"] >= 3 and res["resnet18_layers"] == 21
    assert 1_000 < res["digits_cycles"] < 1_000_000
    assert 10_000 < res["resnet18_cycles"] < 50_000_000
    assert 0.01 < res["resnet18_utilization"] <= 1.0
    assert 0.0 <= res["resnet18_imm_idle_share"] < 1.0 and res["resnet18_stall_cycles"] > 0
    assert res["double_buffer_speedup"] > 1.5
    assert res["ls_table_reloads"] == 0 and res["os_table_reloads"] > 0
    for stem in ("fig04_block_diagram", "fig06_dataflow_loop_orders", "fig07_table_swap_timeline",
                 "fig14b_layer_latency_breakdown"):
        assert f"{stem}.png" in res["_figures"] and f"{stem}.pdf" in res["_figures"]
    assert res["balanced_utilization_224"] >= 0.5 > res["default_utilization_224"]     # the DSE's balance criterion
    assert res["fig06_layer"][2] > 64 and res["fig06_index_reuse_saving"] >= 2         # N > Tn: index reuse shows
    assert res["resnet18_utilization"] < res["balanced_resnet18_utilization"]
    # one link for the dense baseline and LUT-DLA; the digits panel holds only the converted layers
    assert res["dense_offchip_bytes_per_cycle"] == res["lut_offchip_bytes_per_cycle"]
    assert "conv1" not in res["digits_lut_layers"] and len(res["digits_lut_layers"]) == res["digits_layers"] - 1
    assert res["fig04_metric"] == "l1" and res["fig04_acc_bits"] < 32
