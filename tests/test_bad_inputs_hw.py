"""Bad inputs to lutnb.hw and lutnb.codesign: each gives a clear error naming the problem (issue 17).

One parametrized case per bad input, each asserting the error type and the words that name the problem;
plus the valid-but-unusual inputs that must work (an empty network, numpy scalars in a config, a config's
acc_bits followed by the functional model) and the DSE cache's safe format (equal to a fresh computation,
planted or damaged files refused, never unpickled).
"""
import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from lutnb.codesign import cost, dse
from lutnb.deploy import engine
from lutnb.deploy.export import random_layer
from lutnb.hw import (
    GemmWorkload,
    LUTDLAConfig,
    SystolicConfig,
    extract_workloads,
    loop_order_traffic,
    read_scalesim_topology,
    simulate_dense_layer,
    simulate_dense_network,
    simulate_layer,
    simulate_layer_functional,
    simulate_network,
    table_swap_timeline,
)
from lutnb.hw.config import ConfigTypeError
from lutnb.hw.dense import DENSE_RECORD_FIELDS
from lutnb.hw.lut_sim import RECORD_FIELDS

# DSE caches stay out of the real results/ folder; toy proxy records stand in for notebook 01's
pytestmark = pytest.mark.usefixtures("seeded_results")

TINY = {"v": (2, 4), "c": (8, 16), "metric": ("l1",), "table_bits": (8,), "ccus": (4,), "lanes": (8,),
        "table_tile": (32,), "acc_buffer_kb": (16,)}
W = GemmWorkload("fc", M=8, K=12, N=10)


# ------------------------------------------------------------------------------------ configs
CONFIG_CASES = [
    # (class, kwargs, error type, words that name the problem)
    (LUTDLAConfig, {"offchip_bytes_per_cycle": "16"}, TypeError, r"LUTDLAConfig\.offchip_bytes_per_cycle='16'.*number"),
    (LUTDLAConfig, {"clock_mhz": "500"}, TypeError, r"LUTDLAConfig\.clock_mhz='500'.*number"),
    (LUTDLAConfig, {"double_buffer": 1}, TypeError, r"LUTDLAConfig\.double_buffer=1.*True or False"),
    (LUTDLAConfig, {"double_buffer": "yes"}, TypeError, r"double_buffer='yes'.*True or False"),
    (LUTDLAConfig, {"ccus": True}, TypeError, r"LUTDLAConfig\.ccus=True.*integer.*not bool"),
    (LUTDLAConfig, {"v": 4.0}, TypeError, r"LUTDLAConfig\.v=4\.0.*integer.*use 4"),
    (LUTDLAConfig, {"c": 16.5}, TypeError, r"LUTDLAConfig\.c=16\.5.*integer"),
    (LUTDLAConfig, {"table_bits": 8.0}, TypeError, r"LUTDLAConfig\.table_bits=8\.0.*integer"),
    (LUTDLAConfig, {"sram_banks": None}, TypeError, r"LUTDLAConfig\.sram_banks=None.*integer"),
    (LUTDLAConfig, {"table_bits": 4, "acc_bits": 6}, ValueError, r"LUTDLAConfig\.acc_bits=6.*from 8 to 64"),
    (LUTDLAConfig, {"acc_bits": 65}, ValueError, r"LUTDLAConfig\.acc_bits=65.*from 8 to 64"),
    (LUTDLAConfig, {"table_bits": 12, "acc_bits": 10}, ValueError, r"acc_bits=10.*from 12 to 64"),
    (LUTDLAConfig, {"metric": 2}, TypeError, r"LUTDLAConfig\.metric=2.*string"),
    (LUTDLAConfig, {"metric": "L2"}, ValueError, r"LUTDLAConfig\.metric='L2'.*unknown distance metric.*'l2'"),
    (LUTDLAConfig, {"clock_mhz": math.inf}, ValueError, r"LUTDLAConfig\.clock_mhz=inf.*finite"),
    (LUTDLAConfig, {"offchip_bytes_per_cycle": math.nan}, ValueError, r"offchip_bytes_per_cycle=nan.*finite"),
    (LUTDLAConfig, {"m_tile": 0}, ValueError, r"LUTDLAConfig\.m_tile=0.*positive integer.*None"),
    (LUTDLAConfig, {"m_tile": 2.5}, TypeError, r"LUTDLAConfig\.m_tile=2\.5.*integer"),
    (LUTDLAConfig, {"c": 1}, ValueError, r"LUTDLAConfig\.c=1.*>= 2"),
    (SystolicConfig, {"rows": "32"}, TypeError, r"SystolicConfig\.rows='32'.*integer"),
    (SystolicConfig, {"dataflow": 1}, TypeError, r"SystolicConfig\.dataflow=1.*string"),
    (SystolicConfig, {"clock_mhz": True}, TypeError, r"SystolicConfig\.clock_mhz=True.*number"),
    (SystolicConfig, {"word_bytes": 0.5}, TypeError, r"SystolicConfig\.word_bytes=0\.5.*integer"),
    (SystolicConfig, {"offchip_bytes_per_cycle": -1}, ValueError, r"SystolicConfig\.offchip_bytes_per_cycle=-1"),
]


@pytest.mark.parametrize("cls, kw, err, words", CONFIG_CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k))}" for c, k, *_ in CONFIG_CASES])
def test_config_rejects(cls, kw, err, words):
    with pytest.raises(err, match=words):
        cls(**kw)


def test_config_type_errors_are_value_errors_too():
    """ConfigTypeError is both, so code that caught ValueError from a config (the DSE) keeps working."""
    with pytest.raises(ValueError):
        LUTDLAConfig(v=4.0)
    assert issubclass(ConfigTypeError, TypeError) and issubclass(ConfigTypeError, ValueError)


def test_config_accepts_numpy_scalars_as_python_numbers():
    cfg = LUTDLAConfig(v=np.int64(4), c=np.int32(16), clock_mhz=np.float64(500.0), double_buffer=np.bool_(True))
    assert cfg == LUTDLAConfig(clock_mhz=500.0)
    assert type(cfg.v) is int and type(cfg.clock_mhz) is float and type(cfg.double_buffer) is bool
    assert LUTDLAConfig(clock_mhz=500).clock_mhz == 500 and LUTDLAConfig(acc_bits=8, table_bits=8).acc_bits == 8


# ------------------------------------------------------------------------------------ simulators
SIM_CASES = [
    ("network-of-one-workload", lambda: simulate_network(W), TypeError, r"list of GemmWorkload.*wrap"),
    ("network-of-str", lambda: simulate_network(["fc"]), TypeError, r"workload 'fc'.*GemmWorkload"),
    ("network-engine", lambda: simulate_network([W], engine="slow"), ValueError, r"engine='slow'.*fast"),
    ("network-empty-engine", lambda: simulate_network([], engine="slow"), ValueError, r"engine='slow'"),
    ("network-systolic-cfg", lambda: simulate_network([W], SystolicConfig()), TypeError, r"must be a LUTDLAConfig"),
    ("layer-seed-str", lambda: simulate_layer(W, seed="0"), TypeError, r"seed='0'.*integer"),
    ("layer-negative-indices", lambda: simulate_layer(W, LUTDLAConfig(sram_banks=4), indices=np.full((8, 3), -1)),
     ValueError, r"indices span \[-1, -1\].*\[0, c=16\)"),
    ("layer-index-too-big", lambda: simulate_layer(W, LUTDLAConfig(sram_banks=4), indices=np.full((8, 3), 16)),
     ValueError, r"indices span.*\[0, c=16\)"),
    ("layer-float-indices", lambda: simulate_layer(W, LUTDLAConfig(sram_banks=4), indices=np.zeros((8, 3))),
     TypeError, r"indices dtype float64.*integer"),
    ("dense-network-of-one", lambda: simulate_dense_network(W, SystolicConfig()), TypeError,
     r"list of GemmWorkload"),
    ("dense-layer-lut-cfg", lambda: simulate_dense_layer(W, LUTDLAConfig()), TypeError, r"must be a SystolicConfig"),
    ("dense-layer-tuple", lambda: simulate_dense_layer((8, 12, 10), SystolicConfig()), TypeError,
     r"must be a GemmWorkload"),
]


@pytest.mark.parametrize("call, err, words", [c[1:] for c in SIM_CASES], ids=[c[0] for c in SIM_CASES])
def test_simulator_rejects(call, err, words):
    with pytest.raises(err, match=words):
        call()


WORKLOAD_CASES = [
    ("gemm-bool", lambda: GemmWorkload("fc", M=True, K=4, N=4), ValueError, r"GemmWorkload\.M=True.*integer >= 1"),
    ("gemm-float", lambda: GemmWorkload("fc", M=8, K=4.0, N=4), ValueError, r"GemmWorkload\.K=4\.0.*integer"),
    ("gemm-name", lambda: GemmWorkload(3, M=8, K=4, N=4), TypeError, r"GemmWorkload\.name=3.*string"),
    ("extract-not-module", lambda: extract_workloads("resnet", (1, 3, 8, 8)), TypeError, r"torch\.nn\.Module"),
    ("extract-zero-shape", lambda: extract_workloads(torch.nn.Linear(4, 2), (0, 4)), ValueError,
     r"example_input shape \(0, 4\).*>= 1"),
    ("loop-order-row-tile", lambda: loop_order_traffic(W, LUTDLAConfig(), row_tile=0), ValueError, r"row_tile=0"),
    ("timeline-swapped", lambda: table_swap_timeline(LUTDLAConfig(), W), TypeError, r"work must be a GemmWorkload"),
]


@pytest.mark.parametrize("call, err, words", [c[1:] for c in WORKLOAD_CASES], ids=[c[0] for c in WORKLOAD_CASES])
def test_workload_inputs_rejected(call, err, words):
    with pytest.raises(err, match=words):
        call()


TOPOLOGY_CASES = [
    ("empty", "", None, r"empty file"),
    ("short-row", "Layer, M, N, K,\nfc, 8, 4,\n", None, r"layer line 2: 3 cells, expected 4"),
    ("not-integer", "Layer, M, N, K,\nfc, 8, four, 4,\n", None, r"layer line 2: invalid literal.*integers"),
    ("conv-filter-too-big", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
     "Num Filter, Strides,\nc1, 2, 2, 3, 3, 1, 4, 1,\n", None, r"layer line 2: .*filter \(3x3\) no larger"),
    ("bad-mode", "Layer, M, N, K,\nfc, 8, 4, 4,\n", "csv", r"mode='csv'"),
]


@pytest.mark.parametrize("text, mode, words", [c[1:] for c in TOPOLOGY_CASES], ids=[c[0] for c in TOPOLOGY_CASES])
def test_scalesim_topology_errors_name_the_file(tmp_path, text, mode, words):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=words) as info:
        read_scalesim_topology(path, mode)
    assert mode == "csv" or str(path) in str(info.value)


def test_workload_accepts_numpy_integers():
    w = GemmWorkload("fc", M=np.int64(8), K=np.int32(12), N=10)
    assert w == W and type(w.M) is int


def test_empty_network_is_a_valid_empty_result():
    df, tot = simulate_network([])
    assert len(df) == 0 and tuple(df.columns) == RECORD_FIELDS
    assert tot["total_cycles"] == 0 and tot["utilization"] == 0.0 and tot["latency_ms"] == 0.0
    assert set(tot) == set(simulate_network([W])[1])
    assert tuple(simulate_layer(W)) == RECORD_FIELDS        # the declared columns are the record's
    ddf, dtot = simulate_dense_network([], SystolicConfig())
    assert len(ddf) == 0 and tuple(ddf.columns) == DENSE_RECORD_FIELDS and dtot["macs"] == 0
    assert tuple(simulate_dense_layer(W, SystolicConfig())) == DENSE_RECORD_FIELDS
    assert set(dtot) == set(simulate_dense_network([W], SystolicConfig())[1])


# ------------------------------------------------------------------------------------ functional model
LAYER = dict(K=12, N=10, v=4, c=16, metric="l1", table_bits=8, seed=0)

FUNCTIONAL_CASES = [
    ("metric", {"cfg": LUTDLAConfig(metric="l2")}, ValueError, r"metric='l2' but the layer has metric='l1'"),
    ("table-bits", {"cfg": LUTDLAConfig(metric="l1", table_bits=4)}, ValueError,
     r"table_bits=4 but the layer has table_bits=8"),
    ("c", {"cfg": LUTDLAConfig(metric="l1", c=8)}, ValueError, r"c=8 but the layer has c=16"),
    ("v", {"cfg": LUTDLAConfig(metric="l1", v=2)}, ValueError, r"v=2 but the layer has v=4"),
    ("acc-bits-disagree", {"cfg": LUTDLAConfig(metric="l1", acc_bits=16), "acc_bits": 24}, ValueError,
     r"acc_bits=24 but cfg\.acc_bits=16"),
    ("acc-bits-range", {"acc_bits": 4}, ValueError, r"acc_bits=4 is out of range"),
    ("cfg-dict", {"cfg": {"c": 16}}, TypeError, r"must be a LUTDLAConfig"),
    ("x-numpy", {"x": np.zeros((3, 12), dtype=np.float32)}, TypeError, r"x must be a torch\.Tensor"),
]


@pytest.mark.parametrize("kw, err, words", [c[1:] for c in FUNCTIONAL_CASES], ids=[c[0] for c in FUNCTIONAL_CASES])
def test_functional_rejects(kw, err, words):
    layer = random_layer(**LAYER)
    args = {"x": torch.randn(3, 12), **kw}
    with pytest.raises(err, match=words):
        simulate_layer_functional(layer, args.pop("x"), **args)


def test_functional_follows_the_configs_acc_bits():
    """A config with acc_bits=8 wraps at 8 bits (it used to wrap at the argument's default, 32)."""
    layer = random_layer(**LAYER)
    x = 4 * torch.randn(20, 12, generator=torch.Generator().manual_seed(0))
    res = simulate_layer_functional(layer, x, LUTDLAConfig(metric="l1", acc_bits=8))
    assert torch.equal(res["output"], engine.run_layer(layer, x, acc_bits=8))
    assert not torch.equal(res["output"], engine.run_layer(layer, x, acc_bits=32))   # 8 bits did wrap
    same = simulate_layer_functional(layer, x, acc_bits=8)              # no cfg: the argument decides
    assert torch.equal(same["output"], res["output"])
    assert torch.equal(simulate_layer_functional(layer, x, LUTDLAConfig(metric="l1"))["output"],
                       engine.run_layer(layer, x))


# ------------------------------------------------------------------------------------ DSE inputs
def _pts():
    return dse.grid_points(TINY)


def _no_point():
    return _pts().drop(columns="point")


def _nan_v():
    p = _pts().astype({"v": float})
    p.loc[0, "v"] = np.nan
    return p


DSE_CASES = [
    ("space-misspelt", lambda: dse.grid_points({"lane": (4,)}), ValueError,
     r"space: unknown key\(s\) 'lane' \(did you mean 'lanes'\?\); valid keys: \[.*'lanes'"),
    ("space-m_tile", lambda: dse.grid_points({"m_tile": (8,)}), ValueError,
     r"m_tile is not a DSE parameter.*acc_buffer_kb"),
    ("space-empty", lambda: dse.grid_points({}), ValueError, r"space is empty"),
    ("space-empty-values", lambda: dse.grid_points({"v": ()}), ValueError, r"space\['v'\] is empty"),
    ("space-str-values", lambda: dse.grid_points({"metric": "l2"}), TypeError,
     r"space\['metric'\]='l2'.*list or tuple"),
    ("space-scalar", lambda: dse.grid_points({"v": 4}), TypeError, r"space\['v'\]=4.*list or tuple"),
    ("space-float-int", lambda: dse.grid_points({"v": (4.0,)}), TypeError, r"v=4\.0 is a float; v takes integers"),
    ("space-bad-metric", lambda: dse.grid_points({"metric": ("L2",)}), ValueError, r"metric='L2'.*use one of"),
    ("space-int-bool", lambda: dse.grid_points({"double_buffer": (1,)}), TypeError, r"double_buffer=1.*True or False"),
    ("space-str-number", lambda: dse.grid_points({"clock_mhz": ("500",)}), TypeError, r"clock_mhz='500'.*numbers"),
    ("space-both-buffers", lambda: dse.grid_points({"table_buffer_kb": (32,), "table_buffer_bytes": (1024,)}),
     ValueError, r"both table_buffer_kb and table_buffer_bytes"),
    ("space-not-dict", lambda: dse.grid_points([("v", (4,))]), TypeError, r"space must be a dict"),
    ("random-n-zero", lambda: dse.random_points(0, TINY), ValueError, r"n=0: must be an integer >= 1"),
    ("random-n-negative", lambda: dse.random_points(-5, TINY), ValueError, r"n=-5: must be an integer >= 1"),
    ("random-n-float", lambda: dse.random_points(2.5, TINY), TypeError, r"n=2\.5"),
    ("random-misspelt", lambda: dse.random_points(3, {"ccu": (4,)}), ValueError, r"'ccu' \(did you mean 'ccus'\?\)"),
    ("points-misspelt-column", lambda: dse.evaluate_points(_pts().rename(columns={"lanes": "lanez"}), "digits_cnn"),
     ValueError, r"points columns: unknown key\(s\) 'lanez'.*valid keys"),
    ("points-empty", lambda: dse.evaluate_points(_pts().iloc[:0], "digits_cnn"), ValueError, r"points has no rows"),
    ("points-not-frame", lambda: dse.evaluate_points(TINY, "digits_cnn"), TypeError,
     r"points must be a pandas DataFrame"),
    ("points-missing-value", lambda: dse.evaluate_points(_nan_v(), "digits_cnn"), ValueError,
     r"v has a missing value"),
    ("points-workload-type", lambda: dse.evaluate_points(_pts(), 42), TypeError, r"workload=42.*Workload"),
    ("points-accuracy-columns", lambda: dse.evaluate_points(_pts(), "digits_cnn", accuracy=pd.DataFrame({"v": [4]})),
     ValueError, r"accuracy table lacks columns"),
    ("constraints-dict-misspelt", lambda: dse.evaluate_points(_pts(), "digits_cnn", {"max_area": 1.0}), TypeError,
     r"unknown field\(s\) 'max_area' \(did you mean 'max_area_mm2'\?\); valid fields"),
    ("constraints-misspelt", lambda: dse.Constraints(min_acc=0.5), TypeError, r"'min_acc'.*'min_accuracy'"),
    ("constraints-str", lambda: dse.Constraints(max_area_mm2="5"), TypeError, r"max_area_mm2='5'.*number"),
    ("constraints-zero", lambda: dse.Constraints(max_power_w=0), ValueError, r"max_power_w=0.*> 0"),
    ("constraints-nan", lambda: dse.Constraints(min_accuracy=math.nan), ValueError, r"min_accuracy=nan.*finite"),
    ("sweep-no-point", lambda: dse.run_sweep(_no_point(), "digits_cnn", cache_dir=False), ValueError,
     r"no 'point' column"),
    ("sweep-n-jobs", lambda: dse.run_sweep(_pts(), "digits_cnn", n_jobs=0, cache_dir=False), ValueError, r"n_jobs=0"),
    ("sweep-chunk", lambda: dse.run_sweep(_pts(), "digits_cnn", chunk_size=-1, cache_dir=False), ValueError,
     r"chunk_size=-1"),
    ("design-misspelt", lambda: dse.design_from_params({"lanse": 8}), ValueError,
     r"'lanse' \(did you mean 'lanes'\?\)"),
    ("design-m_tile", lambda: dse.design_from_params({"m_tile": 8}), ValueError, r"m_tile is not a DSE parameter"),
    ("explore-misspelt", lambda: dse.explore_point(lane=8), TypeError,
     r"explore_point: unknown argument\(s\) 'lane' \(did you mean 'lanes'\?\); valid: \[.*'lanes'"),
    ("explore-baseline", lambda: dse.explore_point(baseline="int16"), ValueError, r"baseline='int16'.*int8"),
    ("explore-engine", lambda: dse.explore_point(engine="exact"), ValueError, r"engine='exact'"),
]


@pytest.mark.parametrize("call, err, words", [c[1:] for c in DSE_CASES], ids=[c[0] for c in DSE_CASES])
def test_dse_rejects(call, err, words):
    with pytest.raises(err, match=words):
        call()


COST_CASES = [
    ("tech-str", lambda: cost.Tech(node_nm="45"), TypeError, r"Tech\.node_nm='45'.*number"),
    ("tech-range", lambda: cost.Tech(node_nm=1), ValueError, r"Tech\.node_nm=1.*3\.\.180"),
    ("design-cfg-type", lambda: cost.LUTDesign(cfg=SystolicConfig()), TypeError, r"LUTDesign\.cfg=.*LUTDLAConfig"),
    ("design-buffer-str", lambda: cost.LUTDesign(acc_buffer_kb="64"), TypeError, r"LUTDesign\.acc_buffer_kb='64'"),
    ("design-precision", lambda: cost.LUTDesign(dense_precision="int2"), ValueError,
     r"LUTDesign\.dense_precision='int2'.*int8"),
    ("baseline-precision", lambda: dse.evaluate_baseline(dse.get_workload("digits_cnn"), "int2"), ValueError,
     r"precision='int2'.*int8"),
    ("matched-target", lambda: dse.matched_baseline(dse.get_workload("digits_cnn"), "int8", 0.0), ValueError,
     r"target=0\.0.*> 0"),
    ("matched-no-sizes", lambda: dse.matched_baseline(dse.get_workload("digits_cnn"), "int8", 1.0, sizes=()),
     ValueError, r"sizes is empty"),
    ("evaluate-design-type", lambda: dse.evaluate_design(LUTDLAConfig(), "digits_cnn"), TypeError,
     r"design must be a cost\.LUTDesign"),
]


@pytest.mark.parametrize("call, err, words", [c[1:] for c in COST_CASES], ids=[c[0] for c in COST_CASES])
def test_cost_inputs_rejected(call, err, words):
    with pytest.raises(err, match=words):
        call()


def test_dse_accepts_sweep_rows_and_dict_constraints():
    """A sweep's output fed back as points (its result columns are recomputed), a row to design_from_params,
    constraints as a dict: all still work and give the same numbers."""
    wl = "digits_cnn"
    first = dse.evaluate_points(_pts(), wl, dse.Constraints(max_area_mm2=10.0))
    again = dse.evaluate_points(first, wl, {"max_area_mm2": 10.0})
    pd.testing.assert_frame_equal(first, again[first.columns])
    design = dse.design_from_params(first.iloc[0].to_dict())
    assert design.cfg.v == first.loc[0, "v"] and design.cfg.c == first.loc[0, "c"]
    assert "error" in dse.explore_point(table_tile=4096, buffer_kb=1)       # an unbuildable design: as before


# ------------------------------------------------------------------------------------ DSE cache
def _cached(tmp_path, pts):
    fresh = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=False)
    first = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.pkl"))
    assert dse.read_sweep_cache(files[0]).shape == first.shape
    return fresh, first, files[0]


@pytest.mark.parametrize("kind", ["grid", "random", "grid+random"])
def test_cache_equals_fresh_computation(tmp_path, kind):
    """The cached frame (npz + JSON schema) is the fresh one: values, dtypes (numpy, nullable, string), order."""
    grid, rand = dse.grid_points(TINY), dse.random_points(7, TINY, seed=1)
    pts = {"grid": grid, "random": rand,
           "grid+random": pd.concat([grid, rand], ignore_index=True).assign(point=lambda d: np.arange(len(d)))}[kind]
    fresh, first, _ = _cached(tmp_path, pts)
    pd.testing.assert_frame_equal(first, fresh)
    cached = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(cached, fresh)


class _Payload:
    """Unpickling this makes a folder: the tests check the folder never appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


CACHE_CASES = [
    ("planted-pickle", lambda p, orig, m: p.write_bytes(pickle.dumps(_Payload(m))), r"unreadable"),
    ("truncated", lambda p, orig, m: p.write_bytes(orig[:100]), r"unreadable"),
    ("junk", lambda p, orig, m: p.write_bytes(b"not a cache at all"), r"unreadable"),
    ("no-schema", lambda p, orig, m: np.savez(p, c0=np.arange(3)), r"no schema record"),
    ("other-schema", lambda p, orig, m: np.savez(p, __meta__=np.frombuffer(b'{"schema": "x"}', dtype=np.uint8)),
     r"schema 'x', expected 'lutnb-dse-cache-1'"),
    ("pickled-array", lambda p, orig, m: np.savez(p, __meta__=np.array([_Payload(m)], dtype=object)),
     r"unreadable"),
]


@pytest.mark.parametrize("damage, words", [c[1:] for c in CACHE_CASES], ids=[c[0] for c in CACHE_CASES])
def test_cache_file_is_checked_never_unpickled(tmp_path, damage, words):
    pts = dse.grid_points(TINY)
    cache, marker = tmp_path / "cache", tmp_path / "unpickled"
    _, _, path = _cached(cache, pts)
    damage(path, path.read_bytes(), marker)
    with pytest.raises(dse.DSECacheError, match=rf"DSE cache {path}.*{words}.*delete the file"):
        dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=cache)
    assert not marker.exists()


def test_old_pickle_cache_is_never_read(tmp_path):
    """A results/dse_cache/*.pkl (the old format, or a planted file) is ignored: the sweep recomputes."""
    pts = dse.grid_points(TINY)
    cache, marker = tmp_path / "cache", tmp_path / "unpickled"
    fresh, _, path = _cached(cache, pts)
    path.with_suffix(".pkl").write_bytes(pickle.dumps(_Payload(marker)))
    path.unlink()
    out = dse.run_sweep(pts, "digits_cnn", n_jobs=1, cache_dir=cache)
    pd.testing.assert_frame_equal(out, fresh)
    assert not marker.exists() and len(list(cache.glob("*.npz"))) == 1
