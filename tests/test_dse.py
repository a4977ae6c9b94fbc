"""lutnb.codesign.dse: analytic model vs the simulator, sweeps, pruning, Pareto, cache, Dask == local."""
import random
import shutil

import numpy as np
import pandas as pd
import pytest

from lutnb.codesign import cost, dse
from lutnb.codesign.workloads import encoder_workload, get_workload
from lutnb.hw import simulate_network

# DSE caches stay out of the real results/ folder; toy proxy records stand in for notebook 01's
pytestmark = pytest.mark.usefixtures("seeded_results")

SMALL = {"v": (2, 4), "c": (8, 16), "metric": ("l1", "l2"), "table_bits": (8,), "ccus": (4, 16),
         "lanes": (8, 16), "table_tile": (32, 64), "acc_buffer_kb": (16,), "clock_mhz": (500,)}


def test_workloads_zoo():
    bert = get_workload("bert_base")
    assert bert.macs == 12 * 128 * (4 * 768 * 768 + 2 * 768 * 3072) + 12 * 12 * 2 * 128 * 128 * 64
    assert sum(r for (_, r) in bert.dense_layers) == 12 * 12 * 2
    mini = encoder_workload("minilm", seq_len=16)
    assert [w.K for w, _ in mini.dense_layers] == [32, 16]
    r18 = get_workload("resnet18")
    assert sum(r18.repeats) == 21 and r18.macs == 1814073344
    assert len(get_workload("digits_cnn").expanded()) == 4
    with pytest.raises(ValueError):
        get_workload("vgg99")


def _sim_totals(wl, params):
    design = dse.design_from_params(params, wl)
    return simulate_network(wl.expanded(), design.sim_config())[1], design


def test_analytic_matches_simulator():
    """Access counts exact; cycles within 3% per network on 40 random configs (median < 0.5%)."""
    rng = random.Random(0)
    wls = [get_workload("digits_cnn"), get_workload("resnet20"), encoder_workload("minilm", seq_len=16)]
    errs = []
    for i in range(40):
        params = {"v": rng.choice([2, 4, 8]), "c": rng.choice([8, 16, 32]), "ccus": rng.choice([4, 8, 16, 32]),
                  "lanes": rng.choice([4, 8, 16, 32]), "table_tile": rng.choice([16, 32, 64]),
                  "table_bits": rng.choice([4, 8]), "offchip_bytes_per_cycle": rng.choice([4, 8, 32]),
                  "acc_buffer_kb": rng.choice([4, 16, 64]), "table_buffer_kb": 32,
                  "double_buffer": rng.random() < 0.8, "metric": "l1"}
        wl = wls[i % len(wls)]
        sim, design = _sim_totals(wl, params)
        pts = pd.DataFrame([{"point": 0, **params}])
        row = dse.evaluate_points(pts, wl).iloc[0]
        s, _ = dse.evaluate_design(design, wl, engine="analytic")
        assert row["cycles"] == pytest.approx(s["cycles"])
        assert row["energy_pj"] == pytest.approx(s["energy_pj"]) and row["area_mm2"] == pytest.approx(s["area_mm2"])
        arr = {**{k: getattr(design.sim_config(), k) for k in dse.LUT_FIELDS},
               "bank_extra": dse.expected_bank_extra(params["lanes"], params["c"], 16)}
        ana = dse.analytic_lut_totals(wl, arr)
        for k in ("distance_ops", "lookup_adds", "lookups", "sram_bytes", "dram_bytes",
                  *(f"sram_{o}_bytes" for o in cost.LUT_OPERAND_BUFFER)):
            assert float(ana[k]) == sim[k], k
        errs.append(abs(float(ana["total_cycles"]) / sim["total_cycles"] - 1))
    assert max(errs) < 0.03 and np.median(errs) < 0.005


def test_exact_engine_and_baselines():
    wl = get_workload("digits_cnn")
    d = dse.design_from_params({"v": 4, "c": 16, "metric": "l2"})
    s_sim, bd = dse.evaluate_design(d, wl, engine="simulate")
    s_ana, _ = dse.evaluate_design(d, wl, engine="analytic")
    assert s_sim["area_mm2"] == pytest.approx(s_ana["area_mm2"])
    assert s_sim["cycles"] == pytest.approx(s_ana["cycles"], rel=0.03)
    assert bd["energy_pj"].sum() == pytest.approx(s_sim["energy_pj"])
    b = dse.matched_baseline(wl, "int8", s_sim["area_mm2"], "area")
    assert 0.8 < b["area_mm2"] / s_sim["area_mm2"] < 1.25
    cmp = dse.compare_with_baselines({"p": s_sim}, wl, modes=("area", "throughput"))
    assert len(cmp) == 6 and set(cmp["baseline"]) == {"int8", "int4", "fp16"}
    r = dse.ratio_range(cmp, "power_eff_ratio")
    assert r["min"] <= r["max"] and "vs" in r["min_from"]


def test_grid_random_and_pruning():
    g = dse.grid_points(SMALL)
    assert len(g) == 2 ** 6 and list(g["point"]) == list(range(len(g)))
    assert g.equals(dse.grid_points(SMALL))
    r1, r2 = dse.random_points(50, SMALL, seed=3), dse.random_points(50, SMALL, seed=3)
    assert r1.equals(r2) and not r1.equals(dse.random_points(50, SMALL, seed=4))
    pts = g.copy()
    pts.loc[0, "table_tile"] = 4096                     # table buffer too small -> config error
    wl = get_workload("digits_cnn")
    df = dse.evaluate_points(pts, wl)
    assert df.loc[0, "reason"].startswith("config: LUTDLAConfig.table_buffer_bytes")
    assert not df.loc[0, "feasible"] and df["feasible"].sum() == len(df) - 1
    med = df["area_mm2"].median()
    cons = dse.Constraints(max_area_mm2=med, max_sram_kb=1e9, min_accuracy=0.7)
    df2 = dse.evaluate_points(pts, wl, cons)
    assert df2["reason"].str.startswith("area").sum() > 0
    assert df2["reason"].str.startswith("accuracy").sum() > 0
    assert (df2["area_mm2"][df2["feasible"]] <= med).all() and (df2["accuracy"][df2["feasible"]] >= 0.7).all()
    df3 = dse.evaluate_points(pts, wl, dse.Constraints(max_power_w=df["power_w"].median()))
    assert df3["reason"].str.startswith("power").sum() > 0
    df4 = dse.evaluate_points(pts, wl, dse.Constraints(max_sram_kb=df["sram_kb"].median()))
    assert df4["reason"].str.startswith("SRAM budget").sum() > 0
    assert (df["accuracy_source"] == dse.PROXY_SOURCE).all()


def test_pareto_matches_brute_force():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"point": range(300), "accuracy": rng.integers(0, 20, 300) / 20,
                       "tops_per_w": rng.random(300), "feasible": True})
    m = dse.pareto_mask(df)
    v = df[["accuracy", "tops_per_w"]].to_numpy()
    brute = [not any((v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(v))) for i in range(len(v))]
    assert list(m) == brute
    front = dse.pareto_front(df)
    assert front["accuracy"].is_monotonic_decreasing and front["tops_per_w"].is_monotonic_increasing


def test_sweep_cache_and_local_parallel(tmp_path):
    pts = dse.grid_points(SMALL)
    a = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=tmp_path, chunk_size=64)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    b = dse.run_sweep(pts, "digits_cnn", n_jobs=2, cache_dir=False, chunk_size=64)
    pd.testing.assert_frame_equal(a, b)
    c = dse.run_sweep(pts, "digits_cnn", cache_dir=tmp_path)           # from the cache
    pd.testing.assert_frame_equal(a, c)
    dse.run_sweep(pts.iloc[:10], "digits_cnn", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_dask_sweep_equals_local():
    distributed = pytest.importorskip("dask.distributed")
    pts = dse.random_points(300, SMALL, seed=1)
    local = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=False, chunk_size=50)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = dse.run_sweep(pts, "digits_cnn", address=cluster.scheduler_address, cache_dir=False,
                               chunk_size=50)
    pd.testing.assert_frame_equal(local, remote)


def test_stored_accuracy_is_read(tmp_path, seeded_results):
    from lutnb.codesign.accuracy import RECORDS_SUBDIR, AccuracyRecord
    from lutnb.experiments.accuracy import write_accuracy_records

    proxies = seeded_results / RECORDS_SUBDIR / "01_vector_quantization.json"
    (tmp_path / "stored").mkdir()
    (tmp_path / "none").mkdir()
    for d in ("stored", "none"):
        shutil.copy(proxies, tmp_path / d)

    recs = [AccuracyRecord("digits_cnn", "l1", 4, 16, 0.985, "lutboost", seed=0),
            AccuracyRecord("digits_cnn", "l1", 4, 16, 0.995, "lutboost", seed=1),
            AccuracyRecord("resnet20", "l2", 4, 16, 0.9, "lutboost", seed=0)]
    write_accuracy_records("02_lutboost", recs, tmp_path / "stored")
    t = dse.accuracy_table("digits_cnn", tmp_path / "stored")
    row = t[(t.metric == "l1") & (t.v == 4) & (t.c == 16)].iloc[0]
    assert row["accuracy"] == pytest.approx(0.99) and row["accuracy_source"] == "stored: lutboost"
    assert (t["accuracy_source"] == dse.PROXY_SOURCE).sum() == len(t) - 1
    empty = dse.accuracy_table("digits_cnn", tmp_path / "none")
    assert (empty["accuracy_source"] == dse.PROXY_SOURCE).all()


def test_proxy_table_entry_recomputes():
    t = dse.proxy_accuracy_table(recompute=True, vs=(4, 8), cs=(16,), metrics=("l2",), max_rows=1000)
    acc = dict(zip(t["v"], t["accuracy"]))
    assert 0.0 < acc[8] < acc[4] < 1.0  # a longer sub-vector at the same c loses more
    assert (t["accuracy_source"] == dse.PROXY_SOURCE).all()


def test_explore_point():
    out = dse.explore_point(v=4, c=16, metric="l1", workload="digits_cnn")
    assert out["bits_per_activation"] == 1.0 and out["table_bytes"] > 0
    assert out["area_mm2"] > 0 and out["power_eff_ratio"] > 0 and out["accuracy_source"]
    assert "error" in dse.explore_point(table_tile=4096, buffer_kb=1)


def test_balanced_default_is_the_dse_choice_and_busy():
    """BALANCED_DESIGN is what choose_balanced_design picks; the exact simulator agrees it is >= 50 % busy on
    ResNet-18 at 224x224; both accountings are reported against every baseline."""
    from lutnb.codesign import balanced

    assert balanced.choose_balanced_design("resnet18") == balanced.BALANCED_DESIGN
    wl = get_workload("resnet18")
    d = balanced.balanced_design(wl)
    _, tot = simulate_network(wl.expanded(), d.sim_config())
    assert tot["utilization"] >= 0.5 and tot["total_cycles"] >= tot["link_cycles"]
    assert d.cfg.acc_bits == cost.required_acc_bits(8, 512 * 9 // 4) == 19    # 8 + ceil(log2 1152)
    s, _ = dse.evaluate_design(d, wl, engine="simulate")
    cmp = dse.compare_with_baselines({"balanced": s}, wl)
    assert len(cmp) == 6
    for col in ("power_eff_ratio_core", "power_eff_ratio_system", "area_eff_ratio"):
        assert (cmp[col] > 0).all()
    assert (cmp["power_eff_ratio_core"] > cmp["power_eff_ratio_system"]).all()   # DRAM narrows the gap


def test_explore_point_on_a_converted_models_workload_equals_the_simulator():
    """Notebook 00's one source of truth: a point built from a model's own LUT layers, engine="simulate", has the
    cycles of simulating explore_design's config on those layers, and the table bytes of those layers."""
    from lutnb import hw
    from lutnb.codesign.analytic import table_bytes
    from lutnb.codesign.workloads import get_workload, merge_repeats

    layers = [w for w in get_workload("digits_cnn").layers if w.name != "conv1"]   # conv1 stays float
    net = merge_repeats("digits_cnn", layers)
    point = dse.explore_point(v=4, c=16, metric="l1", workload=net, engine="simulate")
    _, tot = hw.simulate_network(net.expanded(), dse.explore_design(v=4, c=16, metric="l1", workload=net).sim_config())
    assert point["cycles"] == tot["total_cycles"]
    assert point["table_bytes"] == table_bytes(net, 4, 16, 8)
    assert point["table_bytes"] < dse.explore_point(v=4, c=16, metric="l1", workload="digits_cnn")["table_bytes"]
