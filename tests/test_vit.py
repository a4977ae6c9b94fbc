"""lutnb.vit: the tiny ViT for digits, its LUT conversion, engine equality and workloads."""
import torch
from torch import nn

import lutnb
from lutnb import vit
from lutnb.layers import lut_layers, set_mode


def _model(seed=0):
    torch.manual_seed(seed)
    return vit.vit_digits().eval()


def test_shapes_and_patches():
    m = _model()
    x = torch.randn(3, 1, 8, 8)
    assert m(x).shape == (3, 10)
    p = m.patches(x)
    assert p.shape == (3, 16, 4)
    torch.testing.assert_close(p[0, 0], x[0, 0, :2, :2].reshape(-1))  # first patch = top-left 2x2
    torch.testing.assert_close(p[0, 1], x[0, 0, :2, 2:4].reshape(-1))


def test_only_plain_linears_no_multihead_attention():
    m = _model()
    assert not any(isinstance(x, nn.MultiheadAttention) for x in m.modules())
    lm = lutnb.convert(m, 4, 16, "l2", skip=["patch_embed"])
    conv = {r.name for r in lm.lut_summary.converted}
    per_block = {"attn.q", "attn.k", "attn.v", "attn.proj", "fc1", "fc2"}
    assert conv == {f"blocks.{i}.{n}" for i in range(3) for n in per_block} | {"head"}
    assert {r.name for r in lm.lut_summary.left_alone} == {"patch_embed"}


def test_modes_and_integer_engine():
    m = _model()
    lm = lutnb.convert(m, 4, 8, "l1", skip=["patch_embed"])
    x = torch.randn(16, 1, 8, 8)
    lutnb.calibrate(lm, [x], iters=4)
    with torch.no_grad():
        for mode in ("exact", "lut", "soft", "quant"):
            set_mode(lm, mode)
            assert torch.isfinite(lm(x)).all()
        set_mode(lm, "exact")
        torch.testing.assert_close(lm(x), m(x))
        set_mode(lm, "quant")
        assert torch.equal(lm(x), lutnb.IntegerEngine(lm, acc_bits=None)(x))


def test_block_refit_on_vit():
    from lutnb.transformers import block_refit

    m = _model()
    lm = lutnb.convert(m, 4, 8, "l2", skip=["patch_embed", "head"])
    stats = block_refit(lm, m, [torch.randn(32, 1, 8, 8) for _ in range(2)], blocks="blocks", iters=4)
    assert len([k for k in stats if not k.startswith("_")]) == 18
    assert all(bool(x.calibrated) for _, x in lut_layers(lm))


def test_random_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(vit.random_shift(x, 0, g), x)
    y = vit.random_shift(x, 1, g)
    assert y.shape == x.shape


def test_train_vit_lowers_loss_and_workloads():
    from torch.utils.data import TensorDataset

    from lutnb.transformers import transformer_workloads

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()
    m = _model()
    losses = vit.train_vit(m, TensorDataset(x, y), epochs=6, lr=3e-3, warmup_epochs=1, max_shift=0)
    assert losses[-1] < losses[0]
    works = transformer_workloads(m, torch.zeros(1, 1, 8, 8))
    dense = [w for w in works if w.kind == "attention_dense"]
    assert len(dense) == 3 * 4 * 2 and {(w.M, w.K, w.N) for w in dense} == {(16, 16, 16)}
    assert len([w for w in works if w.kind == "linear"]) == 3 * 6 + 2
