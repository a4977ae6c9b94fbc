"""lutnb.compile: the fast CPU inference path equals the reference integer engine bit for bit, layer by layer."""
import pytest
import torch
import torch.nn as nn

import lutnb
from lutnb.deploy import compiled_model, engine
from lutnb.kernels import compiled as ckernel

pytest.importorskip("numba")


class Tok(nn.Module):
    """A Linear on 3-D input (B, T, K), the transformer case."""

    def __init__(self, k=10, n=7):
        super().__init__()
        self.fc = nn.Linear(k, n)
        self.out = nn.Linear(n, 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)))


def _convert(model, x, v=4, c=16, layout="channel", seed=0):
    torch.manual_seed(seed)
    lm = lutnb.convert(model, v=v, c=c, layout=layout)
    lutnb.calibrate(lm, [x], max_rows=512, iters=3)
    return lm.eval()


def _outputs(engine_model, kind, x):
    """(final output, {layer name: its output}) of an engine, hooks on its LUT layers of the given kind."""
    got, hooks = {}, []
    for n, m in engine_model.model.named_modules():
        if isinstance(m, kind):
            hooks.append(m.register_forward_hook(lambda mod, i, o, n=n: got.__setitem__(n, o.detach().clone())))
    try:
        y = engine_model(x)
    finally:
        for h in hooks:
            h.remove()
    return y, got


def _assert_same_per_layer(lm, x):
    ref_y, ref = _outputs(engine.IntegerEngine(lm, impl="reference"), engine.EngineLayer, x)
    cm = lutnb.compile(lm)
    y, got = _outputs(cm, compiled_model.FastLayer, x)
    assert set(got) == set(ref) and got
    for n in ref:
        assert got[n].shape == ref[n].shape, n
        assert torch.equal(got[n], ref[n]), f"layer {n} differs from the reference engine"
    assert torch.equal(y, ref_y)
    return cm


CASES = {
    "strided_padded_first_conv_c3": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                                           nn.Conv2d(8, 6, 3, stride=2, padding=2)), (3, 9, 9)),
    "first_conv_c1_k_not_multiple_of_v": (lambda: nn.Sequential(nn.Conv2d(1, 5, 3, padding=1)), (1, 8, 8)),
    "conv_1x1_and_1x1_stride2": (lambda: nn.Sequential(nn.Conv2d(6, 8, 1), nn.ReLU(), nn.Conv2d(8, 4, 1, stride=2)),
                                 (6, 7, 7)),
    "dilated_conv": (lambda: nn.Sequential(nn.Conv2d(4, 8, 3, padding=2, dilation=2)), (4, 9, 9)),
    "linear_3d": (lambda: Tok(10, 7), (5, 10)),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 70])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layers_equal_reference(case, batch, threads):
    make, shape = CASES[case]
    torch.manual_seed(1)
    x = torch.randn(batch, *shape)
    lm = _convert(make(), torch.randn(64, *shape))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cm = _assert_same_per_layer(lm, x)
    finally:
        torch.set_num_threads(old)
    if ckernel.available():  # the compiled kernel ran every layer (no silent fallback)
        assert all(m.calls["kernel"] and not m.calls["fallback"] for m in cm.fast_layers().values())


def test_patch_layout_and_other_v():
    x = torch.randn(4, 3, 8, 8)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 3)), x, v=3, c=8,
                  layout="patch")
    _assert_same_per_layer(lm, x)


def test_fallback_without_compiled_kernel_equals_reference(monkeypatch):
    x = torch.randn(3, 3, 8, 8)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)), x)
    monkeypatch.setenv("LUTNB_CKERNEL", "0")
    cm = _assert_same_per_layer(lm, x)
    assert all(m.calls["fallback"] and not m.calls["kernel"] for m in cm.fast_layers().values())
    monkeypatch.setenv("LUTNB_NATIVE", "0")
    _assert_same_per_layer(lm, x)


def test_wide_tables_fall_back_equal():
    x = torch.randn(3, 3, 6, 6)
    torch.manual_seed(0)
    lm = lutnb.convert(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1)), v=4, c=16, table_bits=12)
    lutnb.calibrate(lm, [x])
    cm = _assert_same_per_layer(lm.eval(), x)
    assert all(m.calls["fallback"] for m in cm.fast_layers().values())


def test_nan_rows_follow_the_reference():
    x = torch.randn(2, 3, 6, 6)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x)
    x[1, 2, 3, 3] = float("nan")
    want = engine.IntegerEngine(lm, impl="reference")(x)
    got = lutnb.compile(lm)(x)
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.isnan(got).any()
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(want))


def test_buffers_follow_batch_size():
    x = torch.randn(8, 3, 6, 6)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x)
    cm, ref = lutnb.compile(lm), engine.IntegerEngine(lm, impl="reference")
    for b in (8, 1, 8, 3):
        assert torch.equal(cm(x[:b]), ref(x[:b]))


@pytest.mark.parametrize("name", ["digits_cnn", "resnet20", "vit_digits"])
def test_zoo_every_layer_equal_reference(name):
    from lutnb.zoo.models import get_model

    shape = {"digits_cnn": (1, 8, 8), "resnet20": (3, 32, 32), "vit_digits": (1, 8, 8)}[name]
    torch.manual_seed(0)
    model = get_model(name).eval()
    x = torch.randn(2 if name == "resnet20" else 16, *shape)
    lm = _convert(model, x)
    _assert_same_per_layer(lm, x)


def test_bad_input_names_the_field():
    x = torch.randn(2, 3, 6, 6)
    cm = lutnb.compile(_convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x))
    with pytest.raises(ValueError, match="in_channels=3"):
        cm(torch.randn(2, 5, 6, 6))
    cm2 = lutnb.compile(_convert(Tok(10, 7), torch.randn(8, 5, 10)))
    with pytest.raises(ValueError, match="in_features=10"):
        cm2(torch.randn(2, 5, 9))
