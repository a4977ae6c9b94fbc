"""lutnb.zoo.train: fit learns and is deterministic, evaluate restores the mode, checkpoints round-trip."""
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lutnb.zoo import train as T


def _blobs(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])
    x = centers[y] + 0.5 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


def test_fit_reduces_loss_and_reports_history():
    ds = _blobs()
    model = _mlp()
    hist = T.fit(model, ds, ds, epochs=5, lr=1e-2, batch_size=32, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5]
    assert set(hist[0]) >= {"epoch", "train_loss", "val_acc", "seconds", "lr"}
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["val_acc"] > 90.0
    assert T.fit(_mlp(), ds, None, epochs=1, progress=False)[0]["val_acc"] is None


def test_fit_is_deterministic():
    ds = _blobs()
    a, b, c = _mlp(0), _mlp(0), _mlp(0)
    T.fit(a, ds, epochs=2, lr=1e-2, batch_size=16, seed=1, progress=False)
    T.fit(b, ds, epochs=2, lr=1e-2, batch_size=16, seed=1, progress=False)
    T.fit(c, ds, epochs=2, lr=1e-2, batch_size=16, seed=2, progress=False)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fit_optimizers_extra_loss_and_callback(optimizer):
    ds = _blobs(64)
    model = _mlp()
    seen = []
    calls = []

    def extra(m):
        calls.append(1)
        return 0.0 * m[0].weight.sum()

    hist = T.fit(model, ds, epochs=3, lr=1e-2, batch_size=16, optimizer=optimizer, extra_loss=extra,
                 callback=lambda m, rec: seen.append(rec["epoch"]) or rec["epoch"] == 2, progress=False)
    assert seen == [1, 2] and len(hist) == 2  # callback returning True stops training
    assert len(calls) == 2 * 4


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="optimizer"):
        T.fit(_mlp(), _blobs(8), optimizer="lion", progress=False)
    with pytest.raises(ValueError, match="schedule"):
        T.fit(_mlp(), _blobs(8), schedule="step", progress=False)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_mode(training):
    model = _mlp()
    model.train(training)
    acc = T.evaluate(model, _blobs(50))
    assert 0.0 <= acc <= 100.0
    assert model.training is training and all(m.training is training for m in model.modules())


def test_checkpoint_round_trip(tmp_path):
    model = _mlp()
    path = T.save_checkpoint(model.state_dict(), tmp_path / "sub" / "m.pt")
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp files left
    other = _mlp(seed=5)
    other.load_state_dict(T.load_checkpoint(path))
    pairs = zip(model.state_dict().values(), other.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(FileNotFoundError):
        T.load_checkpoint(tmp_path / "missing.pt")


def test_pretrained_caches(tmp_path):
    m1 = T.pretrained("digits_cnn", seed=0, cache_dir=tmp_path, epochs=1, progress=False)
    path = T.checkpoint_path("digits_cnn", 0, 1, tmp_path)
    assert path.exists() and f"r{T.RECIPE_VERSION}" in path.name and not m1.training
    mtime = path.stat().st_mtime_ns
    m2 = T.pretrained("digits_cnn", seed=0, cache_dir=tmp_path, epochs=1, progress=False)
    assert path.stat().st_mtime_ns == mtime  # loaded, not retrained
    pairs = zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(ValueError, match="mnist1d_cnn"):
        T.pretrained("resnet20", cache_dir=tmp_path)


def test_recipe_validates():
    with pytest.raises(ValueError, match="Recipe.lr"):
        T.Recipe("digits_cnn", "digits", epochs=1, lr=0.0, batch_size=8)
