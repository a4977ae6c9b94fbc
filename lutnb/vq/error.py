"""Quantization error of one layer's real activations: scalar (INT-b) against vector quantization."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..kernels.common import check_metric
from .calibration import kmeans
from .distances import encode
from .layers import LUTConv2d, LUTLayer, LUTLinear, equivalent_bits


@dataclass
class LayerData:
    """Inputs of one layer as GEMM rows X (M, K) and its weight matrix W (N, K), in the LUT layer's K order."""

    name: str
    rows: torch.Tensor
    weight: torch.Tensor
    kind: str

    @property
    def M(self) -> int:
        return self.rows.shape[0]

    @property
    def K(self) -> int:
        return self.rows.shape[1]

    @property
    def N(self) -> int:
        return self.weight.shape[0]


@torch.no_grad()
def collect_rows(model: nn.Module, name: str, inputs, max_rows: int | None = None, seed: int = 0,
                 layout: str = "channel") -> LayerData:
    """Run `inputs` (a tensor or iterable of tensors / (x, y) pairs) and capture layer `name`'s GEMM rows."""
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"layer {name!r} not found; layers: "
                         f"{[n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]}") from None
    if isinstance(layer, LUTLayer):
        view = layer
    elif isinstance(layer, nn.Conv2d):
        view = LUTConv2d.from_conv(layer, v=1, c=2, layout=layout)
    elif isinstance(layer, nn.Linear):
        view = LUTLinear.from_linear(layer, v=1, c=2)
    else:
        raise ValueError(f"layer {name!r} is a {type(layer).__name__}; collect_rows needs a Linear or Conv2d")
    got: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda m, i, o: got.append(view.rows_of(i[0].detach())))
    was = model.training
    model.eval()
    try:
        batches = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        for b in batches:
            model(b[0] if isinstance(b, (tuple, list)) else b)
    finally:
        hook.remove()
        model.train(was)
    rows = torch.cat(got).float()
    if max_rows is not None and rows.shape[0] > max_rows:
        g = torch.Generator().manual_seed(seed)
        rows = rows[torch.randperm(rows.shape[0], generator=g)[:max_rows]]
    kind = "conv2d" if isinstance(view, LUTConv2d) else "linear"
    return LayerData(name, rows, view.weight_matrix().detach().float().clone(), kind)


def scalar_quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Uniform per-tensor scalar quantization with an MSE-optimal clipping range (searched on a grid).

    Non-negative data (post-ReLU) uses unsigned levels {0..2^b-1}; signed data uses the symmetric
    levels {-(2^(b-1)-1)..2^(b-1)-1} for b >= 2 and {-a, +a} (sign, XNOR-Net style) for b = 1.
    """
    if bits < 1:
        raise ValueError(f"bits={bits}: scalar quantization needs at least 1 bit")
    unsigned = bool((x >= 0).all())
    amax = float(x.abs().max())
    if amax == 0:
        return x.clone()
    if not unsigned and bits == 1:
        return torch.sign(x) * x.abs().mean()
    levels = 2 ** bits - 1 if unsigned else 2 ** (bits - 1) - 1
    lo = 0 if unsigned else -levels
    best, best_err = x, math.inf
    for frac in np.linspace(0.05, 1.0, 40):
        scale = amax * frac / levels
        q = torch.clamp(torch.round(x / scale), lo, levels) * scale
        err = float((q - x).pow(2).mean())
        if err < best_err:
            best, best_err = q, err
    return best


def vq_fit(rows: torch.Tensor, v: int, c: int, metric: str = "l2", seed: int = 0, iters: int = 25):
    """k-means codebooks (S, c, v) for rows (M, K) zero-padded to S*v."""
    S = math.ceil(rows.shape[1] / v)
    pad = S * v - rows.shape[1]
    x = torch.nn.functional.pad(rows, (0, pad)) if pad else rows
    sub = x.reshape(rows.shape[0], S, v)
    return kmeans(sub.transpose(0, 1).contiguous(), c, check_metric(metric), iters=iters, seed=seed)


def vq_reconstruct(rows: torch.Tensor, codebooks: torch.Tensor, metric: str = "l2"):
    """(X_hat (M, K), idx (M, S)): every sub-vector replaced by its nearest centroid."""
    S, c, v = codebooks.shape
    K = rows.shape[1]
    x = torch.nn.functional.pad(rows, (0, S * v - K)) if S * v != K else rows
    sub = x.reshape(rows.shape[0], S, v)
    idx = encode(sub, codebooks, metric)
    hat = codebooks[torch.arange(S).unsqueeze(0), idx]  # (M, S, v)
    return hat.reshape(rows.shape[0], S * v)[:, :K], idx


def relative_output_error(rows: torch.Tensor, rows_hat: torch.Tensor, weight: torch.Tensor) -> float:
    """||(X - X_hat) W^T||_F / ||X W^T||_F: how much a quantization of the inputs moves the layer output."""
    y = rows @ weight.T
    return float((rows_hat @ weight.T - y).norm() / y.norm().clamp_min(1e-30))


def quantization_sweep(data: LayerData, vs=(1, 2, 4, 8), cs=(4, 8, 16, 32, 64), metrics=("l2", "l1", "chebyshev"),
                       scalar_bits=(8, 6, 4, 3, 2, 1), seed: int = 0, progress: bool = False):
    """Relative output error of scalar (INT-b) and vector quantization (v, c, metric) of a layer's inputs.

    Codebooks are fitted on half of the rows and the error is measured on the other half. Returns a pandas
    DataFrame with columns method, metric, v, c, bits_per_activation, rel_error.
    """
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.M, generator=g)
    fit_rows, test_rows = data.rows[perm[: data.M // 2]], data.rows[perm[data.M // 2:]]
    recs = []
    for b in scalar_bits:
        q = scalar_quantize(test_rows, b)
        recs.append({"method": f"INT{b}", "metric": "scalar", "v": 1, "c": 2 ** b, "bits_per_activation": float(b),
                     "rel_error": relative_output_error(test_rows, q, data.weight)})
    grid = [(m, v, c) for m in metrics for v in vs for c in cs]
    if progress:
        from tqdm.auto import tqdm

        grid = tqdm(grid, desc="VQ sweep", leave=False)
    for metric, v, c in grid:
        cb = vq_fit(fit_rows, v, c, metric, seed=seed)
        hat, _ = vq_reconstruct(test_rows, cb, metric)
        recs.append({"method": "VQ", "metric": metric, "v": v, "c": c,
                     "bits_per_activation": equivalent_bits(v, c),
                     "rel_error": relative_output_error(test_rows, hat, data.weight)})
    return pd.DataFrame(recs)
