"""lutnb.boosting: stage configs validate, LUTBoost runs and reports, resume is exact, tricks behave."""
import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import lutnb
from lutnb import boosting as B
from lutnb.boosting import runner, steps
from lutnb.vq.layers import lut_layers


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 1, 6, 6, generator=g) * 0.3
    x[:, 0, :3, :3] += (y == 0).float()[:, None, None] * 1.5
    x[:, 0, 3:, 3:] += (y == 1).float()[:, None, None] * 1.5
    x[:, 0, :3, 3:] += (y == 2).float()[:, None, None] * 1.5
    return TensorDataset(x, y)




def _cfg(epochs=1):
    return B.LUTBoostConfig((
        B.CalibrateStage(batches=2, batch_size=32, max_rows=256, iters=5),
        B.TrainStage("centroids", epochs=epochs, lr=1e-2, train_weights=False, recon_weight=1.0, batch_size=32),
        B.TrainStage("joint", epochs=epochs, lr=1e-3, recon_weight=1.0, distill_weight=1.0, dead_restart=True,
                     batch_size=32),
        B.TrainStage("lut_qat", epochs=epochs, lr=1e-4, mode="quant", batch_size=32),
    ))


def test_stage_configs_validate():
    with pytest.raises(ValueError, match="epochs"):
        B.TrainStage("joint", epochs=-1, lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        B.TrainStage("joint", epochs=1, lr=0.0)
    with pytest.raises(ValueError, match="mode"):
        B.TrainStage("joint", epochs=1, lr=1e-3, mode="soft")
    with pytest.raises(ValueError, match="name"):
        B.TrainStage("warmup", epochs=1, lr=1e-3)
    with pytest.raises(ValueError, match="loss weights"):
        B.TrainStage("joint", epochs=1, lr=1e-3, task_weight=0.0)
    with pytest.raises(ValueError, match="table_bits"):
        B.TrainStage("lut_qat", epochs=1, lr=1e-3, table_bits=2)
    with pytest.raises(ValueError, match="temperature"):
        B.TrainStage("joint", epochs=1, lr=1e-3, temperature=(1.0, -1.0))
    with pytest.raises(ValueError, match="batches"):
        B.CalibrateStage(batches=0)
    with pytest.raises(ValueError, match="order"):
        B.LUTBoostConfig(tuple(reversed(B.LUTBoostConfig().stages)))
    cfg = B.LUTBoostConfig()
    assert cfg.total_epochs == sum(s.epochs for s in cfg.stages)
    assert cfg.with_stage("joint", epochs=1).stages[2].epochs == 1
    assert cfg.scaled(0.01).total_epochs == 3  # every training stage keeps at least one epoch
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stages[1].epochs = 5  # frozen


def test_lutboost_runs_and_reports(trained, tmp_path):
    data = _data(seed=1)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    lut, rep = lutnb.lutboost(trained, data, data, v=4, c=8, metric="l1", stages=_cfg(), seed=0, test=data,
                              progress=False, track_test=True)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())  # input untouched
    names = [n for n, _ in lut_layers(lut)]
    assert names == ["conv2"]  # skip="auto": the first (conv1) and the last (fc) layer called stay float
    assert set(rep.float_layers) == {"conv1", "fc"} and 0 < rep.float_mac_share < 0.5
    assert all(m.mode == "quant" for _, m in lut_layers(lut))
    assert [s.stage for s in rep.stages] == list(B.STAGE_NAMES)
    assert rep.total_epochs == 3 and len(rep.epoch_curve()) == 4
    for s in rep.stages:
        assert set(s.layers) == {"conv2"}
        for d in s.layers.values():
            assert 0.0 <= d["recon_rel"] < 1.0
            assert 0.0 <= d["entropy_bits"] <= 3.0 + 1e-9
            assert 0 <= d["dead_centroids"] <= d["S"] * d["c"]
    assert rep.final_acc == pytest.approx(B.accuracy(lut, data, "quant"))
    assert rep.fp32_test_acc > 85.0 and rep.final_acc > 60.0
    df = rep.to_frame()
    assert list(df.index) == list(B.STAGE_NAMES)
    assert {"test_acc_int8", "recon_rel", "entropy_bits", "dead_centroids", "seconds"} <= set(df.columns)
    assert "final INT8 test accuracy" in str(rep)
    d = json.loads(json.dumps(rep.to_dict()))
    assert B.LUTBoostReport.from_dict(d).final_acc == rep.final_acc
    assert not rep.layer_frame().empty


def test_killed_run_resumes_to_identical_result(trained, tmp_path):
    data = _data(seed=2)
    kw = dict(v=4, c=8, metric="chebyshev", stages=_cfg(), seed=3, test=data, progress=False)
    lut_a, rep_a = lutnb.lutboost(trained, data, data, checkpoint_dir=tmp_path / "a", **kw)

    class Killed(RuntimeError):
        pass

    def kill(stage, model, report):
        if stage == "centroids":
            raise Killed

    with pytest.raises(Killed):
        lutnb.lutboost(trained, data, data, checkpoint_dir=tmp_path / "b", callback=kill, **kw)
    assert (tmp_path / "b" / "stage1_centroids.pt").exists()
    assert not (tmp_path / "b" / "stage2_joint.pt").exists()
    lut_b, rep_b = lutnb.lutboost(trained, data, data, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    assert rep_b.resumed_from.endswith("stage1_centroids.pt")
    assert rep_b.final_acc == rep_a.final_acc
    sa, sb = lut_a.state_dict(), lut_b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [s.stage for s in rep_b.stages] == list(B.STAGE_NAMES)
    # a checkpoint from another configuration is refused
    with pytest.raises(B.ResumeMismatchError):
        lutnb.lutboost(trained, data, data, checkpoint_dir=tmp_path / "b", resume=True,
                       **{**kw, "seed": 4})
    with pytest.raises(ValueError, match="checkpoint_dir"):
        lutnb.lutboost(trained, data, data, resume=True, **kw)


def test_single_stage_baseline_same_api(trained):
    data = _data(seed=1)
    lut, rep = lutnb.single_stage(trained, data, data, v=4, c=8, metric="l2", epochs=2, lr=1e-3, seed=0,
                                  test=data, progress=False,
                                  calibrate_stage=B.CalibrateStage(batches=2, max_rows=256, iters=5,
                                                                   sequential=False, bn_reestimate=False))
    assert rep.method == "single_stage"
    assert [s.skipped for s in rep.stages] == [False, True, False, True]
    assert rep.total_epochs == 2 and rep.final.stage == rep.selected_stage in ("calibrate", "joint")
    assert rep.final_acc == pytest.approx(B.accuracy(lut, data, "quant"))


def test_restart_dead_centroids_moves_only_dead():
    layer = lutnb.LUTLinear(8, 4, v=4, c=4)
    before = layer.codebooks.detach().clone()
    counts = torch.tensor([[5, 0, 1, 0], [0, 3, 3, 9]])
    n = B.restart_dead_centroids(layer, counts, torch.Generator().manual_seed(0))
    assert n == 3
    after = layer.codebooks.detach()
    alive = counts > 0
    assert torch.equal(after[alive], before[alive])
    assert torch.allclose(after[0, 1], before[0, 0], atol=0.05)  # split from the busiest centroid
    assert torch.allclose(after[1, 0], before[1, 3], atol=0.05)
    assert not torch.equal(after[0, 1], after[0, 3])  # two restarts differ (noise)


def test_reestimate_batchnorm_matches_data_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    x = torch.randn(200, 3) * 3 + 1
    ds = TensorDataset(x, torch.zeros(200, dtype=torch.long))
    assert B.reestimate_batchnorm(model, ds, batches=10, batch_size=200) == 1
    h = model[0](x).detach()
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(model[1].running_var, h.var(0), rtol=1e-4)
    assert not model.training and not model[1].training  # modes restored


def test_layer_stats_exact_codebook_has_no_error():
    layer = lutnb.LUTLinear(2, 3, v=1, c=2)
    with torch.no_grad():
        layer.codebooks.copy_(torch.tensor([[[0.0], [1.0]], [[0.0], [1.0]]]))
        layer.calibrated.fill_(True)
    x = torch.randint(0, 2, (32, 2)).float()
    st = runner.layer_stats(nn.Sequential(layer), TensorDataset(x, torch.zeros(32, dtype=torch.long)))
    d = st["0"]
    assert d["recon_rel"] == 0.0 and d["dead_centroids"] == 0
    assert 0.9 < d["entropy_bits"] <= 1.0


def test_select_best_keeps_the_best_validation_epoch(trained, monkeypatch):
    data = _data(seed=4)
    lut = runner.prepare_model(trained, 4, 8, "l2", ("conv1",), None, 8, "channel")
    lutnb.calibrate(lut, [data.tensors[0][:64]], max_rows=256, iters=5, sequential=True)
    scripted = iter([50.0, 90.0, 70.0])  # validation accuracy of epochs 1, 2, 3: epoch 2 is the best

    def fake_accuracy(model, dataset, mode=None, batch_size=512):
        return next(scripted)

    monkeypatch.setattr(steps, "accuracy", fake_accuracy)  # run_train_stage looks it up there
    snaps = {}

    def snapshot(stage, rec):
        snaps[rec["epoch"]] = {k: v.clone() for k, v in lut.state_dict().items()}

    st = B.TrainStage("joint", epochs=3, lr=5e-2, recon_weight=1.0, batch_size=32, select_best=True)
    hist = steps.run_train_stage(lut, None, st, data, data, None, seed=0, progress=False, track_test=False,
                                 on_epoch=snapshot)
    assert [h["selected"] for h in hist] == [False, True, False]
    final = lut.state_dict()
    assert all(torch.equal(final[k], snaps[2][k]) for k in final)
    assert not all(torch.equal(final[k], snaps[3][k]) for k in final)  # epoch 3 did change the model


def test_calibrate_bn_per_layer_fits_later_layers_to_fresh_statistics(trained):
    data = _data(seed=5)
    skip_train = [B.TrainStage(n, epochs=0, lr=1e-3, skip=True, **({"mode": "quant"} if n == "lut_qat" else {}))
                  for n in B.STAGE_NAMES[1:]]
    errs = {}
    for per_layer in (False, True):
        cfg = B.LUTBoostConfig((B.CalibrateStage(batches=3, batch_size=32, max_rows=512, iters=8,
                                                 bn_per_layer=per_layer), *skip_train))
        with warnings.catch_warnings():
            # no layer may run uncalibrated while BatchNorm statistics are taken
            warnings.filterwarnings("error", message=".*never calibrated")
            lut, rep = lutnb.lutboost(trained, data, data, v=4, c=8, metric="l2", stages=cfg, seed=0,
                                      progress=False, skip=("conv1",))
        assert all(bool(m.calibrated) for _, m in lut_layers(lut))
        errs[per_layer] = rep.stages[0].layers["fc"]["recon_rel"]
    # the first LUT layer (conv2) sees the same inputs either way; fc sees bn2 re-estimated after conv2's LUT
    assert errs[True] < errs[False]
