import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lutnb.vq.distances import METRICS, check_metric, encode, pairwise_distance, pairwise_distance_reference


def brute(x, cb, metric):
    """Independent brute force with Python floats."""
    M, S, v = x.shape
    c = cb.shape[1]
    out = torch.empty(M, S, c, dtype=torch.float64)
    for m in range(M):
        for s in range(S):
            for j in range(c):
                diffs = [float(x[m, s, k]) - float(cb[s, j, k]) for k in range(v)]
                if metric == "l2":
                    out[m, s, j] = sum(d * d for d in diffs)
                elif metric == "l1":
                    out[m, s, j] = sum(abs(d) for d in diffs)
                else:
                    out[m, s, j] = max(abs(d) for d in diffs)
    return out


@pytest.mark.parametrize("metric", METRICS)
def test_distance_equals_brute_force(metric):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, 5, generator=g, dtype=torch.float64)
    cb = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    want = brute(x, cb, metric)
    torch.testing.assert_close(pairwise_distance(x, cb, metric), want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pairwise_distance_reference(x, cb, metric), want, rtol=1e-9, atol=1e-9)
    assert torch.equal(encode(x, cb, metric), want.argmin(-1))


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 40), S=st.integers(1, 6), v=st.integers(1, 6), c=st.integers(2, 12),
       metric=st.sampled_from(METRICS), seed=st.integers(0, 10_000))
def test_encode_is_argmin_of_brute_force(M, S, v, c, metric, seed):
    g = torch.Generator().manual_seed(seed)
    # integer-valued data on a grid keeps distances exact, so the argmin (lowest index on ties) is exact too
    x = torch.randint(-8, 9, (M, S, v), generator=g).float()
    cb = torch.randint(-8, 9, (S, c, v), generator=g).float()
    assert torch.equal(encode(x, cb, metric), brute(x, cb, metric).argmin(-1))


@pytest.mark.parametrize("metric", METRICS)
def test_chunking_does_not_change_result(metric, monkeypatch):
    import lutnb.vq.distances as d

    g = torch.Generator().manual_seed(3)
    x = torch.randn(1000, 4, 4, generator=g)
    cb = torch.randn(4, 16, 4, generator=g)
    full = pairwise_distance(x, cb, metric)
    monkeypatch.setattr(d, "_CHUNK_BYTES", 4 * 16 * 4 * 4 * 7)  # 7 rows per chunk
    torch.testing.assert_close(pairwise_distance(x, cb, metric), full)
    assert torch.equal(encode(x, cb, metric, chunk_rows=7), encode(x, cb, metric))


def test_distance_is_differentiable():
    x = torch.randn(5, 2, 3, requires_grad=True)
    cb = torch.randn(2, 4, 3, requires_grad=True)
    for metric in METRICS:
        pairwise_distance(x, cb, metric).sum().backward()
    assert x.grad is not None and cb.grad is not None


def test_bad_metric_and_shapes():
    with pytest.raises(ValueError, match="metric='cosine'.*l2"):
        check_metric("cosine")
    assert check_metric("Linf") == "chebyshev"
    with pytest.raises(ValueError, match=r"\(M, S, v\)"):
        pairwise_distance(torch.randn(3, 4), torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="does not match"):
        encode(torch.randn(3, 2, 4), torch.randn(3, 2, 4))
