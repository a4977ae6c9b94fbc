"""lutnb.zoo.vit: the tiny ViT for digits, its LUT conversion, engine equality and workloads."""
import torch
from torch import nn

import lutnb
from lutnb.vq.layers import lut_layers, set_mode
from lutnb.zoo import train, vit


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
    from lutnb.boosting.refit import block_refit

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

    from lutnb.codesign.workloads import transformer_workloads

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()
    m = _model()
    losses = train.train_vit(m, TensorDataset(x, y), epochs=6, lr=3e-3, warmup_epochs=1, max_shift=0)
    assert losses[-1] < losses[0]
    works = transformer_workloads(m, torch.zeros(1, 1, 8, 8))
    dense = [w for w in works if w.kind == "attention_dense"]
    hd = m.patch_embed.out_features // 4  # head dim: 16 tokens, 4 heads
    assert len(dense) == 3 * 4 * 2 and {(w.M, w.K, w.N) for w in dense} == {(16, hd, 16), (16, 16, hd)}
    assert len([w for w in works if w.kind == "linear"]) == 3 * 6 + 2


def test_greedy_groups_puts_correlated_channels_together():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(500, 4, generator=g)
    # channel j is a noisy copy of signal j % 4: the groups of 4 must be {j, j+4, j+8, j+12}
    x = torch.cat([base + 0.05 * torch.randn(500, 4, generator=g) for _ in range(4)], 1)
    p = vit.greedy_groups(x, 4)
    assert sorted(p.tolist()) == list(range(16))
    groups = {frozenset(int(i) % 4 for i in p[k:k + 4]) for k in range(0, 16, 4)}
    assert groups == {frozenset({0}), frozenset({1}), frozenset({2}), frozenset({3})}


def test_regroup_channels_keeps_the_function():
    m = _model()
    x = torch.randn(32, 1, 8, 8)
    m2 = vit.regroup_channels(m, x, 4)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), m(x), atol=1e-4, rtol=1e-4)
    # really permuted (the original is untouched), and only permuted: same rows of fc1, same LN values
    assert not torch.equal(m2.blocks[0].fc1.weight, m.blocks[0].fc1.weight)
    a, b = m.blocks[0].fc1.weight, m2.blocks[0].fc1.weight
    assert torch.equal(a.sort(0).values.sort(1).values, b.sort(0).values.sort(1).values)
    torch.testing.assert_close(m2.norm.weight.sort().values, m.norm.weight.sort().values)
    # a local regrouping (no residual permutation) leaves the residual stream alone
    m3 = vit.regroup_channels(m, x, 4, residual=False)
    assert torch.equal(m3.patch_embed.weight, m.patch_embed.weight)
    with torch.no_grad():
        torch.testing.assert_close(m3(x), m(x), atol=1e-4, rtol=1e-4)


def _distill_setup():
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()
    teacher = _model()
    train.train_vit(teacher, TensorDataset(x[:64], y[:64]), epochs=3, lr=3e-3, warmup_epochs=1, max_shift=0)
    lm = lutnb.convert(teacher, 4, 8, "l2", skip=["patch_embed"])
    lutnb.calibrate(lm, [x[:64]], iters=4)
    return teacher, lm, TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:])


def test_distill_classifier_selects_the_best_validation_epoch():
    from lutnb.boosting import accuracy
    from lutnb.boosting.distill import distill_classifier

    teacher, lm, train, val = _distill_setup()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    hist = distill_classifier(lm, teacher, train, val, epochs=3, quant_epochs=1, lr=2e-3, batch_size=16,
                              feature_weight=5.0, layer_feature_weight=1.0, anchor_weight=1.0)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert [h["mode"] for h in hist] == ["lut"] * 3 + ["quant"]
    assert all(h["feat"] > 0 and torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    chosen = [h for h in hist if h["selected"]]
    assert len(chosen) == 1 and chosen[0]["val_acc"] == max(h["val_acc"] for h in hist)
    assert accuracy(lm, val, "quant") == chosen[0]["val_acc"]  # the selected state is the one kept
    assert all(m.mode == "quant" for _, m in lut_layers(lm))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # teacher untouched


def test_distill_classifier_ema_and_argument_checks():
    import pytest

    from lutnb.boosting import accuracy
    from lutnb.boosting.distill import distill_classifier

    teacher, lm, train, val = _distill_setup()
    hist = distill_classifier(lm, teacher, train, val, epochs=2, quant_epochs=0, batch_size=16, ema=0.9)
    chosen = [h for h in hist if h["selected"]]
    assert len(chosen) == 1 and accuracy(lm, val, "quant") == chosen[0]["val_acc"]
    with pytest.raises(ValueError, match="val"):
        distill_classifier(lm, teacher, train, None, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        distill_classifier(lm, teacher, train, val, epochs=0, quant_epochs=0)
    with pytest.raises(ValueError, match="ema"):
        distill_classifier(lm, teacher, train, val, epochs=1, ema=1.0)
    with pytest.raises(ValueError, match="backward"):
        distill_classifier(lm, teacher, train, val, epochs=1, backward="nope")


def test_train_vit_activation_noise_is_training_only():
    import pytest
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()
    a, b = _model(), _model()
    la = train.train_vit(a, TensorDataset(x, y), epochs=2, lr=3e-3, warmup_epochs=1, max_shift=0)
    lb = train.train_vit(b, TensorDataset(x, y), epochs=2, lr=3e-3, warmup_epochs=1, max_shift=0, act_noise=0.5)
    assert la != lb  # the noise changed the training
    assert not any(m._forward_pre_hooks for m in b.modules())  # and is gone afterwards
    with torch.no_grad():
        assert torch.equal(b(x), b(x))  # evaluation is deterministic
    with pytest.raises(ValueError, match="act_noise"):
        train.train_vit(_model(), TensorDataset(x, y), epochs=1, act_noise=-0.1)
