"""LUT layers: `LUTLinear` and `LUTConv2d`, drop-in subclasses of nn.Linear and nn.Conv2d.

A layer computes Y = X W^T + b on rows X (M, K) (im2col rows for a conv). K is padded with zeros to
S*v and split into S sub-spaces of length v; sub-space s has a codebook C_s (c x v). Modes:

- ``"exact"``: the float layer (reference).
- ``"lut"``: hard look-up. idx = argmin_j d(X_s, C_s[j]); Y = sum_s T_s[idx_s] + b with T_s = C_s W_s^T.
  Backward (``backward="exact"``, default): straight-through to the exact output,
  Y = Y_exact + sg(Y_lut - Y_exact). ``backward="soft"``: the gradient of a soft assignment
  softmax(-d / temperature) (LUT-NN style), forward still hard. ``backward="hard"``: the VQ
  straight-through estimator on the layer's *input* (VQ-VAE style), Q = C[idx] + X - sg(X),
  Y = Q W^T + b: the weights' gradient is taken on the quantized rows the layer really uses (the "exact"
  STE takes it on X), the centroids get theirs through W and the input gets the identity.
- ``"soft"``: soft assignment forward, Y = softmax(-d/T) C W^T + b.
- ``"quant"``: hard look-up in INT-b tables (see `lutnb.vq.quant` for the scale scheme); in no-grad it is
  bit-identical to the integer engine; with grad, the value is quantized and the gradient is the "lut"
  mode's (fake quantization with a straight-through estimator).

Inputs and dtypes: a layer takes floating-point inputs of its parameters' dtype (float32, float64, bfloat16,
float16) and returns that dtype in every mode; integer inputs are refused with a TypeError. Distances are
computed in at least float32 (`lutnb.vq.distances.encode` upcasts bfloat16/float16), so a low-precision
layer picks the true nearest centroid of its (rounded) input. The quantized mode dequantizes in float32 (as
the integer engine does) and casts the result to the input's dtype.

Non-finite inputs (documented choice: propagate): in the hard modes ("lut", "quant") an input row that holds
a NaN or an inf gives NaN in every output of that row (every output position whose receptive field holds
one, for a conv), as the float layer would, instead of the output of whatever code such a row encodes to;
"exact" and "soft" propagate NaN by their arithmetic. `lutnb.calibrate` refuses non-finite rows.

With ``track_recon=True`` a layer keeps the two-sided reconstruction loss of its last forward in
``layer.recon_loss``: mse(sg(Y_lut), Y_exact) + mse(Y_lut, sg(Y_exact)).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels import compiled, dispatch
from ..kernels.common import check_metric
from . import quant
from .checks import bad_rows, bad_rows_if_any, check_input_dtype, check_int, check_temperature, check_vc, nan_rows  # noqa: F401
from .distances import encode, pairwise_distance
from .functional import (
    GatherRows,
    StraightThrough,
    TableSum,
    conv_output_size,
    im2col,
    im2col_into,
    scratch_buffer,
    two_sided_mse,
)

MODES = ("exact", "lut", "soft", "quant")


BACKWARDS = ("exact", "soft", "hard")


LAYOUTS = ("channel", "patch")


def equivalent_bits(v: int, c: int) -> float:
    """Bits per activation element of a VQ code: log2(c) / v (c=16, v=4 -> 1.0)."""
    return math.log2(c) / v


_LOW_PRECISION = (torch.bfloat16, torch.float16)


class LUTLayer:
    """Mixin holding the VQ state and the look-up maths shared by LUTLinear and LUTConv2d."""

    v: int
    c: int
    metric: str

    def _init_lut(self, K: int, N: int, v: int, c: int, metric: str, table_bits: int, mode: str,
                  backward: str, temperature: float, acc_bits: int | None) -> None:
        v, c = check_vc(v, c)
        self.v, self.c = v, c
        if K < 1 or N < 1:
            raise ValueError(f"{type(self).__name__} needs at least one input and one output feature; got K={K}, "
                             f"N={N}")
        self.metric = check_metric(metric)
        self.table_bits = quant.check_table_bits(table_bits)
        self.acc_bits = quant.check_acc_bits(acc_bits)
        self.K, self.N = K, N
        self.S = math.ceil(K / v)
        self.K_padded = self.S * v
        factory = {"device": self.weight.device, "dtype": self.weight.dtype}
        self.codebooks = nn.Parameter(torch.randn(self.S, c, v, **factory) * 0.1)
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.mode = mode
        self.backward = backward
        self.temperature = temperature
        self.track_recon = False
        self.recon_loss: torch.Tensor | None = None
        self.last_indices: torch.Tensor | None = None
        self.keep_indices = False
        self._qcache = None
        self._warned = False

    _TRANSIENT = ("recon_loss", "last_indices", "_qcache")

    def scratch_rows_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows_of(x)

    def __getstate__(self):
        # drop per-forward tensors (they may be non-leaf graph nodes) so copy.deepcopy / pickling work
        state = nn.Module.__getstate__(self).copy()
        for key in self._TRANSIENT:
            if key in state:
                state[key] = None
        return state

    # --- validated attributes -------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode={value!r} is not a LUT mode: use one of {MODES}")
        self._mode = value

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = check_temperature(value)

    @property
    def backward(self) -> str:
        return self._backward

    @backward.setter
    def backward(self, value: str) -> None:
        if value not in BACKWARDS:
            raise ValueError(f"backward={value!r} is not supported: use one of {BACKWARDS}")
        self._backward = value

    # --- maths ----------------------------------------------------------------------------------
    def weight_matrix(self) -> torch.Tensor:
        """W as (N, K) in the layer's row order (im2col layout for a conv)."""
        return self.matrix_of(self.weight)

    def matrix_of(self, weight: torch.Tensor) -> torch.Tensor:
        """A weight tensor of this layer's shape (e.g. the fp32 original's) as (N, K) in the layer's row order."""
        return weight

    def set_weight_matrix(self, W: torch.Tensor) -> None:
        """Write W (N, K), given in `weight_matrix`'s row order, into the layer's weight (in place)."""
        if tuple(W.shape) != (self.N, self.K):
            raise ValueError(f"{type(self).__name__}.set_weight_matrix: W must be (N, K) = ({self.N}, {self.K}); "
                             f"got {tuple(W.shape)}")
        with torch.no_grad():
            self.weight.copy_(self._weight_from_matrix(W.to(self.weight.dtype)))

    def _weight_from_matrix(self, W: torch.Tensor) -> torch.Tensor:
        return W

    def padded_weight(self) -> torch.Tensor:
        W = self.weight_matrix()
        return F.pad(W, (0, self.K_padded - self.K)) if self.K_padded != self.K else W

    def split(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows (M, K) -> sub-vectors (M, S, v), zero-padded."""
        if rows.shape[-1] != self.K:
            raise ValueError(f"{type(self).__name__} expects rows with K={self.K} features; got {rows.shape[-1]}")
        if self.K_padded != self.K:
            rows = F.pad(rows, (0, self.K_padded - self.K))
        return rows.reshape(rows.shape[0], self.S, self.v)

    def tables(self) -> torch.Tensor:
        """Float tables T (S, c, N): T[s, j, n] = C_s[j] . W[n, s]."""
        Wp = self.padded_weight().reshape(self.N, self.S, self.v)
        return torch.einsum("scv,nsv->scn", self.codebooks, Wp)

    def quantized_tables(self, bits: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Tq int64 (S, c, N), scale (N,)) at `bits` (default: the layer's table_bits)."""
        return quant.quantize_tables(self.tables(), bits or self.table_bits)

    def encode_rows(self, rows: torch.Tensor) -> torch.Tensor:
        return encode(self.split(rows.detach()), self.codebooks.detach(), self.metric)

    def bias_or_none(self):
        """The bias Parameter, or None for a layer without one."""
        return self.bias

    def _soft_sub(self, sub: torch.Tensor) -> torch.Tensor:
        if sub.dtype in _LOW_PRECISION:  # distances and the softmax in float32, the result in the input's dtype
            cb = self.codebooks.float()
            d = pairwise_distance(sub.float(), cb, self.metric)
            p = torch.softmax(-d / self.temperature, dim=-1)
            return torch.einsum("msc,scv->msv", p, cb).to(sub.dtype)
        d = pairwise_distance(sub, self.codebooks, self.metric)  # (M, S, c)
        p = torch.softmax(-d / self.temperature, dim=-1)
        return torch.einsum("msc,scv->msv", p, self.codebooks)

    def hard_sub(self, sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The looked-up centroids C_s[idx[m, s]] (M, S, v), differentiable w.r.t. the codebooks."""
        S = self.S
        flat = self.codebooks.reshape(S * self.c, self.v)
        return GatherRows.apply(flat, idx + torch.arange(S, device=idx.device) * self.c)

    def _quant_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Quantized-table output rows (M, N): integer look-up-accumulate then dequantize."""
        key = (self.weight._version, self.codebooks._version, self.weight.data_ptr(),
               self.codebooks.data_ptr(), self.table_bits)
        if self._qcache is None or self._qcache[0] != key or torch.is_grad_enabled():
            with torch.no_grad():
                tq, scale = self.quantized_tables()
                self._qcache = (key, tq, scale, quant.flat_tables(tq), {})
        _, tq, scale, flat, packed = self._qcache
        b = self.bias_or_none()
        y = dispatch.quant_lookup(idx, tq, scale, b, self.acc_bits, self.table_bits, packed)
        if y is not None:  # the compiled INT8 look-up with the dequantize fused (bit-identical to the lines below)
            return y
        acc = quant.lookup_accumulate(idx, tq, self.acc_bits, flat=flat)
        return quant.dequantize(acc, scale, None if b is None else b.detach())

    def lut_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Output rows (M, N) for input rows (M, K) in the current mode (NaN rows for non-finite input rows)."""
        y = self.mode_rows(rows)
        if self.mode in ("lut", "quant"):
            y = nan_rows(y, rows)
        return y

    def mode_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Output rows (M, N) for input rows (M, K) in the current mode, without the NaN propagation."""
        W, b = self.weight_matrix(), self.bias_or_none()
        mode = self.mode
        if mode == "exact":
            self.recon_loss = None
            return F.linear(rows, W, b)
        self._warn_if_uncalibrated()
        Wp = self.padded_weight()
        sub = self.split(rows)
        if mode == "soft":
            y = F.linear(self._soft_sub(sub).reshape(rows.shape[0], -1), Wp, b)
            self._record_recon(rows, W, b, y)
            return y
        idx = encode(sub.detach(), self.codebooks.detach(), self.metric)
        if self.keep_indices:
            self.last_indices = idx
        grad = torch.is_grad_enabled() and (rows.requires_grad or self.weight.requires_grad
                                            or self.codebooks.requires_grad)
        if mode == "quant" and not grad:
            return self._quant_rows(idx).to(rows.dtype)
        if not grad:
            lib = dispatch.compiled_for_tensor(rows)
            if lib is not None:  # sum_s T_s[idx_s]: M*S*N adds instead of a gather and an M*K*N GEMM
                return compiled.table_sum(idx, self.tables(), b, lib=lib)
            return F.linear(self.hard_sub(sub, idx).reshape(rows.shape[0], -1), Wp, b)
        hard = self.hard_sub(sub, idx)
        y_exact = None
        if self.backward == "hard":
            y = F.linear((hard + sub - sub.detach()).reshape(rows.shape[0], -1), Wp, b)
            y_lut = y
        elif self.backward == "soft":
            soft = self._soft_sub(sub)
            mixed = soft + (hard - soft).detach()
            y = F.linear(mixed.reshape(rows.shape[0], -1), Wp, b)
            y_lut = F.linear(hard.reshape(rows.shape[0], -1), Wp, b) if self.track_recon else y
        else:
            y_lut = F.linear(hard.reshape(rows.shape[0], -1), Wp, b)
            y_exact = F.linear(rows, W, b)
            y = y_exact + (y_lut - y_exact).detach()
        self._record_recon(rows, W, b, y_lut, y_exact)
        if mode == "quant":
            with torch.no_grad():
                yq = self._quant_rows(idx).to(y.dtype)
            y = y + (yq - y).detach()
        return y

    def _warn_if_uncalibrated(self) -> None:
        # reading the flag is a host sync on an accelerator: read it again only when the buffer changed
        # (calibrate() and load_state_dict() write it in place, which bumps its version)
        key = (self.calibrated._version, self.calibrated.data_ptr())
        if self._warned or getattr(self, "_calibrated_seen", None) == key:
            return
        if bool(self.calibrated):
            self._calibrated_seen = key
        else:
            warnings.warn(f"{type(self).__name__} runs in mode {self.mode!r} with codebooks that were never "
                          "calibrated: call lutnb.calibrate(model, batches) first", stacklevel=4)
            self._warned = True

    def uses_ste_fast_path(self, x: torch.Tensor) -> bool:
        """Training forward with a hard look-up and the straight-through gradient to the exact output."""
        return (self.mode in ("lut", "quant") and self.backward == "exact" and torch.is_grad_enabled()
                and (x.requires_grad or self.weight.requires_grad or self.codebooks.requires_grad))

    def ste_forward(self, x: torch.Tensor, exact_fn, rows_to_out) -> torch.Tensor:
        """Y = Y_exact + sg(Y_lut - Y_exact), with Y_exact from the layer's own float op (conv2d/linear).

        Encoding and im2col run without autograd (the look-up's gradient is the exact one), so the only
        graph is the float op's, plus, with track_recon, Y_lut = C[idx] sg(W)^T + sg(b) for the codebooks.
        The reconstruction loss is mse(sg(Y_lut), Y_exact) + mse(Y_lut, sg(Y_exact)).
        """
        self._warn_if_uncalibrated()
        with torch.no_grad():
            rows = self.scratch_rows_of(x.detach())
            bad = bad_rows_if_any(rows)  # CPU: None when no row is bad (one summing pass, not an (M, K) mask)
            idx = encode(self.split(rows), self.codebooks.detach(), self.metric)
        if self.keep_indices:
            self.last_indices = idx
        y_exact = exact_fn(x)
        b = self.bias_or_none()
        b = None if b is None else b.detach()
        M = rows.shape[0]
        lib = dispatch.compiled_for_tensor(rows)
        if self.track_recon and self.codebooks.requires_grad:
            if lib is not None:  # tables T = C sg(W) (small), then a differentiable float look-up
                Wp = self.padded_weight().detach().reshape(self.N, self.S, self.v).permute(1, 2, 0)
                y_rows = TableSum.apply(torch.bmm(self.codebooks, Wp), idx)
                y_lut = rows_to_out(y_rows if b is None else y_rows + b, x)
            else:
                hard = self.hard_sub(None, idx).reshape(M, -1)
                y_lut = rows_to_out(F.linear(hard, self.padded_weight().detach(), b), x)
        else:
            with torch.no_grad():
                if lib is not None:
                    y_rows = compiled.table_sum(idx, self.tables(), b, lib=lib)
                else:
                    y_rows = F.linear(self.hard_sub(None, idx).reshape(M, -1), self.padded_weight(), b)
                y_lut = rows_to_out(y_rows, x)
        if self.track_recon:
            self.recon_loss = two_sided_mse(y_lut, y_exact)
        else:
            self.recon_loss = None
        if self.mode == "quant":
            with torch.no_grad():
                target = rows_to_out(self._quant_rows(idx).to(y_exact.dtype), x)
        else:
            target = y_lut.detach().to(y_exact.dtype)  # a no-op, except under autocast
        if bad is not None:  # non-finite input rows: NaN outputs (the propagation policy)
            mask = rows_to_out(bad.unsqueeze(1).expand(M, self.N).to(target.dtype), x) > 0
            target = torch.where(mask, float("nan"), target)  # keeps target's memory layout
        return StraightThrough.apply(y_exact, target)

    def _record_recon(self, rows, W, b, y_lut, y_exact=None) -> None:
        if not self.track_recon:
            self.recon_loss = None
            return
        if y_exact is None:
            y_exact = F.linear(rows, W, b)
        self.recon_loss = two_sided_mse(y_lut, y_exact)

    # --- reporting --------------------------------------------------------------------------------
    @property
    def equivalent_bits(self) -> float:
        return equivalent_bits(self.v, self.c)

    def table_bytes(self, bits: int | None = None) -> int:
        return math.ceil(self.S * self.c * self.N * (bits or self.table_bits) / 8)

    def lut_extra_repr(self) -> str:
        return (f"v={self.v}, c={self.c}, metric={self.metric!r}, S={self.S}, mode={self.mode!r}, "
                f"table_bits={self.table_bits}")


class LUTLinear(nn.Linear, LUTLayer):
    """nn.Linear computed by vector quantization and table look-up (see the module docstring)."""

    __getstate__ = LUTLayer.__getstate__  # nn.Module's comes first in the MRO

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, v: int = 4, c: int = 16,
                 metric: str = "l2", table_bits: int = 8, mode: str = "lut", backward: str = "exact",
                 temperature: float = 1.0, acc_bits: int | None = None, device=None, dtype=None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_lut(in_features, out_features, v, c, metric, table_bits, mode, backward, temperature,
                       acc_bits)

    @classmethod
    def from_linear(cls, layer: nn.Linear, **kw) -> "LUTLinear":
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"LUTLinear.from_linear needs an nn.Linear; got {type(layer).__name__} (use lutnb.convert "
                            "for a whole model, which also handles Conv2d and transformers' Conv1D)")
        new = cls(layer.in_features, layer.out_features, bias=layer.bias is not None,
                  device=layer.weight.device, dtype=layer.weight.dtype, **kw)
        with torch.no_grad():
            new.weight.copy_(layer.weight)
            if layer.bias is not None:
                new.bias.copy_(layer.bias)
        new.train(layer.training)
        return new

    def rows_of(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_dtype(self, x)
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"LUTLinear expects inputs (..., K={self.in_features} features); got shape "
                             f"{tuple(x.shape)}")
        if self.mode == "exact":
            return F.linear(x, self.weight, self.bias)
        if self.uses_ste_fast_path(x):
            return self.ste_forward(x, lambda t: F.linear(t, self.weight, self.bias), self._rows_to_out)
        return self._rows_to_out(self.lut_rows(self.rows_of(x)), x)

    def _rows_to_out(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self.lut_extra_repr()


class LUTConv2d(nn.Conv2d, LUTLayer):
    """nn.Conv2d lowered by im2col and computed by table look-up.

    ``layout="channel"`` (default) orders K as (kh, kw, Cin): a sub-vector is v consecutive input channels
    at one kernel position; ``layout="patch"`` keeps PyTorch's (Cin, kh, kw) order (v=9 = one channel's 3x3).
    Grouped convolutions are refused (convert() leaves them float and reports them).
    """

    __getstate__ = LUTLayer.__getstate__

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, v: int = 4, c: int = 16,
                 metric: str = "l2", table_bits: int = 8, mode: str = "lut", backward: str = "exact",
                 temperature: float = 1.0, acc_bits: int | None = None, layout: str = "channel",
                 device=None, dtype=None):
        if groups != 1:
            raise ValueError(f"groups={groups} is not supported by LUTConv2d: grouped/depthwise convolutions "
                             "have no shared K to quantize; keep the layer float (convert(..., skip=[name]) "
                             "does this automatically) or split it into groups=1 convolutions")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode={padding_mode!r} is not supported by LUTConv2d: use 'zeros' or "
                             "keep the layer float")
        if isinstance(padding, str):
            raise ValueError(f"padding={padding!r}: give explicit integer padding to LUTConv2d")
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is not supported: use one of {LAYOUTS}")
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                           dilation=dilation, groups=1, bias=bias, device=device, dtype=dtype)
        self.layout = layout
        kh, kw = self.kernel_size
        self._init_lut(in_channels * kh * kw, out_channels, v, c, metric, table_bits, mode, backward,
                       temperature, acc_bits)

    @classmethod
    def from_conv(cls, layer: nn.Conv2d, **kw) -> "LUTConv2d":
        if not isinstance(layer, nn.Conv2d):
            raise TypeError(f"LUTConv2d.from_conv needs an nn.Conv2d; got {type(layer).__name__}")
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                  padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias is not None, padding_mode=layer.padding_mode,
                  device=layer.weight.device, dtype=layer.weight.dtype, **kw)
        with torch.no_grad():
            new.weight.copy_(layer.weight)
            if layer.bias is not None:
                new.bias.copy_(layer.bias)
        new.train(layer.training)
        return new

    def matrix_of(self, weight: torch.Tensor) -> torch.Tensor:
        if self.layout == "channel":
            return weight.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        return weight.reshape(self.out_channels, -1)

    def _weight_from_matrix(self, W: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        if self.layout == "channel":
            return W.reshape(self.out_channels, kh, kw, -1).permute(0, 3, 1, 2)
        return W.reshape(self.weight.shape)

    def rows_of(self, x: torch.Tensor) -> torch.Tensor:
        """im2col rows (B*Ho*Wo, K) of an input batch, in this layer's K order."""
        return im2col(x, self.kernel_size, self.stride, self.padding, self.dilation, self.layout)

    def scratch_rows_of(self, x: torch.Tensor) -> torch.Tensor:
        """rows_of(x) without autograd, written into a scratch buffer shared by all layers of this thread:
        valid until the next LUT layer runs (callers use the rows within their own forward only)."""
        B = x.shape[0]
        Ho, Wo = self.output_size(x.shape[2], x.shape[3])
        buf = scratch_buffer(B * Ho * Wo * self.K, x.dtype, x.device)
        return im2col_into(x, self.kernel_size, self.stride, self.padding, self.dilation, self.layout, buf)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return conv_output_size(h, w, self.kernel_size, self.stride, self.padding, self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_dtype(self, x)
        if self.mode == "exact":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"LUTConv2d expects a 4-D (B, C={self.in_channels}, H, W) input; got shape "
                             f"{tuple(x.shape)}")
        if self.uses_ste_fast_path(x):
            exact = lambda t: F.conv2d(t, self.weight, self.bias, self.stride, self.padding, self.dilation)
            return self.ste_forward(x, exact, self._rows_to_out)
        rows = self.rows_of(x) if torch.is_grad_enabled() else self.scratch_rows_of(x)
        return self._rows_to_out(self.lut_rows(rows), x)

    def _rows_to_out(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        ho, wo = self.output_size(x.shape[2], x.shape[3])
        return y.reshape(B, ho * wo, self.out_channels).transpose(1, 2).reshape(B, self.out_channels, ho, wo)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self.lut_extra_repr() + f", layout={self.layout!r}"


def lut_layers(model: nn.Module) -> Iterator[tuple[str, LUTLayer]]:
    """(name, layer) for every LUT layer in a model."""
    for name, m in model.named_modules():
        if isinstance(m, LUTLayer):
            yield name, m


def codebook_params(model: nn.Module) -> tuple[list, list]:
    """(the codebooks of every LUT layer, every other parameter of the model): the two optimizer groups."""
    codebooks = [m.codebooks for _, m in lut_layers(model)]
    ids = {id(p) for p in codebooks}
    return codebooks, [p for p in model.parameters() if id(p) not in ids]


def set_mode(model: nn.Module, mode: str, **attrs) -> nn.Module:
    """Set every LUT layer's mode (and optional attributes such as backward=, temperature=, track_recon=)."""
    for _, m in lut_layers(model):
        m.mode = mode
        for k, val in attrs.items():
            if not hasattr(m, k):
                raise AttributeError(f"LUT layers have no attribute {k!r}")
            setattr(m, k, val)
    return model


def reconstruction_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the per-layer reconstruction losses of the last forward (layers with track_recon=True)."""
    losses = [m.recon_loss for _, m in lut_layers(model) if m.recon_loss is not None]
    if not losses:
        p = next(model.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else "cpu")
    return torch.stack(losses).sum()
