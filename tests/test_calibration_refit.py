"""The output refit of LUTBoost's calibration (`CalibrateStage(refit=True)`, `lutnb.boosting.refit.refit_to_teacher`)
and step budgets (`TrainStage(min_steps=)`, `LUTBoostConfig.for_data`)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

import lutnb
from lutnb import boosting as B
from lutnb.boosting.refit import refit_to_teacher, ridge_refit
from lutnb.vq.layers import lut_layers, set_mode


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 5, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(5 * 3 * 3, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.mark.parametrize("layout", ["channel", "patch"])
def test_set_weight_matrix_inverts_weight_matrix(layout):
    torch.manual_seed(0)
    lm = lutnb.convert(Net(), v=4, c=4, metric="l2", layout=layout, skip=())
    for _, layer in lut_layers(lm):
        W = torch.randn(layer.N, layer.K)
        layer.set_weight_matrix(W)
        assert torch.equal(layer.weight_matrix(), W)
        assert torch.equal(layer.matrix_of(layer.weight), W)
    with pytest.raises(ValueError, match=r"set_weight_matrix: W must be \(N, K\)"):
        layer.set_weight_matrix(torch.zeros(layer.N, layer.K + 1))


def _quantized_design(layer, rows):
    sub = layer.split(rows)
    hard = layer.hard_sub(sub, layer.encode_rows(rows)).reshape(rows.shape[0], -1)[:, :layer.K]
    return torch.cat([hard.double(), torch.ones(rows.shape[0], 1, dtype=torch.float64)], 1)


def test_ridge_refit_equals_the_explicit_ridge_problem():
    """The fast path (normal equations) against the obvious reference: lstsq on the explicit, augmented ridge
    problem  [A; sqrt(lam) I] s = [y; sqrt(lam) s0]  with A the quantized design [x_hat, 1] and s0 = [W0^T; b0]."""
    torch.manual_seed(1)
    lm = lutnb.convert(nn.Sequential(nn.Linear(10, 7)), v=4, c=4, metric="l1", skip=())
    layer = lm[0]
    rows = torch.randn(300, 10)
    lutnb.calibrate(lm, [rows], iters=5)
    target = torch.randn(300, 7).double()
    A = _quantized_design(layer, rows)
    s0 = torch.cat([layer.weight.detach().double().T, layer.bias.detach().double()[None]])
    lam = 1e-2 * float((A[:, :10] ** 2).sum(0).mean())
    eye = (lam ** 0.5) * torch.eye(11, dtype=torch.float64)
    ref = torch.linalg.lstsq(torch.cat([A, eye]), torch.cat([target, (lam ** 0.5) * s0])).solution
    stats = ridge_refit(layer, rows, target.float(), ridge=1e-2)
    assert torch.allclose(layer.weight.detach().double(), ref[:10].T, atol=1e-5)
    assert torch.allclose(layer.bias.detach().double(), ref[10], atol=1e-5)
    assert stats["recon_rel"] <= stats["recon_rel_kmeans"]


def test_refit_to_teacher_never_raises_the_output_error_and_matches_the_teacher_target():
    torch.manual_seed(2)
    teacher = Net().eval()
    x = torch.randn(64, 2, 6, 6)
    lm = lutnb.convert(teacher, v=4, c=4, metric="l2", skip=())
    lutnb.calibrate(lm, [x], iters=5, sequential=True)
    before = copy.deepcopy(lm)
    for name, _ in lut_layers(lm):
        st = refit_to_teacher(lm, teacher, name, [x], ridge=(1e-3, 1e-1))
        assert st["recon_rel"] <= st["recon_rel_kmeans"] + 1e-9 and st["ridge"] in (1e-3, 1e-1)
    # the last layer's target is the teacher's own fc2 output on the teacher's fc2 input
    got = {}
    h = teacher.fc2.register_forward_hook(lambda m, i, o: got.setdefault("y", o))
    with torch.no_grad():
        teacher(x)
    h.remove()
    feats = {}
    hs = [m.register_forward_hook(lambda m, i, o, n=n: feats.setdefault(n, o)) for n, m in
          (("after", lm.fc2), ("before", before.fc2))]
    with torch.no_grad():
        lm(x), before(x)
    for hh in hs:
        hh.remove()
    err = lambda y: float((y - got["y"]).pow(2).sum())  # noqa: E731
    assert err(feats["after"]) < err(feats["before"])
    with pytest.raises(TypeError, match="'0' is a Linear, not a LUT layer"):
        refit_to_teacher(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2)), "0", [x])


def test_calibrate_stage_refit_reports_each_layer_sequential_or_not():
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (96,), generator=g)
    x = torch.randn(96, 2, 6, 6, generator=g) + y[:, None, None, None].float()
    data = TensorDataset(x, y)
    cal = B.CalibrateStage(batches=2, batch_size=48, max_rows=256, iters=3, refit=True)
    off = B.TrainStage("centroids", epochs=0, lr=1e-3, train_weights=False, skip=True)
    cfg = B.LUTBoostConfig((cal, off, B.TrainStage("joint", epochs=0, lr=1e-3, skip=True),
                            B.TrainStage("lut_qat", epochs=0, lr=1e-4, mode="quant", skip=True)))
    _, rep = lutnb.lutboost(Net().eval(), data, data, v=4, c=4, metric="l2", skip=(), stages=cfg, progress=False)
    assert sorted(rep.refit) == ["conv1", "conv2", "fc1", "fc2"]
    assert all(r["recon_rel"] <= r["recon_rel_kmeans"] + 1e-9 for r in rep.refit.values())
    assert B.LUTBoostReport.from_dict(rep.to_dict()).refit == rep.refit
    flat = B.LUTBoostConfig((B.CalibrateStage(batches=2, batch_size=48, max_rows=256, iters=3, sequential=False),)
                            + cfg.stages[1:])
    _, rep2 = lutnb.lutboost(Net().eval(), data, data, v=4, c=4, metric="l2", skip=(), stages=flat, progress=False)
    assert sorted(rep2.refit) == sorted(rep.refit)


def test_min_steps_raises_epochs_for_small_training_sets():
    cfg = B.LUTBoostConfig().with_stage("joint", epochs=6, batch_size=64, min_steps=600)
    small = cfg.for_data(1097)  # 18 batches per epoch -> 34 epochs
    assert small.stages[2].epochs == 34 and small.stages[2].min_steps == 0
    assert small.for_data(1097) == small
    big = cfg.for_data(10_000)  # 157 batches: 6 epochs are 942 steps already
    assert big.stages[2].epochs == 6
    assert cfg.scaled(0.5).stages[2].min_steps == 300  # SMOKE schedules shorten the step budget too
    with pytest.raises(ValueError, match="min_steps=-1"):
        B.TrainStage("joint", epochs=1, lr=1e-3, min_steps=-1)
    with pytest.raises(ValueError, match="n_train=0"):
        cfg.for_data(0)


def test_ridge_refit_output_is_what_the_layer_computes():
    """After a refit the layer's "lut" output equals the quantized design times the solved weights."""
    torch.manual_seed(4)
    lm = lutnb.convert(nn.Sequential(nn.Linear(8, 5)), v=4, c=4, metric="chebyshev", skip=())
    layer = lm[0]
    rows = torch.randn(200, 8)
    lutnb.calibrate(lm, [rows], iters=5)
    ridge_refit(layer, rows, torch.randn(200, 5), ridge=1e-2)
    lm.eval()
    set_mode(lm, "lut")
    with torch.no_grad():
        y = layer(rows)
    A = _quantized_design(layer, rows).float()
    expect = F.linear(A[:, :8], layer.weight, layer.bias)
    assert torch.allclose(y, expect, atol=1e-5)
