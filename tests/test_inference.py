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


def _assert_same_per_layer(lm, x, encode="float32"):
    ref_y, ref = _outputs(engine.IntegerEngine(lm, impl="reference", encode=encode), engine.EngineLayer, x)
    cm = lutnb.compile(lm, encode=encode, fuse=False)  # per-layer outputs (fused chains have no LUT-layer output)
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


@pytest.mark.parametrize("encode", ["float32", "int8"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 70])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layers_equal_reference(case, batch, threads, encode):
    make, shape = CASES[case]
    torch.manual_seed(1)
    x = torch.randn(batch, *shape)
    lm = _convert(make(), torch.randn(64, *shape))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cm = _assert_same_per_layer(lm, x, encode)
    finally:
        torch.set_num_threads(old)
    if ckernel.available():  # the compiled kernel ran every layer (no silent fallback)
        assert all(m.calls["kernel"] and not m.calls["fallback"] for m in cm.fast_layers().values())


@pytest.mark.parametrize("encode", ["float32", "int8"])
def test_patch_layout_and_other_v(encode):
    x = torch.randn(4, 3, 8, 8)
    for v, c, layout in ((3, 8, "patch"), (2, 16, "channel"), (5, 4, "channel")):
        lm = _convert(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 3)), x, v=v, c=c,
                      layout=layout)
        _assert_same_per_layer(lm, x, encode)


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


@pytest.mark.parametrize("encode", ["float32", "int8"])
def test_nan_rows_follow_the_reference(encode):
    x = torch.randn(2, 4, 6, 6)
    lm = _convert(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1)), x)
    x[1, 2, 3, 3] = float("nan")
    x[0, 1, 2, 2] = float("inf")
    want = engine.IntegerEngine(lm, impl="reference", encode=encode)(x)
    got = lutnb.compile(lm, encode=encode)(x)
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.isnan(got).any()
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(want))


def test_buffers_follow_batch_size():
    x = torch.randn(8, 3, 6, 6)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x)
    cm, ref = lutnb.compile(lm), engine.IntegerEngine(lm, impl="reference")
    for b in (8, 1, 8, 3):
        assert torch.equal(cm(x[:b]), ref(x[:b]))


@pytest.mark.parametrize("encode", ["float32", "int8"])
@pytest.mark.parametrize("name", ["digits_cnn", "resnet20", "vit_digits"])
def test_zoo_every_layer_equal_reference(name, encode):
    from lutnb.zoo.models import get_model

    shape = {"digits_cnn": (1, 8, 8), "resnet20": (3, 16, 16), "vit_digits": (1, 8, 8)}[name]  # every layer kind
    torch.manual_seed(0)
    model = get_model(name).eval()
    x = torch.randn(2 if name == "resnet20" else 6, *shape)
    lm = _convert(model, x)
    _assert_same_per_layer(lm, x, encode)


def test_bad_input_names_the_field():
    x = torch.randn(2, 3, 6, 6)
    cm = lutnb.compile(_convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x))
    with pytest.raises(ValueError, match="in_channels=3"):
        cm(torch.randn(2, 5, 6, 6))
    cm2 = lutnb.compile(_convert(Tok(10, 7), torch.randn(8, 5, 10)))
    with pytest.raises(ValueError, match="in_features=10"):
        cm2(torch.randn(2, 5, 9))


# ------------------------------------------------------------------------------------------ the int8 encode
def test_int8_encode_is_the_nearest_quantized_centroid_and_close_to_float():
    from lutnb.deploy import q8
    from lutnb.deploy.export import export_tables

    torch.manual_seed(0)
    x = torch.randn(500, 24)
    lm = _convert(nn.Sequential(nn.Linear(24, 8)), x)
    layer = export_tables(lm)["0"]
    g = q8.grid(layer)
    assert g["cq"].abs().max() == q8.CQ_MAX
    idx = q8.encode_rows_reference(x, layer)
    xq = torch.clamp(torch.round(x / float(g["s"])), -127, 127).reshape(500, layer.S, 1, 4)
    d = ((xq - g["cq"].float()) ** 2).sum(-1)  # brute force in float (exact: small integers)
    assert torch.equal(d.gather(2, idx.unsqueeze(2)).squeeze(2), d.min(2).values)
    agree = (idx == engine.encode_rows(x, layer)).float().mean()
    assert agree > 0.85, f"int8 codes agree with the float32 codes on only {agree:.2%} of sub-vectors"


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
@pytest.mark.parametrize("portable", [False, True])
def test_c_quantize_and_im2col_equal_torch(portable):
    from lutnb.deploy import q8
    from lutnb.vq.functional import im2col

    lib = ckernel.load(portable=portable)
    g = torch.Generator().manual_seed(0)
    for s in (0.0731, 0.5, 1.0, 3.3e-3, 17.0):
        x = torch.randn(3000, 37, generator=g) * torch.rand(1, 37, generator=g) * 200 * s
        x[1, :20] = (torch.arange(20) - 10 + 0.5) * s  # half-way points: round half to even
        x[2, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
        out = torch.empty(3000, 40, dtype=torch.uint8)
        assert ckernel.quantize_u8(x, s, out[:, :37], lib=lib) is False  # it saw the NaN / inf
        assert torch.equal(out[:, :37], q8.quantize_u8(x, s)), s
        assert ckernel.quantize_u8(x[3:], s, out[3:, :37], lib=lib) is True
    xq = torch.randint(0, 256, (2, 7, 6, 8), dtype=torch.uint8, generator=g)
    for ks, st, pd, dl in (((3, 3), (1, 1), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1), (1, 1)),
                           ((1, 1), (2, 2), (0, 0), (1, 1)), ((3, 2), (1, 2), (2, 1), (2, 1))):
        K = ks[0] * ks[1] * 8
        ref = im2col(xq.permute(0, 3, 1, 2).float() - 128, ks, st, pd, dl, "channel") + 128
        out = torch.empty(ref.shape[0] * (K + 4), dtype=torch.uint8)
        rows = ckernel.im2col_u8(xq, ks, st, pd, dl, K + 4, out, lib=lib)
        assert torch.equal(rows[:, :K].float(), ref) and bool((rows[:, K:] == 128).all())


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
def test_q8_kernel_portable_equals_simd():
    import numpy as np

    from lutnb.deploy import q8
    from lutnb.deploy.export import export_tables

    torch.manual_seed(3)
    x = torch.randn(300, 40)
    layer = export_tables(_convert(nn.Sequential(nn.Linear(40, 20)), x))["0"]
    g = q8.grid(layer)
    xu = q8.quantize_u8(x, g["s"]).numpy().view(np.uint32)
    tq8 = np.ascontiguousarray(layer.table_q, np.int8)
    want = engine.quant.lookup_accumulate_reference(q8.encode_rows_reference(x, layer),
                                                    torch.as_tensor(layer.table_q), 32)
    for portable in (False, True):
        idx, acc = ckernel.fused_q8(xu, g["c2"], g["cinit"], tq8, 0, need_idx=True,
                                    lib=ckernel.load(portable=portable))
        assert torch.equal(torch.from_numpy(idx), q8.encode_rows_reference(x, layer))
        assert torch.equal(torch.from_numpy(acc), want)


def test_bad_encode_is_refused():
    x = torch.randn(4, 10)
    lm = _convert(nn.Sequential(nn.Linear(10, 3)), x)
    with pytest.raises(ValueError, match="encode='int4'"):
        lutnb.compile(lm, encode="int4")
    with pytest.raises(ValueError, match="encode='int4'"):
        engine.IntegerEngine(lm, encode="int4")


def test_channels_last_false_gives_contiguous_conv_outputs():
    x = torch.randn(2, 3, 6, 6)
    lm = _convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), x)
    want = engine.IntegerEngine(lm, impl="reference")(x)
    got, got_nchw = lutnb.compile(lm)(x), lutnb.compile(lm, channels_last=False)(x)
    assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    assert got_nchw.is_contiguous()
    assert torch.equal(got, want) and torch.equal(got_nchw, want)
    with pytest.raises(TypeError, match="channels_last"):
        lutnb.compile(lm, channels_last="no")


# ------------------------------------------------------------------------------------------ fused epilogues
class _Res(nn.Module):
    """conv-BN-ReLU, conv-BN + shortcut (1x1 conv-BN), ReLU; conv-BN (no affine), pool, Linear-ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.sc, self.bs = nn.Conv2d(3, 8, 1, bias=False), nn.BatchNorm2d(8)
        self.c3, self.b3 = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(12, affine=False)
        self.f1, self.f2 = nn.Linear(12, 9), nn.Linear(9, 4)

    def forward(self, x):
        h = torch.relu(self.b1(self.c1(x)))
        h = torch.relu(self.b2(self.c2(h)) + self.bs(self.sc(x)))
        h = self.b3(self.c3(h)).mean((2, 3))
        return self.f2(nn.functional.relu(self.f1(h)))


def _bn_stats(model):
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.1)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=g))
                m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def _fused_modules(cm):
    from lutnb.deploy.fusion import FusedLUT

    return [m for m in cm.modules() if isinstance(m, FusedLUT)]


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
@pytest.mark.parametrize("encode", ["float32", "int8"])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_epilogue_equals_reference(encode, threads):
    x = torch.randn(5, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    want = engine.IntegerEngine(lm, impl="reference", encode=encode)(x)
    cm = lutnb.compile(lm, encode=encode)
    assert cm.fused
    parts = sorted(m.extra_repr() for m in _fused_modules(cm))
    assert parts == sorted(["epilogue: bn, relu", "epilogue: bn", "epilogue: bn, +res, relu", "epilogue: bn",
                            "epilogue: relu"]), parts
    if encode == "int8":  # c1 writes c2's uint8 input
        assert sum(m.emit_for is not None for m in cm.fast_layers().values()) >= 1
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for b in (5, 1, 5):
            assert torch.equal(cm(x[:b]), want[:b])
    finally:
        torch.set_num_threads(old)


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
@pytest.mark.parametrize("encode", ["float32", "int8"])
def test_fused_portable_build_equals_reference(encode, monkeypatch):
    x = torch.randn(4, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    want = engine.IntegerEngine(lm, impl="reference", encode=encode)(x)
    real = ckernel.load
    monkeypatch.setattr(ckernel, "load", lambda portable=False: real(True))
    cm = lutnb.compile(lm, encode=encode)
    assert cm.fused and torch.equal(cm(x), want)


@pytest.mark.parametrize("encode", ["float32", "int8"])
@pytest.mark.parametrize("name", ["digits_cnn", "resnet20", "vit_digits"])
def test_zoo_fused_equal_reference(name, encode):
    from lutnb.zoo.models import get_model

    shape = {"digits_cnn": (1, 8, 8), "resnet20": (3, 16, 16), "vit_digits": (1, 8, 8)}[name]
    torch.manual_seed(0)
    model = _bn_stats(get_model(name))
    x = torch.randn(3, *shape)
    lm = _convert(model, x)
    cm = lutnb.compile(lm, encode=encode)
    if ckernel.available():
        assert cm.fused and _fused_modules(cm)
    assert torch.equal(cm(x), engine.IntegerEngine(lm, impl="reference", encode=encode)(x))


@pytest.mark.parametrize("encode", ["float32", "int8"])
def test_fused_nan_inputs_follow_the_reference(encode):
    x = torch.randn(3, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    x[1, 2, 3, 3] = float("nan")
    x[2, 0, 0, 0] = float("inf")
    want = engine.IntegerEngine(lm, impl="reference", encode=encode)(x)
    got = lutnb.compile(lm, encode=encode)(x)
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.isnan(got).any()
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(want))


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
def test_uint8_handoff_is_not_used_when_stale():
    """A conv's output carries its consumer's uint8 input; the consumer uses it only if it is that call's and
    the tensor was not changed in place since."""
    x = torch.randn(4, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    cm = lutnb.compile(lm, encode="int8")
    ref = engine.IntegerEngine(lm, impl="reference", encode="int8")
    p, c, ref_c = cm.model.c1_fused, cm.model.c2_fused.fast, ref.model.c2
    assert p.fast.emit_for is c
    xc = x.contiguous(memory_format=torch.channels_last)
    y1 = p(xc)
    y2 = p(xc[:2].contiguous(memory_format=torch.channels_last))  # overwrites c's uint8 buffer
    assert torch.equal(c(y1), ref_c(y1))  # y1's hand-off is stale (a later call wrote the buffer)
    y3 = p(xc)
    y3.mul_(0.5)  # changed in place after the hand-off
    assert torch.equal(c(y3), ref_c(y3))
    assert torch.equal(c(y2), ref_c(y2))
    used = c.calls["handoff"]
    y4 = p(xc)
    assert torch.equal(c(y4), ref_c(y4)) and c.calls["handoff"] == used + 1  # the fresh hand-off is taken


def test_fuse_false_and_untraceable_models_run_unfused():
    x = torch.randn(2, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    cm = lutnb.compile(lm, fuse=False)
    assert not cm.fused and not _fused_modules(cm)
    assert torch.equal(cm(x), engine.IntegerEngine(lm, impl="reference")(x))
    with pytest.raises(TypeError, match="fuse"):
        lutnb.compile(lm, fuse="yes")

    class Optional(nn.Module):  # an optional argument: never traced (fx would drop the None branch)
        def __init__(self):
            super().__init__()
            self.c, self.b = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x, scale=None):
            y = torch.relu(self.b(self.c(x)))
            return y if scale is None else y * scale

    lm2 = _convert(_bn_stats(Optional()), torch.randn(16, 3, 9, 9))
    cm2 = lutnb.compile(lm2)
    assert not cm2.fused
    assert torch.equal(cm2(x), engine.IntegerEngine(lm2, impl="reference")(x))


@pytest.mark.skipif(not ckernel.available(), reason="no compiled kernel")
@pytest.mark.parametrize("encode", ["float32", "int8"])
def test_two_threads_python_pool_equals_openmp_pool(encode, monkeypatch):
    """Row ranges on torch's OpenMP threads (one pool, where the library shares torch's libgomp) or on the Python
    thread pool: the same bits."""
    x = torch.randn(6, 3, 9, 9)
    lm = _convert(_bn_stats(_Res()), torch.randn(32, 3, 9, 9))
    want = engine.IntegerEngine(lm, impl="reference", encode=encode)(x)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got_shared = lutnb.compile(lm, encode=encode)(x)
        monkeypatch.setattr(ckernel, "shares_torch_pool", lambda lib: False)
        got_python = lutnb.compile(lm, encode=encode)(x)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(got_shared, want) and torch.equal(got_python, want)


def test_build_without_openmp_falls_back(monkeypatch, tmp_path):
    """A compiler without OpenMP: the library is built without it (the Python thread pool runs the row ranges)."""
    if ckernel.load() is None:
        pytest.skip("no compiled kernel")
    monkeypatch.setenv("LUTNB_CACHE", str(tmp_path))
    monkeypatch.setattr(ckernel, "OPENMP_FLAG", "-fno-such-openmp-flag")
    path = ckernel.build()
    assert path.exists() and path == ckernel.library_path(openmp=False)
