"""Notebooks 02 (LUTBoost) and 03 (accuracy vs bits) run in SMOKE mode and produce sane numbers."""
import pytest
from conftest import assert_reproducible

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_nb02_lutboost(run_notebook):
    res = run_notebook("02_lutboost")
    assert_reproducible(run_notebook, "02_lutboost", res)  # determinism: the same seed gives the same JSON
    assert res["smoke"] is True
    assert {"fig08_lutboost_stages.png", "fig09_lutboost_vs_single_stage.png"} <= set(res["_figures"])
    # how centroids get gradients: none from the task loss under "exact", some under "hard" and "soft"
    g = res["centroid_grad_norms"]
    assert g["exact"]["task"] == 0.0 and g["exact"]["recon"] > 0.0
    assert g["hard"]["task"] > 0.0 and g["soft"]["task"] > 0.0
    run = res["detailed_run"]
    assert [s["stage"] for s in run["stages"]] == ["calibrate", "centroids", "joint", "lut_qat"]
    assert run["fp32_test_acc"] > 97.0
    # k-means alone keeps the digits CNN above 95 % at 1 bit; the stages must not break it
    assert run["stages"][0]["test_acc_int8"] > 95.0
    assert run["final_acc"] > 96.0 and run["fp32_test_acc"] - run["final_acc"] < 3.0
    for s in run["stages"]:
        for layer in s["layers"].values():
            assert 0.0 <= layer["recon_rel"] < 0.5
            assert 2.0 < layer["entropy_bits"] <= 4.0
    methods = {r["method"] for r in res["records"]}
    assert methods == {"lutboost", "single_stage"}
    for r in res["records"]:
        assert r["lut_acc"] > 95.0 and r["bits"] == 1.0
    lb = [r for r in res["records"] if r["method"] == "lutboost"]
    ss = [r for r in res["records"] if r["method"] == "single_stage"]
    assert lb[0]["epochs"] == ss[0]["epochs"]  # equal-epoch comparison
    assert res["cells"] == len(res["summary"]) // 2
    # paired per-seed differences LUTBoost - single-stage, one row per (model, metric), recomputed from the records
    acc = {(r["model"], r["metric"], r["seed"], r["method"]): r["lut_acc"] for r in res["records"]}
    assert len(res["paired_diff"]) == res["cells"]
    for p in res["paired_diff"]:
        diffs = [acc[(p["model"], p["metric"], s, "lutboost")] - acc[(p["model"], p["metric"], s, "single_stage")]
                 for s in res["seeds"]]
        assert p["n_seeds"] == len(diffs) and abs(p["mean_diff"] - sum(diffs) / len(diffs)) < 1e-9
        assert p["detectable"] is False  # SMOKE: one seed, no interval, never called detectable
    assert res["paired_detectable"] == sum(p["detectable"] for p in res["paired_diff"])
    kept = res["selected_stage_counts"]  # guard-kept states counted per method, not mixed
    assert set(kept) == {"lutboost", "single_stage"}
    assert sum(kept["lutboost"].values()) == len(lb) and sum(kept["single_stage"].values()) == len(ss)


def test_nb03_accuracy_vs_bits(run_notebook):
    res = run_notebook("03_accuracy_vs_bits")
    assert_reproducible(run_notebook, "03_accuracy_vs_bits", res)  # determinism: the same seed gives the same JSON
    assert "fig10_accuracy_vs_bits.png" in res["_figures"]
    recs = res["records"]
    assert len(recs) == 3 * 3  # 3 metrics x 3 (v, c)
    assert {"model", "metric", "v", "c", "bits", "seed", "fp32_acc", "lut_acc"} <= set(recs[0])
    by = {(r["metric"], r["v"]): r["lut_acc"] for r in recs}
    for metric in ("l2", "l1", "chebyshev"):
        assert by[(metric, 2)] > 97.0  # 2 bits: k-means alone is nearly lossless on digits
        assert by[(metric, 4)] > 93.0  # 1 bit
        assert by[(metric, 8)] > 40.0  # 0.5 bit without training: far above chance (10 %)
        assert by[(metric, 2)] >= by[(metric, 8)] - 1.0  # more bits never much worse
    # steps to more bits: the metric-averaged gain of each step, from the records (one seed in SMOKE)
    mean_at = {b: sum(r["lut_acc"] for r in recs if r["bits"] == b) / 3 for b in (0.5, 1.0, 2.0)}
    steps = res["bit_steps"]
    assert [(s["from_bits"], s["to_bits"]) for s in steps] == [(0.5, 1.0), (1.0, 2.0)]
    for s in steps:
        assert abs(s["mean_gain"] - (mean_at[s["to_bits"]] - mean_at[s["from_bits"]])) < 1e-9
