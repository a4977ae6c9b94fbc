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
from ..vq.layers import lut_layers, nan_rows
from . import q8
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
              stats: EngineStats | None = None, encode: str = "float32") -> torch.Tensor:
    """One exported layer on input x (the layer's input as in the float model).

    The arithmetic is the accelerator's (float32 encode, integer look-up); the output is float32, cast to
    x's dtype when x is another floating type. Integer inputs are refused. encode="int8": the integer-grid encode
    of `lutnb.deploy.q8` (its plain reference definition here; `lutnb.compile` has the fast kernel)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"layer {layer.name}: input is a {type(x).__name__}; pass a torch.Tensor")
    if not (x.is_floating_point()):
        raise TypeError(f"layer {layer.name}: input dtype {x.dtype} is not floating point; the engine encodes "
                        "float activations (cast the input with .float())")
    rows = im2col(x, layer).float()
    y = None
    if q8.check_encode(encode) == "int8":
        idx = q8.encode_rows_reference(rows, layer)
        acc = lookup_accumulate(idx, layer, acc_bits, "fast" if impl == "native" else impl)
    elif impl == "native":  # fused encode + look-up kernel
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
    y = nan_rows(y, rows)  # the LUT layers' policy: a row with a NaN or inf input gives NaN, not a valid code
    if y.dtype != x.dtype:
        y = y.to(x.dtype)
    if layer.kind == "linear":
        return y.reshape(*x.shape[:-1], layer.out_features)
    cv = layer.conv
    B = x.shape[0]
    ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                              tuple(cv["padding"]), tuple(cv["dilation"]))
    N = layer.out_features
    return y.reshape(B, ho * wo, N).transpose(1, 2).reshape(B, N, ho, wo)


class EngineLayer(nn.Module):
    """An nn.Module that runs one exported layer on the integer engine.

    ``weight`` / ``bias``: what code reading ``module.weight`` expects (e.g. Hugging Face T5 reads
    ``self.wo.weight.dtype`` to choose its activations' dtype). `IntegerEngine` passes the replaced layer's
    original float weight (a frozen, non-persistent buffer: it moves with ``.to()``, is not in the
    state_dict and is never used in the computation, which reads the tables only); ``bias`` is the tables'
    bias (float32, or None). Built without ``weight=``, ``weight`` is None."""

    def __init__(self, layer: ExportedLayer, acc_bits: int | None = 32, impl: str = "fast",
                 stats: EngineStats | None = None, weight: torch.Tensor | None = None, encode: str = "float32"):
        super().__init__()
        if not isinstance(layer, ExportedLayer):
            raise TypeError(f"EngineLayer(layer=...) got a {type(layer).__name__}; pass an ExportedLayer")
        if impl not in IMPLS:
            raise ValueError(f"impl={impl!r}: use one of {IMPLS}")
        self.layer, self.acc_bits, self.impl, self.stats = layer, quant.check_acc_bits(acc_bits), impl, stats
        self.encode = q8.check_encode(encode)
        if weight is not None:
            if not isinstance(weight, torch.Tensor) or weight.shape[0] != layer.out_features:
                raise ValueError(f"layer {layer.name}: weight must be a tensor with {layer.out_features} rows "
                                 f"(out_features), got {getattr(weight, 'shape', type(weight).__name__)}")
            weight = weight.detach()
        self.register_buffer("weight", weight, persistent=False)
        bias = None if layer.bias is None else torch.as_tensor(layer.bias).clone()
        self.register_buffer("bias", bias, persistent=False)

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    def forward(self, x):
        return run_layer(self.layer, x, self.acc_bits, self.impl, self.stats, self.encode)

    def extra_repr(self) -> str:
        L = self.layer
        return (f"{L.kind} K={L.in_features} N={L.out_features} v={L.v} c={L.c} metric={L.metric} "
                f"b={L.table_bits} acc_bits={self.acc_bits} impl={self.impl}")


def _as_pair(x):
    if isinstance(x, str):
        return x
    return [int(t) for t in x] if isinstance(x, (tuple, list)) else [int(x), int(x)]


def layer_mismatches(exported: ExportedLayer, module: nn.Module) -> list[str]:
    """The fields in which an exported layer disagrees with a model's LUT layer ([] when it fits)."""
    kind = "conv2d" if isinstance(module, nn.Conv2d) else "linear"
    model_side = {"kind": kind, "in_features (K)": module.K, "out_features (N)": module.N, "v": module.v,
                  "c": module.c, "metric": module.metric,
                  "has_bias": getattr(module, "bias", None) is not None}
    tables_side = {"kind": exported.kind, "in_features (K)": exported.in_features,
                   "out_features (N)": exported.out_features, "v": exported.v, "c": exported.c,
                   "metric": exported.metric, "has_bias": exported.bias is not None}
    if kind == "conv2d" and exported.kind == "conv2d":
        cv = exported.conv
        for f in ("kernel_size", "stride", "padding", "dilation"):
            model_side[f] = _as_pair(getattr(module, f))
            tables_side[f] = _as_pair(cv[f])
        model_side["in_channels"], tables_side["in_channels"] = module.in_channels, cv["in_channels"]
        model_side["groups"], tables_side["groups"] = module.groups, 1
        model_side["layout"] = getattr(module, "layout", "channel")
        tables_side["layout"] = exported.layout
    return [f"{f} is {tables_side[f]!r} in the tables, {model_side[f]!r} in the model"
            for f in model_side if tables_side[f] != model_side[f]]


class IntegerEngine(nn.Module):
    """A converted model whose LUT layers run on exported integer tables; the rest stays float.

    ``IntegerEngine(model)`` exports the model's tables itself; pass ``exported=`` (e.g. from
    `lutnb.load_tables`) to run tables from a file. The float parts come from a copy of `model`.
    The tables must fit the model's LUT layers: same names, and per layer the same kind, K, N, v, c,
    metric, bias presence and (conv) kernel, stride, padding, dilation, channels and layout; otherwise
    ValueError naming the layer and the field. table_bits may differ (export at another width).
    encode: "float32" (the exact float32 distances, default) or "int8" (`lutnb.deploy.q8`, opt-in).
    """

    def __init__(self, model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,
                 impl: str = "fast", count_overflows: bool = False, encode: str = "float32"):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"IntegerEngine(model=...) got a {type(model).__name__}; pass the converted nn.Module")
        if exported is not None and not isinstance(exported, ExportedModel):
            raise TypeError(f"IntegerEngine(exported=...) got a {type(exported).__name__}; pass an ExportedModel "
                            "(from export_tables(model) or load_tables(path))")
        if impl not in IMPLS:
            raise ValueError(f"impl={impl!r}: use one of {IMPLS}")
        quant.check_acc_bits(acc_bits)
        q8.check_encode(encode)
        exported = exported if exported is not None else export_tables(model)
        self.exported = exported
        self.stats = EngineStats() if count_overflows else None
        self.model = copy.deepcopy(model).eval()
        found = list(lut_layers(self.model))
        names = [n for n, _ in found]
        missing = [n for n in names if n not in exported.layers]
        extra = [n for n in exported.layers if n not in names]
        if missing or extra:
            raise ValueError(f"exported tables do not match the model: missing {missing}, unexpected {extra}")
        problems = [f"layer {n!r}: {p}" for n, m in found for p in layer_mismatches(exported[n], m)]
        if problems:
            raise ValueError("exported tables do not match the model's LUT layers (tables of another model or "
                             "another conversion?): " + "; ".join(problems)
                             + "; export the tables from this model (export_tables(model)) or load the file "
                             "written for it")
        # a module reachable under several names (``self.b = self.a``) is replaced under every one of them
        every_name = {}
        for n, m in self.model.named_modules(remove_duplicate=False):
            every_name.setdefault(id(m), []).append(n)
        for n, m in found:
            eng = EngineLayer(exported[n], acc_bits, impl, self.stats, weight=getattr(m, "weight", None),
                              encode=encode)
            for alias in every_name.get(id(m), [n]):
                parent_name, _, attr = alias.rpartition(".")
                parent = self.model.get_submodule(parent_name) if parent_name else self.model
                setattr(parent, attr, eng)

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


def layer_plan(layer, acc_bits: int | None) -> tuple[dict, tuple]:
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
    a, plan = layer_plan(layer, acc_bits)
    return dispatch.fused(numba_kernels.as_f32(rows), a["cb"], a["tq"], layer.metric, acc_bits, plan,
                          need_idx=need_idx, packed=a.setdefault("packed", {}))


def layer_output(layer, rows: torch.Tensor, acc_bits: int | None = 32) -> torch.Tensor | None:
    """Dequantized output (M, N) float32 of an ExportedLayer for rows (M, K), straight from the compiled kernel
    (encode, look-up, wrap and dequantize in one pass; bit-identical to `layer_rows` + `quant.dequantize`).
    None where the compiled kernel does not apply (the caller then uses `layer_rows`)."""
    a, plan = layer_plan(layer, acc_bits)
    return dispatch.fused_output(numba_kernels.as_f32(rows), a["cb"], a["tq"], layer.metric, plan, layer.scale,
                                 layer.bias, a.setdefault("packed", {}))


@torch.no_grad()
def run_layer_native(layer, x: torch.Tensor, acc_bits: int | None = 32, stats=None) -> torch.Tensor:
    """Same as ``run_layer(layer, x, acc_bits, impl="fast", stats)``, with the fused kernel."""
    return run_layer(layer, x, acc_bits, impl="native", stats=stats)
