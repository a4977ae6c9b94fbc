"""lutnb.vq.gradients: what each backward mode gives the centroids (the picture in notebook 02)."""
import pytest
import torch

from lutnb.vq.gradients import centroid_gradients


def _toy(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 2, generator=g)
    W = torch.randn(3, 2, generator=g)
    C = torch.randn(1, 4, 2, generator=g)
    return x, W, C, x @ W.T


def test_exact_gives_no_task_gradient_only_reconstruction():
    x, W, C, t = _toy()
    g = centroid_gradients(x, W, C, t, "exact")
    assert torch.count_nonzero(g["task"]) == 0
    assert g["recon"].abs().sum() > 0


def test_hard_is_the_summed_straight_through_gradient_of_each_cluster():
    x, W, C, t = _toy()
    g = centroid_gradients(x, W, C, t, "hard")
    idx = g["idx"][:, 0]
    expect = torch.zeros_like(C)
    for j in range(C.shape[1]):
        rows = idx == j
        if rows.any():   # Y = C_j W^T for those rows: dL/dC_j = sum (Y - t) W
            expect[0, j] = ((C[0, j] @ W.T - t[rows]) @ W).sum(0)
    torch.testing.assert_close(g["task"], expect, rtol=1e-4, atol=1e-5)


def test_soft_reaches_every_centroid():
    x, W, C, t = _toy()
    g = centroid_gradients(x, W, C, t, "soft", temperature=1.0)
    assert (g["task"].abs().sum(-1) > 0).all()


def test_bad_arguments_name_the_fix():
    x, W, C, t = _toy()
    with pytest.raises(ValueError, match="backward='ste'"):
        centroid_gradients(x, W, C, t, "ste")
    with pytest.raises(ValueError, match="target has shape"):
        centroid_gradients(x, W, C, t[:, :2], "hard")
