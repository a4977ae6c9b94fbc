"""Bad inputs to lutnb.vq (convert, calibrate, the LUT layers, distances, k-means): one case each, a clear error
that names the argument, its value and the fix; and unusual-but-valid inputs that must work (issue 17)."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import lutnb
from lutnb.vq import distances
from lutnb.vq.calibration import kmeans
from lutnb.vq.layers import LUTConv2d, LUTLinear, set_mode


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _lut(**kw):
    lm = lutnb.convert(_mlp(), 4, 4, **kw)
    lutnb.calibrate(lm, [torch.randn(64, 8)], iters=2)
    return lm


class _Branchy(nn.Module):
    """A model whose second Linear is never called by forward."""

    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(8, 4), nn.Linear(8, 4)

    def forward(self, x):
        return self.used(x)


def _calibrate_with(x):
    lm = lutnb.convert(_mlp(), 4, 4)
    return lutnb.calibrate(lm, [x], iters=2)


def _nan_rows():
    x = torch.randn(16, 8)
    x[3, 2] = float("nan")
    return x


def _inf_rows():
    x = torch.randn(16, 8)
    x[5, 0] = float("inf")
    return x


def _tied_conv1d_model():
    from transformers.pytorch_utils import Conv1D

    m = nn.Module()
    m.a, m.b = Conv1D(8, 8), Conv1D(8, 8)
    m.b.weight = m.a.weight
    return m


X3 = torch.randn(10, 2, 4)
CB = torch.randn(2, 5, 4)

# (id, exception type, regex the message must match, call)
CASES = [
    # --- LUT layer constructors -----------------------------------------------------------------
    ("layer-v-zero", ValueError, r"v=0 is invalid.*>= 1", lambda: LUTLinear(8, 4, v=0)),
    ("layer-v-float", TypeError, r"v=2\.5 is invalid.*integer", lambda: LUTLinear(8, 4, v=2.5)),
    ("layer-v-str", TypeError, r"v='4' is invalid.*integer", lambda: LUTLinear(8, 4, v="4")),
    ("layer-c-one", ValueError, r"c=1 is invalid.*>= 2", lambda: LUTLinear(8, 4, c=1)),
    ("layer-c-bool", TypeError, r"c=True is invalid.*integer", lambda: LUTLinear(8, 4, c=True)),
    ("layer-metric", ValueError, r"metric='cosine' is not supported.*l2", lambda: LUTLinear(8, 4, metric="cosine")),
    ("layer-table-bits-low", ValueError, r"table_bits=3 is out of range.*4 to 16",
     lambda: LUTLinear(8, 4, table_bits=3)),
    ("layer-table-bits-float", ValueError, r"table_bits=8\.0 is out of range", lambda: LUTLinear(8, 4, table_bits=8.0)),
    ("layer-mode", ValueError, r"mode='fast' is not a LUT mode.*exact", lambda: LUTLinear(8, 4, mode="fast")),
    ("layer-backward", ValueError, r"backward='ste' is not supported.*soft", lambda: LUTLinear(8, 4, backward="ste")),
    ("layer-temperature-zero", ValueError, r"temperature=0 is invalid.*> 0", lambda: LUTLinear(8, 4, temperature=0)),
    ("layer-temperature-negative", ValueError, r"temperature=-1\.0 is invalid",
     lambda: LUTLinear(8, 4, temperature=-1.0)),
    ("layer-temperature-nan", ValueError, r"temperature=nan is invalid.*finite",
     lambda: LUTLinear(8, 4, temperature=float("nan"))),
    ("layer-temperature-str", TypeError, r"temperature='hot' is invalid.*number",
     lambda: LUTLinear(8, 4, temperature="hot")),
    ("layer-acc-bits", ValueError, r"acc_bits=4 is out of range.*None", lambda: LUTLinear(8, 4, acc_bits=4)),
    ("layer-zero-features", ValueError, r"K=0", lambda: LUTLinear(0, 4)),
    ("conv-layout", ValueError, r"layout='rows' is not supported.*channel", lambda: LUTConv2d(3, 4, 3, layout="rows")),
    ("conv-groups", ValueError, r"groups=2 .*not supported.*skip", lambda: LUTConv2d(4, 4, 3, groups=2)),
    ("conv-padding-same", ValueError, r"padding='same'.*explicit", lambda: LUTConv2d(4, 4, 3, padding="same")),
    ("set-mode-soft-temperature-zero", ValueError, r"temperature=0 is invalid",
     lambda: set_mode(_mlp_lut_uncal(), "soft", temperature=0)),
    ("set-mode-unknown", ValueError, r"mode='LUT' is not a LUT mode", lambda: set_mode(_mlp_lut_uncal(), "LUT")),
    ("set-mode-unknown-attr", AttributeError, r"no attribute 'tempreature'",
     lambda: set_mode(_mlp_lut_uncal(), "soft", tempreature=1.0)),
    ("from-linear-not-linear", TypeError, r"from_linear needs an nn\.Linear; got Conv2d",
     lambda: LUTLinear.from_linear(nn.Conv2d(3, 4, 3))),
    ("from-conv-not-conv", TypeError, r"from_conv needs an nn\.Conv2d; got Linear",
     lambda: LUTConv2d.from_conv(nn.Linear(3, 4))),
    # --- LUT layer inputs -------------------------------------------------------------------------
    ("input-int64-lut", TypeError, r"dtype torch\.int64.*floating-point.*x\.float\(\)",
     lambda: _lut()(torch.randint(0, 5, (3, 8)))),
    ("input-int64-exact", TypeError, r"dtype torch\.int64.*floating-point",
     lambda: set_mode(_lut(), "exact")(torch.randint(0, 5, (3, 8)))),
    ("input-bool-conv", TypeError, r"dtype torch\.bool",
     lambda: LUTConv2d(3, 4, 3, v=3, c=4)(torch.zeros(1, 3, 5, 5, dtype=torch.bool))),
    ("input-float64-into-float32-lut", TypeError, r"dtype torch\.float32\) got an input of dtype torch\.float64.*cast",
     lambda: _lut()(torch.randn(3, 8, dtype=torch.float64))),
    ("input-not-tensor", TypeError, r"expects a torch\.Tensor input; got list", lambda: _lut()[0]([1.0] * 8)),
    ("input-conv-channels", ValueError, r"4-D \(B, C=3, H, W\) input; got shape \(1, 2, 5, 5\)",
     lambda: LUTConv2d(3, 4, 3, v=3, c=4)(torch.randn(1, 2, 5, 5))),
    ("input-conv-3d", ValueError, r"4-D \(B, C=3, H, W\)", lambda: LUTConv2d(3, 4, 3, v=3, c=4)(torch.randn(3, 5, 5))),
    ("input-wrong-features", ValueError, r"K=8 features\); got shape \(2, 7\)", lambda: _lut()[0](torch.randn(2, 7))),
    # --- distances ---------------------------------------------------------------------------------
    ("encode-int-x", TypeError, r"encode: x has dtype torch\.int64.*x\.float\(\)",
     lambda: distances.encode(torch.randint(0, 3, (10, 2, 4)), CB)),
    ("encode-int-codebooks", TypeError, r"encode: codebooks has dtype torch\.int32",
     lambda: distances.encode(X3, CB.int())),
    ("encode-metric", ValueError, r"metric='cos' is not supported", lambda: distances.encode(X3, CB, "cos")),
    ("encode-shape", ValueError, r"does not match codebooks", lambda: distances.encode(torch.randn(10, 3, 4), CB)),
    ("encode-2d", ValueError, r"x must be \(M, S, v\)", lambda: distances.encode(torch.randn(10, 8), CB)),
    ("pairwise-int-x", TypeError, r"pairwise_distance: x has dtype torch\.int64",
     lambda: distances.pairwise_distance(torch.randint(0, 3, (10, 2, 4)), CB)),
    # --- k-means -----------------------------------------------------------------------------------
    ("kmeans-k-zero", ValueError, r"k=0 is invalid", lambda: kmeans(torch.randn(2, 50, 4), 0)),
    ("kmeans-iters-negative", ValueError, r"iters=-1 is invalid.*>= 0", lambda: kmeans(torch.randn(2, 50, 4), 4,
                                                                                         iters=-1)),
    ("kmeans-int-x", TypeError, r"floating-point tensor.*torch\.int64",
     lambda: kmeans(torch.randint(0, 9, (2, 50, 4)), 4)),
    ("kmeans-no-samples", ValueError, r"no samples", lambda: kmeans(torch.randn(2, 0, 4), 4)),
    # --- calibrate ---------------------------------------------------------------------------------
    ("calibrate-iters-negative", ValueError, r"iters=-1 is invalid.*>= 0",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], iters=-1)),
    ("calibrate-max-rows-zero", ValueError, r"max_rows=0 is invalid.*>= 1",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], max_rows=0)),
    ("calibrate-max-rows-float", TypeError, r"max_rows=1\.5 is invalid.*integer",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], max_rows=1.5)),
    ("calibrate-max-batches-zero", ValueError, r"max_batches=0 is invalid.*None",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], max_batches=0)),
    ("calibrate-unknown-layer", ValueError, r"layers=\['fc9'\] names no LUT layer.*valid names: \['0', '2'\]",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], layers=["fc9"])),
    ("calibrate-empty-layers", ValueError, r"layers=\[\] selects no LUT layer",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [torch.randn(8, 8)], layers=[])),
    ("calibrate-batches-int", TypeError, r"batches must be an iterable.*got int",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), 5)),
    ("calibrate-batches-str", TypeError, r"batches must be an iterable.*got str",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), "data.pt")),
    ("calibrate-no-batches", ValueError, r"got no batches", lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [])),
    ("calibrate-empty-tuple-batch", ValueError, r"batch 0 is an empty tuple",
     lambda: lutnb.calibrate(lutnb.convert(_mlp(), 4, 4), [()])),
    ("calibrate-nan-rows", ValueError, r"layer '0' received 1 input rows with NaN or inf", lambda: _calibrate_with(
        _nan_rows())),
    ("calibrate-inf-rows", ValueError, r"layer '0' received 1 input rows with NaN or inf", lambda: _calibrate_with(
        _inf_rows())),
    ("calibrate-not-converted", ValueError, r"no LUT layers: convert the model first.*float Linear",
     lambda: lutnb.calibrate(_mlp(), [torch.randn(8, 8)])),
    ("calibrate-not-a-module", TypeError, r"model must be a torch\.nn\.Module.*got dict",
     lambda: lutnb.calibrate({"fc": 1}, [torch.randn(8, 8)])),
    ("calibrate-layer-not-reached", ValueError, r"layer 'unused' received no input.*layers=",
     lambda: lutnb.calibrate(lutnb.convert(_Branchy(), 4, 4), [torch.randn(8, 8)])),
    # --- convert -----------------------------------------------------------------------------------
    ("convert-not-a-module", TypeError, r"model must be a torch\.nn\.Module; got OrderedDict",
     lambda: lutnb.convert(_mlp().state_dict())),
    ("convert-v-zero", ValueError, r"v=0 is invalid", lambda: lutnb.convert(_mlp(), 0, 16)),
    ("convert-c-str", TypeError, r"c='16' is invalid", lambda: lutnb.convert(_mlp(), 4, "16")),
    ("convert-metric", ValueError, r"metric='cosine'", lambda: lutnb.convert(_mlp(), 4, 16, "cosine")),
    ("convert-mode", ValueError, r"mode='fast' is not a LUT mode", lambda: lutnb.convert(_mlp(), mode="fast")),
    ("convert-layout-without-convs", ValueError, r"layout='rows' is not supported",
     lambda: lutnb.convert(_mlp(), layout="rows")),
    ("convert-table-bits", ValueError, r"table_bits=20 is out of range", lambda: lutnb.convert(_mlp(), table_bits=20)),
    ("convert-skip-not-str", TypeError, r"skip holds 0 \(int\)", lambda: lutnb.convert(_mlp(), skip=[0])),
    ("convert-skip-no-match", ValueError, r"pattern 'fc1' .*matches no module", lambda: lutnb.convert(_mlp(),
                                                                                                   skip=["fc1"])),
    ("convert-overrides-not-dict", TypeError, r"overrides must be a dict.*got list",
     lambda: lutnb.convert(_mlp(), overrides=[("0", {"v": 2})])),
    ("convert-override-value-not-dict", TypeError, r"overrides\['0'\] must be a dict",
     lambda: lutnb.convert(_mlp(), overrides={"0": 2})),
    ("convert-override-unknown-key", ValueError, r"unknown keys \['vv'\]",
     lambda: lutnb.convert(_mlp(), overrides={"0": {"vv": 2}})),
    ("convert-override-bad-v", ValueError, r"overrides\['0'\]: v=0 is invalid",
     lambda: lutnb.convert(_mlp(), overrides={"0": {"v": 0}})),
    ("convert-override-temperature-zero", ValueError, r"overrides\['2'\]: temperature=0 is invalid",
     lambda: lutnb.convert(_mlp(), overrides={"2": {"temperature": 0}})),
    ("convert-override-backward", ValueError, r"overrides\['\*'\]: backward='x' is not supported",
     lambda: lutnb.convert(_mlp(), overrides={"*": {"backward": "x"}})),
    ("convert-override-acc-bits", ValueError, r"overrides\['0'\]: acc_bits=99 is out of range",
     lambda: lutnb.convert(_mlp(), overrides={"0": {"acc_bits": 99}})),
    ("convert-tied-conv1d", ValueError,
     r"'a' is a transformers Conv1D whose weight is shared with b.*skip=\['a', 'b'\]",
     lambda: lutnb.convert(_tied_conv1d_model(), 4, 4)),
]


def _mlp_lut_uncal():
    return lutnb.convert(_mlp(), 4, 4)


@pytest.mark.parametrize("exc,match,call", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(exc, match, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "never calibrated" warnings of the LUT-mode cases
        with pytest.raises(exc, match=match):
            call()


def test_case_count():
    assert len(CASES) >= 35 and len({c[0] for c in CASES}) == len(CASES)


# --- warnings ----------------------------------------------------------------------------------------


def test_nothing_converted_warns_once_with_reasons():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Conv2d(4, 4, 3, groups=2), nn.Linear(4, 4))
    with pytest.warns(UserWarning, match=r"converted no layer.*1 \(Conv2d: groups=2.*2 \(Linear: skipped by request") \
            as rec:
        lutnb.convert(model, skip=["2"])
    assert sum("converted no layer" in str(w.message) for w in rec) == 1


def test_model_that_is_itself_a_linear_warns_how_to_wrap_it():
    with pytest.warns(UserWarning, match=r"the model itself is a Linear.*nn\.Sequential"):
        lutnb.convert(nn.Linear(8, 4))


# --- unusual but valid inputs ------------------------------------------------------------------------


def _hand_lut(layer, rows):
    """float64 reference: nearest centroid by brute force, then the sum of table rows (+ bias)."""
    cb = layer.codebooks.detach().double()
    W = layer.weight_matrix().detach().double()
    K, S, v = layer.K, layer.S, layer.v
    xp = torch.nn.functional.pad(rows.double(), (0, S * v - K)).reshape(-1, S, v)
    d = ((xp.unsqueeze(2) - cb.unsqueeze(0)) ** 2).sum(-1)
    idx = d.argmin(-1)
    T = torch.einsum("scv,nsv->scn", cb, torch.nn.functional.pad(W, (0, S * v - K)).reshape(-1, S, v))
    y = sum(T[s, idx[:, s]] for s in range(S))
    b = layer.bias
    return y + (0 if b is None else b.detach().double())


def test_v_larger_than_k_works():
    torch.manual_seed(0)
    layer = LUTLinear(3, 5, v=8, c=4)
    x = torch.randn(40, 3)
    lutnb.calibrate(nn.Sequential(layer), [x], iters=3)
    assert layer.S == 1 and layer.K_padded == 8
    with torch.no_grad():
        y = layer(x)
    torch.testing.assert_close(y.double(), _hand_lut(layer, x), rtol=1e-5, atol=1e-5)
    layer.mode = "quant"
    with torch.no_grad():
        assert torch.isfinite(layer(x)).all()


@pytest.mark.parametrize("c", [3, 5, 17])
def test_c_not_a_power_of_two_works_in_every_mode(c):
    torch.manual_seed(0)
    lm = lutnb.convert(_mlp(), 4, c)
    x = torch.randn(200, 8)
    lutnb.calibrate(lm, [x], iters=3)
    lm.eval()
    with torch.no_grad():
        for mode in ("lut", "quant", "soft"):
            set_mode(lm, mode)
            assert torch.isfinite(lm(x)).all()
        set_mode(lm, "lut")
        rows = torch.relu(lm[0](x))
        torch.testing.assert_close(lm[2](rows).double(), _hand_lut(lm[2], rows), rtol=1e-5, atol=1e-5)


def test_numpy_integers_are_accepted_for_v_and_c():
    layer = LUTLinear(8, 4, v=np.int64(4), c=np.int32(8))
    assert (layer.v, layer.c) == (4, 8) and type(layer.v) is int


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("conv", [False, True])
def test_float64_and_bfloat16_models_work_in_every_mode(dtype, conv):
    torch.manual_seed(0)
    if conv:
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3)).to(dtype)
        x = torch.randn(4, 3, 6, 6, dtype=dtype)
    else:
        model = _mlp().to(dtype)
        x = torch.randn(64, 8, dtype=dtype)
    lm = lutnb.convert(model, 4, 8)
    lutnb.calibrate(lm, x, iters=3)
    for mode in ("exact", "lut", "soft", "quant"):
        set_mode(lm, mode)
        with torch.no_grad():
            y = lm(x)
        assert y.dtype == dtype and torch.isfinite(y).all(), mode
        xg = x.clone().requires_grad_()
        yg = lm(xg)
        assert yg.dtype == dtype
        yg.float().sum().backward()
        assert xg.grad is not None and xg.grad.dtype == dtype
        if mode in ("lut", "quant"):  # training forward equals the no-grad forward
            torch.testing.assert_close(yg.detach(), y)


def test_float64_lut_mode_equals_the_float64_hand_reference():
    torch.manual_seed(0)
    lm = lutnb.convert(_mlp().double(), 4, 8)
    x = torch.randn(100, 8, dtype=torch.float64)
    lutnb.calibrate(lm, x, iters=3)
    with torch.no_grad():
        torch.testing.assert_close(lm[0](x), _hand_lut(lm[0], x), rtol=1e-12, atol=1e-12)


def test_bfloat16_encode_picks_the_true_nearest_centroid():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 4, 4, generator=g).to(torch.bfloat16)
    cb = torch.randn(4, 16, 4, generator=g).to(torch.bfloat16)
    idx = distances.encode(x, cb, "l2")
    d = ((x.double().unsqueeze(2) - cb.double().unsqueeze(0)) ** 2).sum(-1)  # (M, S, c) in float64
    best = d.gather(2, idx.unsqueeze(-1))[..., 0]
    assert torch.equal(best, d.min(-1).values)


def test_bare_tensor_and_dict_are_one_batch():
    x = torch.randn(64, 8)
    a, b = lutnb.convert(_mlp(), 4, 4), lutnb.convert(_mlp(), 4, 4)
    lutnb.calibrate(a, x, iters=3)
    lutnb.calibrate(b, [x], iters=3)
    assert torch.equal(a[0].codebooks, b[0].codebooks) and torch.equal(a[2].codebooks, b[2].codebooks)

    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def forward(self, inputs):
            return self.fc(inputs)

    c = lutnb.convert(Kw(), 4, 4)
    stats = lutnb.calibrate(c, {"inputs": x}, iters=2)
    assert stats["fc"]["rows"] == 64


def test_layers_given_as_one_string_and_iters_zero():
    lm = lutnb.convert(_mlp(), 4, 4)
    stats = lutnb.calibrate(lm, [torch.randn(32, 8)], layers="0", iters=0)
    assert set(stats) == {"0", "_seconds"} and bool(lm[0].calibrated) and not bool(lm[2].calibrated)


@pytest.mark.parametrize("mode", ["lut", "quant"])
@pytest.mark.parametrize("grad", [False, True])
def test_nan_input_propagates_to_its_rows_only(mode, grad):
    lm = _lut()
    set_mode(lm, mode)
    x = torch.randn(6, 8)
    bad = x.clone()
    bad[2, 5] = float("nan")
    bad[4, 0] = float("-inf")
    with torch.set_grad_enabled(grad):
        y_ok = lm(x.requires_grad_(grad))
        y = lm(bad.requires_grad_(grad))
    rows_nan = torch.isnan(y).all(1)
    assert rows_nan.tolist() == [False, False, True, False, True, False]
    keep = ~rows_nan
    assert torch.equal(y[keep].detach(), y_ok[keep].detach())


@pytest.mark.parametrize("mode", ["lut", "quant"])
@pytest.mark.parametrize("grad", [False, True])
def test_nan_input_propagates_in_a_conv_to_the_positions_it_reaches(mode, grad):
    torch.manual_seed(0)
    lm = lutnb.convert(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1)), 2, 4, mode=mode)
    x = torch.randn(2, 2, 6, 6)
    lutnb.calibrate(lm, x, iters=2)
    bad = x.clone()
    bad[1, 0, 0, 0] = float("nan")
    with torch.set_grad_enabled(grad):
        y = lm(bad.requires_grad_(grad))
    ref = torch.nn.functional.conv2d(bad.detach(), lm[0].weight.detach(), lm[0].bias.detach(), padding=1)
    assert torch.equal(torch.isnan(y), torch.isnan(ref)) and torch.isnan(y).any()



def test_converting_a_converted_model_warns_that_it_is_already_converted():
    lm = lutnb.convert(_mlp(), 4, 4)
    with pytest.warns(UserWarning, match=r"converted no layer.*2 layers already LUT layers"):
        lutnb.convert(lm, 4, 4)


def test_pairwise_distance_of_bfloat16_is_computed_in_float32():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, 4, generator=g).to(torch.bfloat16)
    cb = torch.randn(2, 6, 4, generator=g).to(torch.bfloat16)
    d = distances.pairwise_distance(x, cb, "l1")
    ref = (x.double().unsqueeze(2) - cb.double().unsqueeze(0)).abs().sum(-1)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d.double(), ref, rtol=1e-6, atol=1e-6)


def test_float32_encode_is_unchanged_by_the_dtype_rules():
    # the float32 path is the one the kernels and the engine share: same indices as the float64 brute force
    g = torch.Generator().manual_seed(2)
    x, cb = torch.randn(500, 3, 4, generator=g), torch.randn(3, 8, 4, generator=g)
    idx = distances.encode(x, cb)
    d = ((x.double().unsqueeze(2) - cb.double().unsqueeze(0)) ** 2).sum(-1)
    assert torch.equal(idx, d.argmin(-1)) and idx.dtype == torch.int64
    assert torch.equal(distances.encode(x.double(), cb), idx)


def test_nan_rows_marks_only_rows_with_nan_or_inf_not_rows_whose_sum_overflows():
    from lutnb.vq.checks import nan_rows

    rows = torch.randn(6, 5)
    rows[1, 2], rows[3, 0] = float("nan"), float("-inf")
    rows[4, :] = 3e38  # finite entries whose float32 sum overflows to inf
    out = nan_rows(torch.zeros(6, 2), rows)
    assert torch.isnan(out).all(1).tolist() == [False, True, False, True, False, False]
