"""`lutnb.compile(model)`: one CPU inference path for a converted model, bit-identical to the integer engine.

Every LUT layer runs on the fastest kernel that fits this CPU, chosen by `lutnb.kernels.dispatch`: the compiled
C kernel (AVX-512 VBMI/VNNI encode + vpermb/vpdpbusd look-up where the CPU has them, its portable build where
it does not) with the dequantize fused into the same pass; where it does not apply (tables wider than 8 bits,
c > 16 look-ups handled by numba, other devices or dtypes, ``LUTNB_CKERNEL=0`` / ``LUTNB_NATIVE=0``) the layer
falls back to `lutnb.deploy.engine.run_layer` (numba or torch), which gives the same bits.

What it does beyond `IntegerEngine(impl="native")`:

* Layout: a conv's output comes back as a channels-last (NHWC-strided) NCHW tensor, a view of the kernel's
  (rows, N) output, no transpose copy. BatchNorm / ReLU / pooling / residual adds in torch keep that layout,
  so the next conv's im2col reads NHWC memory with no permute copy.
* im2col: one strided copy into a buffer kept per layer and input shape (no fresh pages every call).
* One thread pool: the kernel splits rows over ``torch.get_num_threads()`` threads (its own pool, idle
  while torch runs); run with ``OMP_WAIT_POLICY=PASSIVE`` at 2+ threads so torch's OpenMP workers sleep
  instead of spinning on the cores the kernel needs (see `benchmarks/bench_inference.py`).

Exactness: the output equals ``IntegerEngine(model, impl="reference")`` bit for bit (tests/test_inference.py):
same float32 encode, same int32 look-up-accumulate, same float32 dequantize; only the memory layout of the
tensors between layers differs. BatchNorm is not folded into the tables' scale and bias, because that changes
the float rounding of the output (documented in docs/cpu-inference.md).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..kernels import compiled as ckernel
from ..vq.checks import nan_rows
from ..vq.functional import conv_output_size
from . import engine as E
from . import q8
from .export import ExportedLayer, ExportedModel


class FastLayer(E.EngineLayer):
    """One exported LUT layer on the compiled kernel (fused encode, look-up, dequantize); see the module doc.
    An `EngineLayer` (same checks, ``weight`` / ``bias`` buffers, ``in_features`` / ``out_features``) whose
    forward runs the compiled kernel."""

    def __init__(self, layer: ExportedLayer, acc_bits: int | None = 32, weight: torch.Tensor | None = None,
                 encode: str = "float32", channels_last: bool = True):
        super().__init__(layer, acc_bits, impl="fast", weight=weight, encode=encode)
        self.channels_last = bool(channels_last)
        self._buffers_im2col: dict = {}
        self.calls = {"kernel": 0, "fallback": 0}
        self._q8_cached = None

    def extra_repr(self) -> str:
        L = self.layer
        return (f"{L.kind} K={L.in_features} N={L.out_features} v={L.v} c={L.c} metric={L.metric} "
                f"acc_bits={self.acc_bits}")

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        L = self.layer
        if L.kind == "linear":
            if x.shape[-1] != L.in_features:
                raise ValueError(f"layer {L.name}: input has {x.shape[-1]} features (last dimension), expected "
                                 f"in_features={L.in_features}; pass (..., {L.in_features})")
            return x.reshape(-1, L.in_features)
        if x.dim() != 4:
            raise ValueError(f"layer {L.name}: conv input must be (B, C, H, W); got shape {tuple(x.shape)}")
        if x.shape[1] != L.conv["in_channels"]:
            raise ValueError(f"layer {L.name}: input has {x.shape[1]} channels, expected "
                             f"in_channels={L.conv['in_channels']}")
        cv = L.conv
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (tuple(cv[f]) for f in ("kernel_size", "stride", "padding",
                                                                            "dilation"))
        B, C, H, W = x.shape
        ho, wo = conv_output_size(H, W, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
        key = tuple(x.shape)
        bufs = self._buffers_im2col.get(key)
        if bufs is None:
            self._buffers_im2col.clear()  # one shape at a time: a new batch size replaces the old buffers
            # the padded input, NHWC, zero borders written once (only the interior is copied per call)
            xp = torch.zeros(B, H + 2 * ph, W + 2 * pw, C)
            bufs = self._buffers_im2col[key] = (xp, torch.empty(B * ho * wo * L.in_features))
        xp, rows = bufs
        xp[:, ph:ph + H, pw:pw + W, :].copy_(x.permute(0, 2, 3, 1))
        sB, sH, sW, sC = xp.stride()
        if L.layout == "channel":  # K ordered (kh, kw, C)
            win = xp.as_strided((B, ho, wo, kh, kw, C), (sB, sH * sh, sW * sw, sH * dh, sW * dw, sC))
        else:  # "patch": K ordered (C, kh, kw)
            win = xp.as_strided((B, ho, wo, C, kh, kw), (sB, sH * sh, sW * sw, sC, sH * dh, sW * dw))
        if kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
            return xp.view(B * ho * wo, C)  # a 1x1 conv reads the NHWC input itself
        rows.view(win.shape).copy_(win)
        return rows.view(B * ho * wo, L.in_features)

    @staticmethod
    def _nan_rows(y: torch.Tensor, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`nan_rows(y, rows)`, checked on the (smaller) input first: rows hold x's values and zeros only, so when
        x's sum is finite no row is bad (a non-finite sum, also from an overflow, takes the exact row test)."""
        if bool(torch.isfinite(x.sum())):
            return y
        return nan_rows(y, rows)

    def _q8_kernel(self):
        """(lib, packed int8 tables, wrap_bits) when the INT8-encode kernel applies to this layer, else None
        (cached per state of the LUTNB_NATIVE / LUTNB_CKERNEL switches)."""
        key = (_native(), ckernel.enabled())
        if self._q8_cached is None or self._q8_cached[0] != key:
            self._q8_cached = (key, self._q8_kernel_uncached())
        return self._q8_cached[1]

    def _q8_kernel_uncached(self):
        L = self.layer
        if not _native() or not ckernel.enabled() or L.v > 4:
            return None
        lib = ckernel.load()
        if lib is None:
            return None
        a, (proto, wrap_bits, post_wrap) = E.layer_plan(L, self.acc_bits)
        if proto.dtype != np.int32 or post_wrap:
            return None
        packed = ckernel.pack_int8(a["tq"], lib, a.setdefault("packed", {}))
        return None if packed["tq8"] is None else (lib, packed, wrap_bits)

    def _rows_u8(self, x: torch.Tensor) -> torch.Tensor:
        """(the kernel's activations (M, S, 4) uint8 (xq + 128; 128 in padded dims) in a reused buffer, whether x is
        all finite or None when not known); v = 4 convs (layout "channel") are quantized once on the NHWC input,
        then im2col'ed in uint8 (both in C)."""
        L = self.layer
        s = q8.grid(L)["s"]
        lib = ckernel.load()
        if L.kind == "conv2d" and L.v == 4 and L.layout == "channel" and x.dim() == 4 \
                and x.shape[1] == L.conv["in_channels"]:
            # quantize the NHWC input once (C), then a uint8 im2col (C): 4x fewer bytes than the float im2col
            cv = L.conv
            ks, st, pd, dl = (tuple(cv[f]) for f in ("kernel_size", "stride", "padding", "dilation"))
            B, C, H, W = x.shape
            ho, wo = conv_output_size(H, W, ks, st, pd, dl)
            key = ("u8", tuple(x.shape))
            bufs = self._buffers_im2col.get(key)
            if bufs is None:
                self._buffers_im2col.clear()
                bufs = self._buffers_im2col[key] = (torch.empty(B, H, W, C, dtype=torch.uint8),
                                                    torch.empty(B * ho * wo * L.S * 4, dtype=torch.uint8))
            xq, rows = bufs
            xn = x.permute(0, 2, 3, 1).contiguous()  # no copy for a channels-last input
            finite = ckernel.quantize_u8(xn.view(-1, C), s, xq.view(-1, C), lib=lib)
            return ckernel.im2col_u8(xq, ks, st, pd, dl, L.S * 4, rows, lib=lib).view(-1, L.S, 4), finite
        if L.kind == "linear" and L.v == 4 and L.K_padded == L.in_features:
            f = x.reshape(-1, L.in_features).contiguous()
            key = ("u8rows", f.shape[0])
            buf = self._buffers_im2col.get(key)
            if buf is None:
                buf = self._buffers_im2col[key] = torch.empty(f.shape[0], L.in_features, dtype=torch.uint8)
            finite = ckernel.quantize_u8(f, s, buf, lib=lib)
            return buf.view(-1, L.S, 4), finite
        f = self._rows(x)
        if L.K_padded != L.in_features:
            f = torch.nn.functional.pad(f, (0, L.K_padded - L.in_features))
        key = ("u8rows", f.shape[0])
        buf = self._buffers_im2col.get(key)
        if buf is None:
            buf = self._buffers_im2col[key] = torch.full((f.shape[0], L.S, 4), 128, dtype=torch.uint8)
        q8.quantize_u8(f.view(f.shape[0], L.S, L.v), s, out=buf[:, :, :L.v])
        return buf, None

    def _forward_q8(self, x, kern):
        L = self.layer
        lib, packed, wrap_bits = kern
        g = q8.grid(L)
        xu, finite = self._rows_u8(x)
        xu = xu.numpy().reshape(-1, L.S * 4).view(np.uint32)
        _, y = ckernel.fused_q8(xu, g["c2"], g["cinit"], packed["tq8"], wrap_bits, t4=packed["t4"], lib=lib,
                                scale=L.scale, bias=L.bias)
        y = torch.from_numpy(y)
        if finite is False or (finite is None and not bool(torch.isfinite(x.sum()))):
            y = nan_rows(y, self._rows(x))
        return y

    @torch.no_grad()
    def forward(self, x):
        L = self.layer
        native = _native()
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.device.type != "cpu" \
                or x.dtype != torch.float32:
            return E.run_layer(L, x, self.acc_bits, impl="native" if native else "fast", encode=self.encode)
        if self.encode == "int8":
            kern = self._q8_kernel()
            if kern is None:
                self.calls["fallback"] += 1
                return E.run_layer(L, x, self.acc_bits, impl="fast", encode="int8")
            if L.kind == "linear":
                self._rows(x)  # shape check
            y = self._forward_q8(x, kern)
        else:
            rows = self._rows(x)
            y = E.layer_output(L, rows, self.acc_bits) if native else None
            if y is None:  # the compiled kernel does not apply: the engine's own path (numba or torch), same bits
                self.calls["fallback"] += 1
                return E.run_layer(L, x, self.acc_bits, impl="native" if native else "fast")
            y = self._nan_rows(y, rows, x)
        self.calls["kernel"] += 1
        if L.kind == "linear":
            return y.reshape(*x.shape[:-1], L.out_features)
        cv = L.conv
        ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                                  tuple(cv["padding"]), tuple(cv["dilation"]))
        # (B*Ho*Wo, N) is NHWC memory: return it as an NCHW tensor with channels-last strides (no copy)
        y = y.view(x.shape[0], ho, wo, L.out_features).permute(0, 3, 1, 2)
        return y if self.channels_last else y.contiguous()


def _native() -> bool:
    from ..kernels import numba_kernels

    return numba_kernels.enabled()


class CompiledModel(E.IntegerEngine):
    """`IntegerEngine` whose LUT layers are `FastLayer`s (the compiled kernel, channels-last activations).

    Built by `compile`; same arguments and the same table checks as `IntegerEngine`. With ``channels_last=True``
    the model's input is converted to channels-last once when it is a 4-D float32 image batch, and conv outputs
    stay channels-last (values unchanged). Not re-entrant: the layers reuse their im2col buffers, so one compiled
    model must not run in two Python threads at once (compile one per thread)."""

    def __init__(self, model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,
                 encode: str = "float32", channels_last: bool = True):
        if not isinstance(channels_last, bool):
            raise TypeError(f"channels_last={channels_last!r}: pass True or False")
        super().__init__(model, exported, acc_bits=acc_bits, impl="fast", encode=encode)
        self.channels_last = channels_last
        swapped = {}
        for name, m in list(self.model.named_modules(remove_duplicate=False)):
            if isinstance(m, E.EngineLayer):
                if id(m) not in swapped:
                    swapped[id(m)] = FastLayer(m.layer, m.acc_bits, weight=m.weight, encode=encode,
                                                  channels_last=channels_last)
                parent_name, _, attr = name.rpartition(".")
                parent = self.model.get_submodule(parent_name) if parent_name else self.model
                setattr(parent, attr, swapped[id(m)])

    def fast_layers(self) -> dict[str, FastLayer]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, FastLayer)}

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        if self.channels_last and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4 \
                and args[0].dtype == torch.float32:
            args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
        return self.model(*args, **kwargs)


def compile(model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,  # noqa: A001
            encode: str = "float32", channels_last: bool = True) -> CompiledModel:
    """A converted model ready for fast CPU inference: every LUT layer on the compiled kernel where it applies
    (correct fallback elsewhere), bit-identical to ``IntegerEngine(model, exported, acc_bits, impl="reference")``.

    model: a model converted with `lutnb.convert` (and calibrated); exported: its tables (default: exported
    from the model, as `IntegerEngine` does). encode: "float32" (default: the exact float32 distances) or "int8"
    (the integer-grid encode of `lutnb.deploy.q8`: cheaper, other codes; equal to
    ``IntegerEngine(model, exported, acc_bits, impl="reference", encode="int8")`` bit for bit).
    channels_last=False: conv outputs are copied to contiguous NCHW (for model code that calls ``.view`` on
    them; slower)."""
    return CompiledModel(model, exported, acc_bits, encode, channels_last)
