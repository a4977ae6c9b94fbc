import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lutnb.vq.layers import LUTConv2d, LUTLinear, equivalent_bits, reconstruction_loss, set_mode


def _calibrated_linear(K=10, N=5, v=4, c=8, metric="l2", seed=0, **kw):
    torch.manual_seed(seed)
    layer = LUTLinear(K, N, v=v, c=c, metric=metric, **kw)
    layer.codebooks.data.normal_()
    layer.calibrated.fill_(True)
    return layer


@pytest.mark.parametrize("metric", ["l2", "l1", "chebyshev"])
def test_hard_lut_forward_equals_table_sum_by_hand(metric):
    layer = _calibrated_linear(K=10, N=5, v=4, c=8, metric=metric)  # K=10 pads to 12, S=3
    x = torch.randn(6, 10)
    with torch.no_grad():
        y = layer(x)
        W = F.pad(layer.weight, (0, 2))
        xp = F.pad(x, (0, 2))
        want = torch.zeros(6, 5)
        for m in range(6):
            for s in range(3):
                sub = xp[m, 4 * s:4 * s + 4]
                cb = layer.codebooks[s]
                diff = sub - cb
                d = {"l2": (diff ** 2).sum(1), "l1": diff.abs().sum(1), "chebyshev": diff.abs().max(1).values}[metric]
                j = int(torch.argmin(d))
                T_s = cb @ W[:, 4 * s:4 * s + 4].T  # (c, N): T_s[j, n] = C_s[j] . W[n, s]
                want[m] += T_s[j]
            want[m] += layer.bias
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)


def test_lut_equals_exact_when_every_subvector_is_a_centroid():
    # c >= number of distinct sub-vectors: put each distinct sub-vector in the codebook
    torch.manual_seed(0)
    x = torch.randint(0, 3, (20, 8)).float()  # values in {0,1,2}; v=2 -> at most 9 distinct sub-vectors
    layer = LUTLinear(8, 6, v=2, c=9)
    grid = torch.tensor([[a, b] for a in range(3) for b in range(3)], dtype=torch.float32)
    layer.codebooks.data.copy_(grid.expand(4, 9, 2))
    layer.calibrated.fill_(True)
    with torch.no_grad():
        y_lut = layer(x)
        layer.mode = "exact"
        y_exact = layer(x)
    torch.testing.assert_close(y_lut, y_exact, rtol=1e-5, atol=1e-5)


def test_straight_through_gradient_is_the_exact_gradient():
    layer = _calibrated_linear(K=8, N=3, v=4, c=4)
    x = torch.randn(5, 8, requires_grad=True)
    layer(x).pow(2).sum().backward()
    gx_lut, gw_lut = x.grad.clone(), layer.weight.grad.clone()
    x.grad = None
    layer.weight.grad = None
    with torch.no_grad():
        y_lut = layer(x)
    # d/dx of sum(y^2) with y = y_exact + sg(y_lut - y_exact): value y_lut, gradient through y_exact
    y_exact = F.linear(x, layer.weight, layer.bias)
    (2 * y_lut.detach() * y_exact).sum().backward()
    torch.testing.assert_close(gx_lut, x.grad)
    torch.testing.assert_close(gw_lut, layer.weight.grad)


@pytest.mark.parametrize("mode", ["lut", "quant"])
def test_hard_backward_is_the_gradient_of_the_quantized_rows(mode):
    # backward="hard": Q = C[idx] + X - sg(X); Y = Q W^T + b. Reference: the same maths written out by hand
    layer = _calibrated_linear(K=10, N=3, v=4, c=4, backward="hard")  # K=10 pads to 12
    layer.mode = mode
    x = torch.randn(7, 10, requires_grad=True)
    y = layer(x)
    (y.pow(2) * torch.arange(3.0)).sum().backward()
    with torch.no_grad():
        idx = layer.encode_rows(x)
    cb = layer.codebooks.detach().clone().requires_grad_(True)
    W = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    q = torch.stack([cb[s, idx[:, s]] for s in range(3)], 1).reshape(7, 12)[:, :10]
    y_ref = F.linear(q + x2 - x2.detach(), W, b)
    with torch.no_grad():
        layer.mode = "lut"
        torch.testing.assert_close(layer(x), y_ref, rtol=1e-5, atol=1e-5)  # the value is the look-up
        layer.mode = mode
        y_val = layer(x)  # lut, or the INT8-table value in quant mode
    (2 * y_val * torch.arange(3.0) * y_ref).sum().backward()  # d/dtheta of sum(w y^2) at y = y_val
    torch.testing.assert_close(layer.weight.grad, W.grad)  # on C[idx], not on x
    torch.testing.assert_close(layer.bias.grad, b.grad)
    torch.testing.assert_close(layer.codebooks.grad, cb.grad)
    torch.testing.assert_close(x.grad, x2.grad)  # identity through the quantizer
    assert layer.codebooks.grad.abs().sum() > 0
    gw_exact = (2 * y_val * torch.arange(3.0)).T @ x.detach()
    assert not torch.allclose(layer.weight.grad, gw_exact, atol=1e-4)  # differs from the "exact" STE


def test_reconstruction_loss_trains_codebooks_and_soft_backward():
    layer = _calibrated_linear(K=8, N=3, v=4, c=4)
    layer.track_recon = True
    x = torch.randn(16, 8)
    y = layer(x)
    assert layer.recon_loss is not None and layer.recon_loss.item() > 0
    (y.sum() + reconstruction_loss(layer)).backward()
    assert layer.codebooks.grad is not None and layer.codebooks.grad.abs().sum() > 0
    layer.zero_grad()
    layer.backward = "soft"
    layer.track_recon = False
    layer(x).sum().backward()
    assert layer.codebooks.grad.abs().sum() > 0  # the soft assignment gives the centroids a task gradient


def test_soft_mode_approaches_hard_at_low_temperature():
    layer = _calibrated_linear(K=8, N=3, v=4, c=8)
    x = torch.randn(10, 8)
    with torch.no_grad():
        hard = layer(x)
        layer.mode, layer.temperature = "soft", 1e-4
        soft = layer(x)
    torch.testing.assert_close(soft, hard, rtol=1e-4, atol=1e-4)


def test_quant_mode_close_to_lut_and_differentiable():
    layer = _calibrated_linear(K=16, N=8, v=4, c=16)
    x = torch.randn(32, 16)
    with torch.no_grad():
        y_lut = layer(x)
        layer.mode = "quant"
        y_q = layer(x)
    assert (y_q - y_lut).abs().max() < 0.05 * y_lut.abs().max()
    xg = x.clone().requires_grad_()
    y = layer(xg)
    torch.testing.assert_close(y, y_q)
    y.sum().backward()
    assert xg.grad is not None


@pytest.mark.parametrize("layout", ["channel", "patch"])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2), ((2, 1), (1, 0), 1)])
def test_conv_exact_mode_and_im2col_match_conv2d(layout, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, (3, 2), stride=stride, padding=padding, dilation=dilation)
    lut = LUTConv2d.from_conv(conv, v=3, c=4, layout=layout)
    x = torch.randn(2, 3, 9, 8)
    want = conv(x)
    lut.mode = "exact"
    torch.testing.assert_close(lut(x), want)
    # the im2col rows times the weight matrix give the same conv (checks K order in both layouts)
    rows = lut.rows_of(x)
    y = (rows @ lut.weight_matrix().T + lut.bias).reshape(2, -1, 5).transpose(1, 2).reshape(want.shape)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    # a LUT whose codebooks hold every sub-vector reproduces the conv
    lut.mode = "lut"
    with torch.no_grad():
        sub = lut.split(rows)  # (M, S, v)
        assert sub.shape[0] <= 200
    big = LUTConv2d.from_conv(conv, v=3, c=sub.shape[0], layout=layout)
    big.codebooks.data.copy_(sub.transpose(0, 1))
    big.calibrated.fill_(True)
    with torch.no_grad():
        torch.testing.assert_close(big(x), want, rtol=1e-4, atol=1e-4)


def test_state_dict_round_trip():
    conv = LUTConv2d(3, 4, 3, padding=1, v=4, c=8, metric="l1")
    conv.codebooks.data.normal_()
    conv.calibrated.fill_(True)
    sd = conv.state_dict()
    assert {"weight", "bias", "codebooks", "calibrated"} <= set(sd)
    fresh = LUTConv2d(3, 4, 3, padding=1, v=4, c=8, metric="l1")
    fresh.load_state_dict(sd)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(conv(x), fresh(x))
    import io

    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    fresh2 = LUTConv2d(3, 4, 3, padding=1, v=4, c=8, metric="l1")
    fresh2.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        assert torch.equal(conv(x), fresh2(x))


@pytest.mark.parametrize("kwargs,field", [
    ({"v": 0}, "v=0"), ({"c": 1}, "c=1"), ({"metric": "cos"}, "metric='cos'"),
    ({"table_bits": 3}, "table_bits=3"), ({"table_bits": 17}, "table_bits=17"), ({"mode": "fast"}, "mode='fast'"),
    ({"acc_bits": 4}, "acc_bits=4"),
])
def test_bad_configuration_names_field_value_and_fix(kwargs, field):
    with pytest.raises(ValueError) as e:
        LUTLinear(8, 4, **kwargs)
    msg = str(e.value)
    assert field in msg and ("use" in msg or "must" in msg)


def test_grouped_conv_is_refused_clearly():
    with pytest.raises(ValueError, match=r"groups=2 .*not supported.*skip"):
        LUTConv2d(4, 4, 3, groups=2)


def test_equivalent_bits_and_table_bytes():
    assert equivalent_bits(4, 16) == 1.0
    assert equivalent_bits(8, 16) == 0.5
    layer = LUTLinear(64, 10, v=4, c=16)
    assert layer.S == 16 and layer.table_bytes() == 16 * 16 * 10
    assert layer.table_bytes(4) == 16 * 16 * 10 // 2
    assert math.isclose(layer.equivalent_bits, 1.0)


def test_set_mode_validates():
    m = nn.Sequential(LUTLinear(4, 4, v=2, c=4))
    set_mode(m, "exact", temperature=0.5)
    assert m[0].mode == "exact" and m[0].temperature == 0.5
    with pytest.raises(AttributeError):
        set_mode(m, "lut", nonsense=1)


def test_deepcopy_after_a_training_forward():
    import copy

    layer = _calibrated_linear(K=8, N=3, v=4, c=4)
    layer.track_recon = True
    layer.keep_indices = True
    layer(torch.randn(5, 8, requires_grad=True)).sum().backward()
    assert layer.recon_loss is not None and layer.recon_loss.grad_fn is not None
    twin = copy.deepcopy(layer)
    assert twin.recon_loss is None and twin.last_indices is None
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.equal(twin(x), layer(x))


def test_gather_rows_gradient_matches_autograd_indexing():
    from lutnb.vq.layers import GatherRows

    g = torch.Generator().manual_seed(0)
    table = torch.randn(12, 3, generator=g, requires_grad=True)
    idx = torch.randint(0, 12, (7, 5), generator=g)
    w = torch.randn(7, 5, 3, generator=g)
    (GatherRows.apply(table, idx) * w).sum().backward()
    got = table.grad.clone()
    table.grad = None
    (table[idx] * w).sum().backward()
    torch.testing.assert_close(got, table.grad)


def test_im2col_strided_equals_unfold():
    """The no-grad im2col (one strided copy) equals the autograd one (F.unfold + permute) for both layouts."""
    import random

    from lutnb.vq.layers import im2col

    rnd = random.Random(0)
    checked = 0
    while checked < 60:
        B, C, H, W = rnd.randint(1, 3), rnd.randint(1, 5), rnd.randint(1, 9), rnd.randint(1, 9)
        k = (rnd.randint(1, 3), rnd.randint(1, 3))
        s, p, d = (rnd.randint(1, 3), rnd.randint(1, 3)), (rnd.randint(0, 2), rnd.randint(0, 2)), (rnd.randint(1, 2),
                                                                                                   rnd.randint(1, 2))
        if H + 2 * p[0] - d[0] * (k[0] - 1) - 1 < 0 or W + 2 * p[1] - d[1] * (k[1] - 1) - 1 < 0:
            continue
        x = torch.randn(B, C, H, W)
        for layout in ("channel", "patch"):
            fast = im2col(x, k, s, p, d, layout)
            slow = im2col(x.clone().requires_grad_(True), k, s, p, d, layout).detach()
            assert torch.equal(fast, slow)
        checked += 1


def test_two_sided_mse_and_straight_through_match_their_definitions():
    from lutnb.vq.layers import StraightThrough, two_sided_mse

    g = torch.Generator().manual_seed(0)
    a0, b0 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    a1, b1 = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    a2, b2 = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    ref = F.mse_loss(a1.detach(), b1) + F.mse_loss(a1, b1.detach())
    ref.backward()
    got = two_sided_mse(a2, b2)
    got.backward()
    assert torch.allclose(got, ref) and torch.allclose(a2.grad, a1.grad) and torch.allclose(b2.grad, b1.grad)
    # straight-through: the forward value is the target exactly, the gradient reaches y_exact unchanged
    y_exact = torch.randn(3, 4, generator=g, requires_grad=True)
    target = torch.randn(3, 4, generator=g)
    out = StraightThrough.apply(y_exact, target)
    assert torch.equal(out, target)
    w = torch.randn(3, 4, generator=g)
    (out * w).sum().backward()
    assert torch.equal(y_exact.grad, w)
