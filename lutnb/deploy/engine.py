"""The integer LUT engine: runs exported tables the way the accelerator does.

Per LUT layer: im2col, nearest-centroid encode (float32, the CCM), integer look-up-accumulate in an
accumulator of `acc_bits` bits with two's-complement wrap-around (the IMM), dequantize
(float32(acc) * scale + bias); everything else in the network runs in float. Two implementations of the
look-up-accumulate: ``impl="reference"`` (a loop over sub-spaces in int64) and ``impl="fast"`` (one
`embedding_bag` sum over the flattened tables in a float type whose integer sums are exact); with numba
installed, ``impl="native"`` runs a fused encode + look-up kernel (numba or C, chosen by
`lutnb.kernels.dispatch`), tested equal.
The output equals the PyTorch model in ``mode="quant"`` bit for bit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..kernels import dispatch, numba_kernels
from ..kernels.numba_kernels import native_lookup_accumulate
from ..vq import quant
from ..vq.distances import encode
from ..vq.functional import conv_output_size
from ..vq.functional import im2col as _im2col
from ..vq.layers import lut_layers
from .export import ExportedLayer, ExportedModel, export_tables

IMPLS = ("fast", "reference", "native")


def im2col(x: torch.Tensor, layer: ExportedLayer) -> torch.Tensor:
    """Input -> rows (M, K) in the layer's K order."""
    if layer.kind == "linear":
        if x.shape[-1] != layer.in_features:
            raise ValueError(f"layer {layer.name}: input has {x.shape[-1]} features, expected {layer.in_features}")
        return x.reshape(-1, layer.in_features)
    cv = layer.conv
    return _im2col(x, tuple(cv["kernel_size"]), tuple(cv["stride"]), tuple(cv["padding"]),
                   tuple(cv["dilation"]), layer.layout)


def encode_rows(rows: torch.Tensor, layer: ExportedLayer) -> torch.Tensor:
    """Nearest-centroid indices (M, S) of rows (M, K), zero-padded to K_padded."""
    t = layer.torch_tensors(rows.device)
    if layer.K_padded != layer.in_features:
        rows = torch.nn.functional.pad(rows, (0, layer.K_padded - layer.in_features))
    return encode(rows.reshape(rows.shape[0], layer.S, layer.v), t["codebooks"], layer.metric)


def lookup_accumulate(idx: torch.Tensor, layer: ExportedLayer, acc_bits: int | None = 32,
                      impl: str = "fast") -> torch.Tensor:
    """Integer accumulators (M, N) int64 = wrap_acc_bits(sum_s Tq[s, idx[:, s], :])."""
    quant.check_acc_bits(acc_bits)
    t = layer.torch_tensors(idx.device)
    if impl == "fast":
        return quant.lookup_accumulate(idx, t["tq"], acc_bits, flat=t["flat"])
    if impl == "reference":
        return quant.lookup_accumulate_reference(idx, t["tq"], acc_bits)
    if impl == "native":  # fused numba kernel (optional dependency), bit-identical to the two above

        return native_lookup_accumulate(idx, t["tq"], acc_bits)
    raise ValueError(f"impl={impl!r}: use one of {IMPLS}")


def dequantize(acc: torch.Tensor, layer: ExportedLayer) -> torch.Tensor:
    t = layer.torch_tensors(acc.device)
    return quant.dequantize(acc, t["scale"], t["bias"])


@dataclass
class EngineStats:
    """Counters over every call: rows encoded, look-ups, accumulator overflows (wrap-arounds)."""

    rows: int = 0
    lookups: int = 0
    overflows: int = 0
    per_layer: dict = field(default_factory=dict)

    def add(self, name: str, rows: int, lookups: int, overflows: int) -> None:
        self.rows += rows
        self.lookups += lookups
        self.overflows += overflows
        d = self.per_layer.setdefault(name, {"rows": 0, "lookups": 0, "overflows": 0})
        d["rows"] += rows
        d["lookups"] += lookups
        d["overflows"] += overflows


@torch.no_grad()
def run_layer(layer: ExportedLayer, x: torch.Tensor, acc_bits: int | None = 32, impl: str = "fast",
              stats: EngineStats | None = None) -> torch.Tensor:
    """One exported layer on input x (the layer's input as in the float model)."""
    rows = im2col(x, layer).float()
    y = None
    if impl == "native":  # fused encode + look-up kernel

        if stats is None:  # compiled kernel: dequantized output in the same pass (None where it does not apply)
            y = layer_output(layer, rows, acc_bits)
        if y is None:
            idx, acc = layer_rows(layer, rows, acc_bits)
    else:
        idx = encode_rows(rows, layer)
        acc = lookup_accumulate(idx, layer, acc_bits, impl)
    if y is None:
        if stats is not None:
            overflow = 0
            if acc_bits is not None and acc_bits < 64:
                unbounded = lookup_accumulate(idx, layer, None, impl)
                overflow = int((unbounded != acc).sum())
            stats.add(layer.name, rows.shape[0], idx.numel() * layer.out_features, overflow)
        y = dequantize(acc, layer)
    if layer.kind == "linear":
        return y.reshape(*x.shape[:-1], layer.out_features)
    cv = layer.conv
    B = x.shape[0]
    ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                              tuple(cv["padding"]), tuple(cv["dilation"]))
    N = layer.out_features
    return y.reshape(B, ho * wo, N).transpose(1, 2).reshape(B, N, ho, wo)


class EngineLayer(nn.Module):
    """An nn.Module that runs one exported layer on the integer engine."""

    def __init__(self, layer: ExportedLayer, acc_bits: int | None = 32, impl: str = "fast",
                 stats: EngineStats | None = None):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl={impl!r}: use one of {IMPLS}")
        self.layer, self.acc_bits, self.impl, self.stats = layer, quant.check_acc_bits(acc_bits), impl, stats

    def forward(self, x):
        return run_layer(self.layer, x, self.acc_bits, self.impl, self.stats)

    def extra_repr(self) -> str:
        L = self.layer
        return (f"{L.kind} K={L.in_features} N={L.out_features} v={L.v} c={L.c} metric={L.metric} "
                f"b={L.table_bits} acc_bits={self.acc_bits} impl={self.impl}")


class IntegerEngine(nn.Module):
    """A converted model whose LUT layers run on exported integer tables; the rest stays float.

    ``IntegerEngine(model)`` exports the model's tables itself; pass ``exported=`` (e.g. from
    `lutnb.load_tables`) to run tables from a file. The float parts come from a copy of `model`.
    """

    def __init__(self, model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,
                 impl: str = "fast", count_overflows: bool = False):
        super().__init__()
        exported = exported if exported is not None else export_tables(model)
        self.exported = exported
        self.stats = EngineStats() if count_overflows else None
        self.model = copy.deepcopy(model).eval()
        names = [n for n, _ in lut_layers(self.model)]
        missing = [n for n in names if n not in exported.layers]
        extra = [n for n in exported.layers if n not in names]
        if missing or extra:
            raise ValueError(f"exported tables do not match the model: missing {missing}, unexpected {extra}")
        for n in names:
            parent_name, _, attr = n.rpartition(".")
            parent = self.model.get_submodule(parent_name) if parent_name else self.model
            setattr(parent, attr, EngineLayer(exported[n], acc_bits, impl, self.stats))

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# the fused native path (impl="native"): arrays cached on the layer, kernels chosen by lutnb.kernels.dispatch
# ------------------------------------------------------------------------------------------------
def _layer_arrays(layer) -> dict:
    """Per-layer native arrays, cached on the layer (in its runtime cache, key 'native')."""
    cache = layer.runtime_cache
    if "native" not in cache:
        tq = numba_kernels.table_array(layer.table_q)
        cache["native"] = {"cb": np.ascontiguousarray(layer.codebooks, dtype=np.float32), "tq": tq,
                           "plans": {}}
    return cache["native"]


def _layer_plan(layer, acc_bits: int | None) -> tuple[dict, tuple]:
    """(the layer's cached native arrays, its accumulator plan for acc_bits, cached too)."""
    numba_kernels.require()
    quant.check_acc_bits(acc_bits)
    a = _layer_arrays(layer)
    if acc_bits not in a["plans"]:
        a["plans"][acc_bits] = numba_kernels.acc_plan(a["tq"], acc_bits)
    return a, a["plans"][acc_bits]


def layer_rows(layer, rows: torch.Tensor, acc_bits: int | None = 32, need_idx: bool = True,
               ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(idx, acc) of an ExportedLayer for rows (M, K) (unpadded): the fused kernel.

    need_idx=False lets the compiled kernel skip writing the indices (idx is then None)."""
    a, plan = _layer_plan(layer, acc_bits)
    return dispatch.fused(numba_kernels.as_f32(rows), a["cb"], a["tq"], layer.metric, acc_bits, plan,
                          need_idx=need_idx, packed=a.setdefault("packed", {}))


def layer_output(layer, rows: torch.Tensor, acc_bits: int | None = 32) -> torch.Tensor | None:
    """Dequantized output (M, N) float32 of an ExportedLayer for rows (M, K), straight from the compiled kernel
    (encode, look-up, wrap and dequantize in one pass; bit-identical to `layer_rows` + `quant.dequantize`).
    None where the compiled kernel does not apply (the caller then uses `layer_rows`)."""
    a, plan = _layer_plan(layer, acc_bits)
    return dispatch.fused_output(numba_kernels.as_f32(rows), a["cb"], a["tq"], layer.metric, plan, layer.scale,
                                 layer.bias, a.setdefault("packed", {}))


@torch.no_grad()
def run_layer_native(layer, x: torch.Tensor, acc_bits: int | None = 32, stats=None) -> torch.Tensor:
    """Same as ``run_layer(layer, x, acc_bits, impl="fast", stats)``, with the fused kernel."""
    return run_layer(layer, x, acc_bits, impl="native", stats=stats)
