"""Accuracy records: the declared schema, the one writer (experiments) and the one reader (codesign), end to end."""
import ast
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lutnb.codesign import accuracy as A
from lutnb.experiments import accuracy as X

# DSE caches stay out of the real results/ folder; a toy proxy table stands in for notebook 01
pytestmark = pytest.mark.usefixtures("seeded_results")

ROOT = Path(__file__).resolve().parent.parent


def _rec(**kw):
    base = dict(model="digits_cnn", metric="l1", v=4, c=16, accuracy=0.97, source="lutboost", seed=0)
    return A.AccuracyRecord(**{**base, **kw})


@pytest.mark.parametrize("field, value, hint", [
    ("accuracy", 98.5, "divide by 100"), ("accuracy", float("nan"), "fraction"), ("accuracy", None, "fraction"),
    ("fp32_accuracy", 99.0, "divide by 100"), ("metric", "L3", "one of"), ("v", 0, "integer >= 1"),
    ("c", 2.5, "integer >= 2"), ("model", "", "non-empty"), ("source", 3, "non-empty"),
    ("table_bits", 64, r"\[1, 32\]"), ("seed", True, "integer"), ("n_test", -1, "integer"),
])
def test_schema_errors_name_field_value_and_fix(field, value, hint):
    with pytest.raises(A.AccuracyRecordError, match=rf"AccuracyRecord\.{field}={re.escape(repr(value))}: .*{hint}"):
        _rec(**{field: value})


def test_record_normalises_numpy_numbers():
    r = _rec(v=np.int64(4), c=np.int32(16), accuracy=np.float32(0.5), seed=np.int64(2))
    assert type(r.v) is int and type(r.seed) is int and type(r.accuracy) is float
    json.dumps(r.to_dict())


@pytest.mark.parametrize("content, what", [
    ("{not json", "not readable JSON"),
    (json.dumps({"schema": "lutnb.accuracy-records/0", "records": []}), "schema is 'lutnb.accuracy-records/0'"),
    (json.dumps([1, 2]), "schema is 'list'"),
    (json.dumps({"schema": A.SCHEMA}), "'records' is missing"),
    (json.dumps({"schema": A.SCHEMA, "records": [{"model": "m", "metric": "l1", "v": 4, "c": 16,
                                                    "accuracy": 0.9, "source": "lutboost", "acc": 1}]}),
     r"record 0 has unknown fields \['acc'\]"),
    (json.dumps({"schema": A.SCHEMA, "records": [{"model": "m", "metric": "l1", "v": 4, "c": 16,
                                                    "accuracy": 97.0, "source": "lutboost"}]}),
     r"record 0: AccuracyRecord\.accuracy=97\.0: .*divide by 100"),
])
def test_malformed_file_error_names_the_file(tmp_path, content, what):
    X.write_accuracy_records("01_ok", [_rec()], tmp_path)
    bad = tmp_path / "02_bad.json"
    bad.write_text(content)
    with pytest.raises(A.AccuracyRecordError, match=re.escape(str(bad)) + ".*" + what) as info:
        A.read_accuracy_records(tmp_path)
    assert "write_accuracy_records" in str(info.value)  # the fix
    with pytest.raises(A.AccuracyRecordError):
        A.accuracy_table(directory=tmp_path)


def test_writer_rejects_non_records_and_bad_names(tmp_path):
    with pytest.raises(TypeError, match=r"records\[0\] is a dict"):
        X.write_accuracy_records("x", [{"model": "m"}], tmp_path)
    with pytest.raises(ValueError, match="plain file stem"):
        X.write_accuracy_records("../x", [], tmp_path)


def test_table_prefers_sources_averages_seeds_and_filters_model(tmp_path, seeded_results):
    shutil.copy(seeded_results / A.RECORDS_SUBDIR / "01_vector_quantization.json", tmp_path)  # toy proxies
    recs = [_rec(accuracy=0.96, seed=0), _rec(accuracy=0.98, seed=1),           # lutboost l1 (4, 16): mean 0.97
            _rec(accuracy=0.50, source="kmeans", seed=0),                       # ... wins over k-means
            _rec(metric="l2", accuracy=0.90, source="single_stage"),            # single-stage over k-means
            _rec(metric="l2", accuracy=0.80, source="kmeans"),
            _rec(metric="chebyshev", v=8, accuracy=0.60, source="kmeans"),
            _rec(model="mnist1d_cnn", metric="l2", v=2, accuracy=0.70)]         # another model
    X.write_accuracy_records("02_lutboost", recs[:5], tmp_path)
    X.write_accuracy_records("03_accuracy_vs_bits", recs[5:], tmp_path)
    assert [r for r in A.read_accuracy_records(tmp_path) if not r.is_proxy] == recs
    t = A.accuracy_table("digits_cnn", tmp_path).set_index(A.KEY)
    assert t.loc[("l1", 4, 16), "accuracy"] == pytest.approx(0.97)
    assert t.loc[("l1", 4, 16), "accuracy_source"] == "stored: lutboost"
    assert t.loc[("l2", 4, 16)].tolist() == [0.90, "stored: single_stage"]
    assert t.loc[("chebyshev", 8, 16)].tolist() == [0.60, "stored: kmeans"]
    assert t.loc[("l2", 2, 16), "accuracy_source"] == A.PROXY_SOURCE    # mnist1d's record is not used
    assert (t["accuracy_source"].str.startswith("stored")).sum() == 3
    everything = A.accuracy_table("resnet18", tmp_path).set_index(A.KEY)   # no resnet18 records: all are used
    assert everything.loc[("l2", 2, 16)].tolist() == [0.70, "stored: lutboost"]


def test_proxy_records_reproduce_one_minus_rel_error(tmp_path):
    sweep = pd.DataFrame([{"method": "INT4", "metric": "scalar", "v": 1, "c": 16, "rel_error": 0.2},
                          {"method": "VQ", "metric": "l2", "v": 4, "c": 16, "rel_error": 0.1234567890123},
                          {"method": "VQ", "metric": "l1", "v": 8, "c": 8, "rel_error": 0.31}])
    recs = X.proxy_records_from_sweep(sweep, seed=0)
    assert [(r.metric, r.v, r.c) for r in recs] == [("l2", 4, 16), ("l1", 8, 8)]
    assert all(r.source == A.PROXY_SOURCE and r.seed == 0 for r in recs)
    X.write_accuracy_records("01_vector_quantization", recs, tmp_path)
    t = A.proxy_accuracy_table(directory=tmp_path)
    assert t["accuracy"].tolist() == [1.0 - 0.31, 1.0 - 0.1234567890123]   # exact: JSON keeps every bit
    assert A.stored_accuracy_table(directory=tmp_path).empty                 # proxies are not stored accuracy
    other = X.proxy_records_from_sweep(sweep, model="mnist1d_cnn", layer="fc1")
    assert other[0].is_proxy and "mnist1d_cnn fc1" in other[0].source


def test_record_from_report_labels_kmeans_only_runs():
    rep = SimpleNamespace(method="lutboost", metric="l2", v=4, c=16, seed=1, final_acc=97.5, fp32_test_acc=98.0,
                          total_epochs=3)
    r = X.record_from_report(rep, "digits_cnn", n_test=360)
    assert (r.source, r.accuracy, r.fp32_accuracy, r.n_test) == ("lutboost", 0.975, 0.98, 360)
    assert X.record_from_report(replace_ns(rep, total_epochs=0), "digits_cnn").source == "kmeans"
    assert X.unique_records([r, r, _rec()]) == [r, _rec()]


def replace_ns(ns, **kw):
    return SimpleNamespace(**{**vars(ns), **kw})


def test_real_kmeans_run_written_then_read_by_codesign(tmp_path, monkeypatch, seeded_results):
    """A real conversion of the digits CNN (k-means calibration, as notebook 03 in SMOKE) goes through the
    experiments writer and comes back through codesign's reader into the DSE accuracy table."""
    from lutnb import boosting
    from lutnb.experiments import compare
    from lutnb.zoo.train import pretrained

    model = pretrained("digits_cnn", seed=0, cache_dir=tmp_path / "ckpt", epochs=1, progress=False)
    monkeypatch.setattr(compare, "pretrained", lambda name, seed, progress=False: model)
    cfg = boosting.LUTBoostConfig()
    kmeans_only = boosting.LUTBoostConfig((replace(cfg.stages[0], batches=2, max_rows=512, iters=3),
                                           *(replace(s, skip=True) for s in cfg.stages[1:])))
    runs = compare.compare("digits_cnn", metrics=("l1",), seeds=(0,), v=4, c=16, stages=kmeans_only,
                           methods=("lutboost",))
    recs = X.records_from_compare(runs)
    assert len(recs) == 1 and recs[0].source == "kmeans" and recs[0].n_test == runs[0]["n_test"] > 0
    assert recs[0].accuracy == pytest.approx(runs[0]["lut_acc"] / 100) and 0.0 < recs[0].accuracy <= 1.0
    rec_dir = seeded_results / A.RECORDS_SUBDIR          # beside the seeded proxy records
    path = X.write_accuracy_records("03_accuracy_vs_bits", recs, rec_dir)
    try:
        assert path == rec_dir / "03_accuracy_vs_bits.json" and json.loads(path.read_text())["schema"] == A.SCHEMA
        assert recs[0] in A.read_accuracy_records()                         # the default folder
        from lutnb.codesign import dse

        t = dse.accuracy_table("digits_cnn")
        row = t[(t.metric == "l1") & (t.v == 4) & (t.c == 16)].iloc[0]
        assert row["accuracy"] == recs[0].accuracy and row["accuracy_source"] == "stored: kmeans"
        assert (t["accuracy_source"] == A.PROXY_SOURCE).sum() == len(t) - 1
        pts = dse.random_points(30, {"v": (4,), "c": (16,), "metric": ("l1", "l2")}, seed=0)
        ev = dse.evaluate_points(pts, "digits_cnn")
        assert set(ev.loc[ev.metric == "l1", "accuracy_source"]) == {"stored: kmeans"}
        assert set(ev.loc[ev.metric == "l2", "accuracy_source"]) == {A.PROXY_SOURCE}
        assert dse.explore_point(metric="l1")["accuracy"] == recs[0].accuracy
    finally:
        path.unlink()                                   # the module's seeded folder holds proxies only again


def test_codesign_does_not_import_experiments_nb_or_private_names():
    """Layering: lutnb.codesign never imports lutnb.experiments / lutnb.nb, never reads a notebook's results
    JSON, and imports no `_private` name from another module."""
    for path in sorted((ROOT / "lutnb" / "codesign").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert not re.search(r"(^|\.)(experiments|nb)(\.|$)", mod), f"{path.name} imports {mod}"
                assert not [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"
                            and node.module != "__future__"], f"{path.name}: private import from {mod}"
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if re.match(r"lutnb\.(experiments|nb)\b", a.name)], path.name
        assert not re.search(r"\d\d_[a-z_]+\.json|read_results", path.read_text()), f"{path.name} reads results"


def test_one_run_written_by_two_notebooks_counts_once(tmp_path):
    """Notebooks 02 and 03 both record LUTBoost at v=4, c=16 for the same seeds: averages and seed counts must be
    over distinct runs, not over the files that mention them."""
    runs = [_rec(seed=s, accuracy=0.97 + 0.01 * s) for s in (0, 1, 2)]
    X.write_accuracy_records("02_lutboost", runs, tmp_path)
    X.write_accuracy_records("03_accuracy_vs_bits", runs + [_rec(seed=3, accuracy=0.90)], tmp_path)
    recs = A.read_accuracy_records(tmp_path)
    assert sorted(r.seed for r in recs) == [0, 1, 2, 3]
    table = A.stored_accuracy_table(records=recs)
    assert table.accuracy.iloc[0] == pytest.approx((0.97 + 0.98 + 0.99 + 0.90) / 4)
    # records without a seed cannot be told apart: all are kept
    X.write_accuracy_records("04_x", [_rec(seed=None), _rec(seed=None)], tmp_path)
    assert len(A.read_accuracy_records(tmp_path)) == 6
