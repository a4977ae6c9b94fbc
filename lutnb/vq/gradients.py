"""How the centroids of a LUT layer get gradients, under each backward mode (`lutnb.vq.layers.BACKWARDS`).

`centroid_gradients` runs one real `LUTLinear` (hard look-up forward) on rows X with a task loss
``0.5 * ||Y - target||^2`` (summed) and returns the codebooks' gradient from that loss and, separately, from the
layer's two-sided reconstruction loss (`track_recon`, what LUTBoost's ``recon_weight`` adds):

- ``"exact"`` (default): Y = Y_exact + sg(Y_lut - Y_exact). The task loss sees the float layer, so its gradient
  reaches W and X but **not** the centroids (zero); centroids learn only from the reconstruction loss.
- ``"hard"``: Q = C[idx] + X - sg(X), Y = Q W^T. Each centroid gets the summed W^T dL/dY of the rows assigned
  to it (a VQ-VAE straight-through); the input gets the identity.
- ``"soft"``: forward hard, gradient of Y_soft = softmax(-d / T) C W^T: every centroid gets a share of every
  row's gradient, weighted by its soft assignment, plus a term through the distances.
"""
from __future__ import annotations

import torch

from .layers import BACKWARDS, LUTLinear


def centroid_gradients(x: torch.Tensor, weight: torch.Tensor, codebooks: torch.Tensor, target: torch.Tensor,
                       backward: str, metric: str = "l2", temperature: float = 1.0) -> dict:
    """{"task": dL_task/dC, "recon": dL_recon/dC (both (S, c, v)), "idx": (M, S) assignments} for one layer.

    x (M, K), weight (N, K), codebooks (S, c, v) with S * v >= K, target (M, N)."""
    if backward not in BACKWARDS:
        raise ValueError(f"centroid_gradients: backward={backward!r}; use one of {BACKWARDS}")
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"centroid_gradients: x {tuple(x.shape)} and weight {tuple(weight.shape)} must be (M, K) "
                         "and (N, K) with the same K")
    if target.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"centroid_gradients: target has shape {tuple(target.shape)}; it must be (M, N) = "
                         f"{(x.shape[0], weight.shape[0])}")
    S, c, v = codebooks.shape
    layer = LUTLinear(x.shape[1], weight.shape[0], bias=False, v=v, c=c, metric=metric, backward=backward,
                      temperature=temperature, dtype=x.dtype)
    if layer.codebooks.shape != codebooks.shape:
        raise ValueError(f"centroid_gradients: codebooks {tuple(codebooks.shape)} do not fit K={x.shape[1]}, v={v}: "
                         f"expected {tuple(layer.codebooks.shape)}")
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.codebooks.copy_(codebooks)
        layer.calibrated.fill_(True)
    layer.track_recon = True
    layer.keep_indices = True
    out = {}
    for name in ("task", "recon"):
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        loss = 0.5 * ((y - target) ** 2).sum() if name == "task" else layer.recon_loss
        loss.backward()
        g = layer.codebooks.grad
        out[name] = torch.zeros_like(codebooks) if g is None else g.detach().clone()
    out["idx"] = layer.last_indices.detach().clone()
    return out
