"""Issue 14: the held-out architecture zoo, skip="auto", the keep-best guard, the fair single-stage baseline,
and the paper's central ordering (LUTBoost >= k-means only, >= single-stage) on a small fixed case."""
import pytest
import torch
from test_boosting import _cfg, _data  # noqa: E402  (tests/ is on sys.path)
from torch import nn

import lutnb
from lutnb import boosting as B
from lutnb.experiments import zoo
from lutnb.vq.conversion import edge_layers, layer_k, narrow_layers, resolve_skip, trace_layers
from lutnb.vq.layers import lut_layers
from lutnb.zoo.archs import ARCHS, build_arch
from lutnb.zoo.data import load_mnist1d_large


@pytest.mark.filterwarnings("ignore:.*never calibrated")
@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_zoo_archs_build_run_and_convert(arch, shape):
    torch.manual_seed(0)
    m = build_arch(arch, shape).eval()
    x = torch.randn(3, *shape)
    assert m(x).shape == (3, 10)
    lut = lutnb.convert(m, 4, 16, "l2", skip=resolve_skip(m, "auto", x))
    assert len(list(lut_layers(lut))) >= 1
    assert lut(x).shape == (3, 10)


def test_zoo_has_the_shapes_the_issue_asks_for():
    x = torch.randn(2, 1, 8, 8)
    odd = build_arch("oddk_cnn", (1, 8, 8))
    Ks = [m.weight[0].numel() for m in odd.modules() if isinstance(m, nn.Conv2d)]
    assert all(k % 4 for k in Ks)  # every conv's K is not a multiple of v=4
    res = build_arch("res_cnn", (1, 8, 8))
    assert any(m.kernel_size == (1, 1) for m in res.modules() if isinstance(m, nn.Conv2d))  # 1x1 shortcut
    assert [n for n in trace_layers(res, x)][-2:] == ["head.0", "head.2"]  # an MLP head
    with pytest.raises(ValueError, match="input_shape"):
        build_arch("mlp", (1, 8, 8, 8))
    with pytest.raises(ValueError, match="arch='nope'"):
        build_arch("nope", (1, 8, 8))


class HeadFirst(nn.Module):
    """The head is defined before the body: 'first'/'last' must follow the calls, not the definitions."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 2)
        self.body = nn.Linear(4, 6)
        self.stem = nn.Linear(5, 4)

    def forward(self, x):
        return self.head(torch.relu(self.body(torch.relu(self.stem(x)))))


def test_skip_auto_follows_call_order_and_counts_macs():
    m, x = HeadFirst(), torch.randn(2, 5)
    assert edge_layers(m, x) == {"first": "stem", "last": "head"}
    assert resolve_skip(m, ("first", "last"), x) == ("stem", "head")
    assert resolve_skip(m, ("first", "body", "absent*"), x) == ("stem", "body")
    # K = 5, 4, 6: one or two sub-spaces at v=4, so "auto" keeps every layer float; at v=2 body (K=4) has 2
    assert resolve_skip(m, "auto", x) == ("stem", "head", "body")
    assert resolve_skip(m, "narrow", x, v=1) == ()
    assert trace_layers(m, x) == {"stem": 20, "body": 24, "head": 12}
    with pytest.raises(ValueError, match="example"):
        resolve_skip(m, "auto")


def test_skip_narrow_keeps_layers_with_fewer_than_4_subspaces_float():
    """skip="auto" also keeps float the layers with ceil(K / v) < 4 (the MNIST-1D mixer's token fc1: K = 10);
    v follows an override that sets it."""
    m = build_arch("mixer", (1, 40))
    assert narrow_layers(m) == ("embed", "layers.0.token_fc1", "layers.1.token_fc1")
    assert narrow_layers(m, v=2) == ("embed",)  # K = 10 at v=2: 5 sub-spaces
    assert narrow_layers(m, overrides={"layers.*.token_fc1": {"v": 2}}) == ("embed",)
    assert narrow_layers(m, v=8) == ("embed", "layers.0.token_fc1", "layers.0.token_fc2", "layers.1.token_fc1",
                                     "layers.1.token_fc2")
    x = torch.randn(2, 1, 40)
    assert resolve_skip(m, "auto", x) == ("embed", "head", "layers.0.token_fc1", "layers.1.token_fc1")
    conv = nn.Conv2d(6, 8, (1, 2), groups=2)  # K per group = 3 x 1 x 2 = 6
    assert layer_k(conv) == 6 and narrow_layers(nn.Sequential(conv)) == ("0",)
    lut = lutnb.convert(m, 4, 16, "l2", skip=resolve_skip(m, "auto", x))
    assert {r.name for r in lut.lut_summary.left_alone} >= {"layers.0.token_fc1", "layers.1.token_fc1"}


def test_mnist1d_large_split_sizes_and_fixed_samples():
    a, b = load_mnist1d_large(0, sizes=(300, 100, 200)), load_mnist1d_large(1, sizes=(300, 100, 200))
    assert (len(a.train), len(a.val), len(a.test)) == (300, 100, 200)
    assert a.input_shape == (1, 40) and a.train.tensors[0].shape == (300, 1, 40)
    allx = torch.cat([a.train.tensors[0], a.val.tensors[0], a.test.tensors[0]])
    ally = torch.cat([b.train.tensors[0], b.val.tensors[0], b.test.tensors[0]])
    assert torch.allclose(allx.sum(0), ally.sum(0), atol=1e-3)  # same samples, another split
    assert not torch.equal(a.test.tensors[0], b.test.tensors[0])
    with pytest.raises(ValueError, match="sizes"):
        load_mnist1d_large(0, sizes=(300, 100))


def test_keep_best_rolls_back_a_stage_that_hurts(trained):
    data = _data(seed=1)
    cfg = _cfg().with_stage("joint", lr=3.0, distill_weight=0.0)  # a learning rate that wrecks the model
    lut, rep = lutnb.lutboost(trained, data, data, v=4, c=8, metric="l2", stages=cfg, seed=0, test=data,
                              progress=False)
    joint = rep.stages[2]
    best_before = max(s.val_acc for s in rep.stages[:2])
    assert joint.val_acc < best_before and joint.rolled_back
    assert rep.selected_stage != "joint"
    got = B.accuracy(lut, data, "quant")
    assert got == pytest.approx(rep.final.val_acc) and got >= best_before
    assert "rolled back" in str(rep)
    # the guard off: the wrecked state goes on to lut_qat and is returned
    off = B.LUTBoostConfig(cfg.stages, keep_best=False)
    _, rep_off = lutnb.lutboost(trained, data, data, v=4, c=8, metric="l2", stages=off, seed=0, test=data,
                                progress=False)
    assert rep_off.selected_stage is None and not any(s.rolled_back for s in rep_off.stages)
    assert rep_off.final.stage == "lut_qat" and rep_off.final_acc < got
    with pytest.raises(TypeError, match="keep_best"):
        B.LUTBoostConfig(cfg.stages, keep_best="yes")


def test_single_stage_is_fair_by_default():
    """Same calibration, total epochs, joint lr / codebook scale / batch, INT8 tables, keep-best guard."""
    ref = B.LUTBoostConfig()
    seen = {}

    def spy(model, train, val, **kw):
        seen.update(kw)
        raise StopIteration

    import lutnb.boosting.runner as R

    orig = R.lutboost
    R.lutboost = spy
    try:
        with pytest.raises(StopIteration):
            R.single_stage(nn.Linear(4, 2), [1], None)
    finally:
        R.lutboost = orig
    ref = ref.for_data(1)  # a 1-example training set: the joint stage's min_steps raise its epochs
    assert ref.stages[2].epochs == 600
    cfg = seen["stages"]
    j = cfg.stages[2]
    assert cfg.stages[0] == ref.stages[0] and cfg.keep_best
    assert j.epochs == ref.total_epochs and j.lr == ref.stages[2].lr
    assert j.codebook_lr_scale == ref.stages[2].codebook_lr_scale and j.batch_size == ref.stages[2].batch_size
    assert j.distill_weight == 0 and j.mode == "lut" and j.bn_reestimate
    assert cfg.stages[1].skip and cfg.stages[3].skip and cfg.total_epochs == ref.total_epochs


def test_zoo_verdict_reads_the_acceptance_checks():
    def rec(ds, arch, seed, lb, ss, km_val=90.0, lb_val=91.0):
        return {"dataset": ds, "arch": arch, "metric": "l2", "seed": seed, "fp32_acc": 99.0, "kmeans_acc": 95.0,
                "single_stage_acc": ss, "lutboost_acc": lb, "lutboost_drop": 99.0 - lb, "kmeans_val": km_val,
                "lutboost_val": lb_val, "lutboost_seconds": 1.0, "single_stage_seconds": 1.0}
    recs = [rec("digits", "a", 0, 98.5, 98.0), rec("digits", "a", 1, 98.7, 98.0),
            rec("digits", "b", 0, 97.0, 98.0, lb_val=89.0)]
    v = zoo.zoo_verdict(recs)
    assert v["mean_drop"] == pytest.approx(((0.5 + 0.3) / 2 + 2.0) / 2)
    assert v["worst"]["arch"] == "b" and v["worst"]["drop"] == pytest.approx(2.0)
    assert v["below_kmeans_val"] == ["digits/b/l2/seed0"]
    assert v["beats_single"] == {"digits": {"wins": 1, "models": 2}}


def test_zoo_pretrained_is_cached(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.ZOO_FP32, "digits", {"epochs": 1})
    a = zoo.zoo_pretrained("digits", "mlp", 0, cache_dir=tmp_path)
    assert zoo.zoo_checkpoint("digits", "mlp", 0, tmp_path).exists()
    b = zoo.zoo_pretrained("digits", "mlp", 0, cache_dir=tmp_path)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="dataset='cifar10'"):
        zoo.zoo_pretrained("cifar10", "mlp", 0, cache_dir=tmp_path)


def test_paper_ordering_on_a_fixed_case(tmp_path):
    """The paper's central comparison, asserted: LUTBoost >= k-means only and >= the fair single-stage baseline
    (equal epochs) on test accuracy. The case (MNIST-1D generated large, 5,000 test samples, the zoo MLP,
    Chebyshev, seed 0) is one where the zoo run (benchmarks/bench_lutboost_zoo.py) showed the ordering with a
    margin of 36 test samples over single-stage with the recipe before the calibration refit (k-means 70.58 %,
    single-stage 72.64 %, LUTBoost 73.36 %) and of 99 samples with it (calibration 71.54 %, single-stage 71.54 %:
    its fine-tune never beat the calibrated state on validation, LUTBoost 73.52 %). A first
    choice with a 6-image margin on digits flipped in CI, where numba's kernels had run earlier in the same
    process and reset torch to 2 threads (fixed in numba_kernels.match_threads): a case that float order can flip
    is no test. Across the zoo the ordering does not hold everywhere (see docs/lutboost-zoo.md), so this guards
    the recipe against regressions on one seeded case."""
    from lutnb.zoo.data import get_dataset

    data = get_dataset("mnist1d_large", seed=0)
    model = zoo.zoo_pretrained("mnist1d_large", "mlp", 0, data, cache_dir=tmp_path)
    kw = dict(metric="chebyshev", seed=0, test=data.test, progress=False)
    _, lb = lutnb.lutboost(model, data.train, data.val, **kw)
    _, ss = lutnb.single_stage(model, data.train, data.val, **kw)
    assert lb.kmeans_acc == ss.kmeans_acc  # the same calibration
    assert lb.final_acc >= lb.kmeans_acc + 1.0 and lb.final_acc >= ss.final_acc + 0.3
    assert lb.total_epochs == ss.total_epochs == 8


class WithConv1d(nn.Module):
    """A Conv1d feature extractor (not convertible) and a Linear head: 'first' is the Conv1d, and the MAC
    share kept float counts it."""

    def __init__(self):
        super().__init__()
        self.f1 = nn.Conv1d(1, 8, 3, padding=1)
        self.f2 = nn.Conv1d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 6, 16)
        self.fc2 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.f2(torch.relu(self.f1(x.reshape(x.shape[0], 1, 6))))).flatten(1)
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(h)))))


def test_user_frictions_get_clear_answers():
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    data = TensorDataset(x, y)
    m = WithConv1d().eval()
    assert edge_layers(m, x[:2]) == {"first": "f1", "last": "out"}
    cfg = B.LUTBoostConfig((B.CalibrateStage(batches=1, batch_size=32, max_rows=64, iters=2),
                            *[B.TrainStage(n, epochs=0, lr=1e-3, skip=True, **({"mode": "quant"} if n == "lut_qat"
                                                                                 else {}))
                              for n in B.STAGE_NAMES[1:]]))
    lut, rep = lutnb.lutboost(m, data, data, v=4, c=4, stages=cfg, progress=False)  # no test split
    assert [n for n, _ in lut_layers(lut)] == ["fc1", "fc2"]
    assert set(rep.float_layers) == {"f1", "f2", "out"}  # the unconvertible Conv1d counted as float too
    assert rep.float_mac_share > 0.5
    text = str(rep)  # printing a report without test= works and says so
    assert "no test split given" in text and "validation accuracy" in text
    with pytest.raises(TypeError, match="train= is a DataLoader.*loader.dataset"):
        lutnb.lutboost(m, DataLoader(data, batch_size=8), data, stages=cfg, progress=False)
    only_conv1d = nn.Sequential(nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 3, 6), nn.Flatten())
    with pytest.raises(ValueError, match="no layer of the model can become a LUT layer.*Conv1d"):
        lutnb.lutboost(only_conv1d, data, data, stages=cfg, progress=False)
