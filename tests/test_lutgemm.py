"""The readable LUT GEMM (lutnb.vq.lutgemm) against the fast paths: encode, tables, layer output, engine."""
import pytest
import torch

import lutnb
from lutnb.vq import lutgemm
from lutnb.vq.distances import encode


def _case(seed=0, M=7, K=10, N=5, v=4, c=6):
    g = torch.Generator().manual_seed(seed)
    S = -(-K // v)
    return (torch.randn(M, K, generator=g), torch.randn(N, K, generator=g), torch.randn(S, c, v, generator=g),
            torch.randn(N, generator=g))


@pytest.mark.parametrize("metric", ["l2", "l1", "chebyshev"])
def test_reference_encode_equals_fast_encode(metric):
    x, _, cb, _ = _case()
    assert torch.equal(lutgemm.encode_reference(x, cb, metric), encode(lutgemm.split(x, cb.shape[2]), cb, metric))


@pytest.mark.parametrize("metric", ["l2", "l1", "chebyshev"])
def test_reference_lut_gemm_equals_the_lut_layer(metric):
    x, W, cb, b = _case(seed=1)
    layer = lutnb.LUTLinear(W.shape[1], W.shape[0], v=cb.shape[2], c=cb.shape[1], metric=metric)
    with torch.no_grad():
        layer.weight.copy_(W)
        layer.bias.copy_(b)
        layer.codebooks.copy_(cb)
    layer.calibrated.fill_(True)
    layer.mode = "lut"
    torch.testing.assert_close(lutgemm.build_tables(cb, W), layer.tables().detach())
    with torch.no_grad():
        torch.testing.assert_close(lutgemm.lut_gemm(x, W, cb, b, metric), layer(x), rtol=1e-5, atol=1e-5)


def test_reference_is_the_exact_gemm_when_rows_are_centroids():
    x, W, cb, b = _case(seed=2, K=8)
    x = cb[torch.arange(cb.shape[0]) % cb.shape[0], 1].reshape(1, -1).repeat(3, 1)  # every sub-vector a centroid
    torch.testing.assert_close(lutgemm.lut_gemm(x, W, cb, b), x @ W.T + b, rtol=1e-5, atol=1e-5)


def test_worked_example_equals_the_reference_loops():
    from lutnb.vq.error import LayerData

    g = torch.Generator().manual_seed(3)
    data = LayerData("toy", torch.randn(300, 12, generator=g), torch.randn(7, 12, generator=g), "linear")
    ex = lutgemm.lut_gemm_example(data, M=5, K=8, N=4, v=2, c=4, metric="l1")
    torch.testing.assert_close(ex.tables, lutgemm.build_tables(ex.codebooks, ex.weight), rtol=1e-5, atol=1e-6)
    assert torch.equal(ex.idx, lutgemm.encode_reference(ex.x, ex.codebooks, "l1"))
    torch.testing.assert_close(ex.y_lut, lutgemm.lookup_add(ex.idx, ex.tables), rtol=1e-5, atol=1e-6)


def test_worked_example_rows_are_not_all_zero():
    from lutnb.vq.error import LayerData

    g = torch.Generator().manual_seed(4)
    rows = torch.relu(torch.randn(400, 12, generator=g))
    rows[::2] = 0.0                                     # half the rows all zero, as after a ReLU
    data = LayerData("toy", rows, torch.randn(5, 12, generator=g), "linear")
    ex = lutgemm.lut_gemm_example(data, M=6, K=8, N=3, v=2, c=4)
    assert ((ex.x != 0).sum(1) >= 4).all()
    with pytest.raises(ValueError, match="min_nonzero"):
        lutgemm.lut_gemm_example(data, M=6, K=8, N=3, v=2, c=4, min_nonzero=9)


def test_op_counts_and_table_cost():
    ops = lutgemm.op_counts(M=6, K=8, N=3, v=2, c=4)
    assert ops == {"S": 4, "distance_ops": 6 * 4 * 4 * 2, "lookup_adds": 6 * 4 * 3, "dense_macs": 6 * 8 * 3}
    assert lutgemm.table_cost(K=64 * 9, N=64, v=4, c=16)["ratio"] == 4.0     # (c/v) * (8/8)
    assert lutgemm.table_cost(K=8, N=3, v=2, c=4, table_bits=4)["ratio"] == 1.0
    with pytest.raises(ValueError, match="v=0"):
        lutgemm.op_counts(M=1, K=8, N=1, v=0, c=4)
