import pytest

pytestmark = pytest.mark.notebook


def test_notebook_01_vector_quantization(run_notebook):
    res = run_notebook("01_vector_quantization")
    assert res["fp32_test_acc"] > 97.0
    assert res["equivalent_bits_v4_c16"] == 1.0
    s = res["scalar_rel_error"]
    # scalar quantization error grows as bits shrink
    assert s["INT8"] < s["INT4"] < s["INT2"] < s["INT1"]
    # the headline of figure 1: VQ at 1 bit/activation beats scalar INT1 for every metric
    assert set(res["vq_rel_error_1bit"]) == {"l2", "l1", "chebyshev"}
    for metric, err in res["vq_rel_error_1bit"].items():
        assert err < s["INT1"], metric
    # more centroids at fixed v never hurts much (k-means is noisy, allow 10 %)
    sweep = [r for r in res["vq_sweep"] if r["method"] == "VQ" and r["metric"] == "l2" and r["v"] == 4]
    errs = [r["rel_error"] for r in sorted(sweep, key=lambda r: r["c"])]
    assert errs[-1] < errs[0]
    # k-means-only conversion keeps the model useful but below fp32 (what LUTBoost fixes)
    for metric, acc in res["no_training_int8_acc"].items():
        assert 50.0 < acc <= 100.0, metric
    assert {"fig01_scalar_vs_vector_quantization.png", "fig01_scalar_vs_vector_quantization.pdf",
            "fig02_lut_gemm.png", "fig02_lut_gemm.pdf"} <= set(res["_figures"])
    # the LUT GEMM from scratch (numpy): the look-up is exact on the quantized rows, the error is quantization's
    assert res["scratch_lookup_exact"] is True
    assert 0.0 < res["scratch_rel_error"] < 1.0
    assert 0.0 < res["example_rel_error"] < 1.0
    ops = res["scratch_op_counts"]
    assert (ops["distance_ops"], ops["lookup_adds"], ops["dense_macs"]) == (6 * 4 * 4 * 2, 6 * 4 * 3, 6 * 8 * 3)
    assert res["table_cost_v4_c16"]["ratio"] == 4.0
