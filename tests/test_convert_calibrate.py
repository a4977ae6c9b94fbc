import pytest
import torch
import torch.nn as nn

import lutnb
from lutnb.vq.calibration import kmeans
from lutnb.vq.layers import LUTConv2d, LUTLinear, lut_layers


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.block = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU())
        self.emb = nn.Embedding(5, 3)
        self.head = nn.Linear(12, 10)  # K=12 with v=5 -> padded to 15

    def forward(self, x):
        h = self.block(self.dw(torch.relu(self.conv1(x))))
        return self.head(h.mean((2, 3)))


def test_convert_replaces_skips_and_reports():
    model = Tiny()
    lm = lutnb.convert(model, v=5, c=8, metric="l1", skip=["conv1"], overrides={"head": {"v": 3, "c": 4}})
    assert isinstance(model.head, nn.Linear) and not isinstance(model.head, LUTLinear)  # original untouched
    names = dict(lut_layers(lm))
    assert set(names) == {"block.0", "head"}
    assert isinstance(lm.block[0], LUTConv2d) and lm.block[0].v == 5 and lm.block[0].metric == "l1"
    assert lm.head.v == 3 and lm.head.c == 4 and lm.head.S == 4
    rep = {r.name: r for r in lm.lut_summary.layers}
    assert rep["conv1"].status == "skipped"
    assert rep["dw"].status == "unsupported" and "groups=8" in rep["dw"].reason
    assert rep["emb"].status == "unsupported"
    assert rep["head"].equivalent_bits == pytest.approx(2 / 3)
    assert rep["head"].table_bytes == 4 * 4 * 10
    assert "converted" in str(lm.lut_summary)
    # weights copied
    torch.testing.assert_close(lm.head.weight, model.head.weight)


def test_convert_linear_with_k_not_multiple_of_v():
    model = nn.Sequential(nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 3))
    lm = lutnb.convert(model, v=4, c=16)
    assert lm[0].S == 3 and lm[0].K_padded == 12 and lm[2].S == 2
    x = torch.randn(64, 10)
    lutnb.calibrate(lm, [x])
    with torch.no_grad():
        y = lm(x)
        lutnb.set_mode(lm, "exact")
        torch.testing.assert_close(lm(x), model(x))
    assert y.shape == (64, 3) and torch.isfinite(y).all()


def test_convert_glob_patterns_and_errors():
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), nn.Linear(4, 2))
    lm = lutnb.convert(model, v=2, c=4, skip=["0.*"])
    assert [n for n, _ in lut_layers(lm)] == ["1"]
    with pytest.raises(ValueError, match="matches no module"):
        lutnb.convert(model, skip=["nope"])
    with pytest.raises(ValueError, match="unknown keys"):
        lutnb.convert(model, overrides={"1": {"w": 3}})
    with pytest.raises(ValueError, match="v=0"):
        lutnb.convert(model, v=0)


def test_convert_leaves_multihead_attention_whole():
    model = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    lm = lutnb.convert(model, v=2, c=4)
    converted = {n for n, _ in lut_layers(lm)}
    assert converted == {"linear1", "linear2"}
    assert any(r.name == "self_attn.out_proj" and r.status == "unsupported" for r in lm.lut_summary.layers)


def test_kmeans_is_deterministic_and_fits_clusters():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0], [5.0, -5.0]])
    x = (centers[torch.randint(0, 4, (400,), generator=g)] + 0.1 * torch.randn(400, 2, generator=g))
    for metric in ("l2", "l1", "chebyshev"):
        a = kmeans(x, 4, metric, seed=3)
        b = kmeans(x, 4, metric, seed=3)
        assert torch.equal(a, b)
        found = sorted(map(tuple, a.round().tolist()))
        assert found == sorted(map(tuple, centers.tolist())), metric


def test_kmeans_handles_fewer_distinct_points_than_k():
    x = torch.tensor([[0.0], [1.0], [0.0], [1.0]]).expand(4, 1)
    cb = kmeans(x.unsqueeze(0), 3, "l2")
    assert cb.shape == (1, 3, 1) and torch.isfinite(cb).all()


def test_calibrate_sets_codebooks_and_reports():
    torch.manual_seed(0)
    model = Tiny()
    lm = lutnb.convert(model, v=4, c=8, skip=["conv1"])
    batches = [(torch.randn(16, 1, 8, 8), torch.zeros(16)) for _ in range(3)]
    stats = lutnb.calibrate(lm, batches)
    assert set(stats) >= {"block.0", "head"}
    for name, layer in lut_layers(lm):
        assert bool(layer.calibrated)
        assert stats[name]["entropy_bits"] > 1.0
    # calibration lowers the LUT error relative to random codebooks
    x = batches[0][0]
    with torch.no_grad():
        lutnb.set_mode(lm, "exact")
        exact = lm(x)
        lutnb.set_mode(lm, "lut")
        err_cal = (lm(x) - exact).pow(2).mean()
        fresh = lutnb.convert(model, v=4, c=8, skip=["conv1"])
        for _, layer in lut_layers(fresh):
            layer.calibrated.fill_(True)
        err_rand = (fresh(x) - exact).pow(2).mean()
    assert err_cal < 0.5 * err_rand
    with pytest.raises(ValueError, match="no LUT layers"):
        lutnb.calibrate(model, batches)


def test_sequential_calibration_runs():
    torch.manual_seed(0)
    lm = lutnb.convert(Tiny(), v=4, c=8, skip=["conv1"])
    stats = lutnb.calibrate(lm, [torch.randn(8, 1, 8, 8)], sequential=True)
    assert all(bool(m.calibrated) for _, m in lut_layers(lm)) and "head" in stats


def test_fast_cluster_median_equals_nanmedian_reference():
    from lutnb.vq.calibration import cluster_median

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 101, 4, generator=g)
    assign = torch.randint(0, 4, (3, 101), generator=g)  # cluster 4 of 5 stays empty
    cent = torch.full((3, 5, 4), 7.0)
    got = cluster_median(x, assign, 5, cent)
    for j in range(5):
        ref = torch.where((assign == j).unsqueeze(-1), x, torch.tensor(float("nan"))).nanmedian(1).values
        ref = torch.where(torch.isnan(ref), cent[:, j], ref)
        assert torch.equal(got[:, j], ref), j
