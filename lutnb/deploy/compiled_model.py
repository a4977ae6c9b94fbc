"""`lutnb.compile(model)`: one CPU inference path for a converted model, bit-identical to the integer engine.

Every LUT layer runs on the fastest kernel that fits this CPU: the compiled C kernel (AVX-512 VBMI/VNNI encode +
vpermb/vpdpbusd look-up where the CPU has them, its portable build where it does not); where it does not apply
(tables wider than 8 bits, other devices or dtypes, an encode the kernel does not reproduce bit for bit,
``LUTNB_CKERNEL=0`` / ``LUTNB_NATIVE=0``) the layer falls back to `lutnb.deploy.engine.run_layer` (numba or
torch), which gives the same bits.

What it does beyond `IntegerEngine(impl="native")`:

* One kernel call per layer (plus a quantize pass for an int8-encode conv whose uint8 input no producer handed
  over), from a call plan kept per input shape (`FastLayer._plan`): the kernel reads the conv's NHWC
  input itself (implicit im2col per 64-row block, both encodes; the int8 encode on the uint8 quantized input, a
  Linear's float rows quantized inside the kernel), encodes, looks up, dequantizes, and applies the fused
  epilogue (`lutnb.deploy.fusion`: BatchNorm, residual add, ReLU, and the next conv's uint8 input) before it
  stores the output.
* Layout: a conv's output comes back as a channels-last (NHWC-strided) NCHW tensor, a view of the kernel's (rows, N)
  output, no transpose copy; torch ops keep that layout, so the next conv reads NHWC memory with no permute copy.
* One thread pool: the kernel library is built with OpenMP and shares torch's libgomp (same soname), so a layer's
  row ranges run on torch's own OpenMP workers (``torch.get_num_threads()``), in one C call
  (`lutnb.kernels.compiled.shares_torch_pool`; a Python thread pool where the runtime cannot be shared).

Exactness: the output equals ``IntegerEngine(model, impl="reference")`` (``encode="int8"``: the int8-encode
reference) bit for bit (tests/test_inference.py): same encode, same int32 look-up-accumulate, same float32
dequantize, and each fused op in torch's own float32 rounding; only the memory layout between layers differs.
"""
from __future__ import annotations

import ctypes

import numpy as np
import torch
import torch.nn as nn

from ..kernels import compiled as ckernel
from ..kernels.common import METRIC_CODES
from ..vq.functional import conv_output_size
from . import engine as E
from . import q8
from .export import ExportedLayer, ExportedModel


class FastLayer(E.EngineLayer):
    """One exported LUT layer on the compiled kernel (fused encode, look-up, dequantize); see the module doc.
    An `EngineLayer` (same checks, ``weight`` / ``bias`` buffers, ``in_features`` / ``out_features``) whose
    forward runs the compiled kernel. `lutnb.deploy.fusion` may give it an epilogue (BatchNorm, residual add,
    ReLU) and a consumer whose uint8 input it writes (``emit_for``)."""

    def __init__(self, layer: ExportedLayer, acc_bits: int | None = 32, weight: torch.Tensor | None = None,
                 encode: str = "float32", channels_last: bool = True):
        super().__init__(layer, acc_bits, impl="fast", weight=weight, encode=encode)
        self.channels_last = bool(channels_last)
        self._buffers_im2col: dict = {}
        self._plans: dict = {}
        self.calls = {"kernel": 0, "fallback": 0, "handoff": 0}  # handoff: uint8 inputs taken from the producer
        self._kernels = {}  # (encode, switches) -> `_kernel_for`'s answer
        self.emit_for: FastLayer | None = None
        self._q8_gen = 0  # generation of the uint8 input a producer last wrote into this layer's buffer
        self._kernel_cached = None

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
        self._check_conv_input(x)
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

    def _check_conv_input(self, x: torch.Tensor) -> None:
        L = self.layer
        if x.dim() != 4:
            raise ValueError(f"layer {L.name}: conv input must be (B, C, H, W); got shape {tuple(x.shape)}")
        if x.shape[1] != L.conv["in_channels"]:
            raise ValueError(f"layer {L.name}: input has {x.shape[1]} channels, expected "
                             f"in_channels={L.conv['in_channels']}")

    def _kernel_for(self, encode: str):
        """(lib, packed int8 tables, wrap_bits) when the compiled kernel for ``encode`` applies to this layer
        ("int8": v <= 4; "float32": a bit-identical encode for this metric and v), with INT8 tables and int32
        accumulators, else None; cached per encode and state of the LUTNB_NATIVE / LUTNB_CKERNEL switches."""
        key = (encode, _native(), _ckernel_enabled())
        if key not in self._kernels:
            self._kernels[key] = self._kernel_uncached(encode)
        return self._kernels[key]

    def _kernel_uncached(self, encode: str):
        L = self.layer
        fits = L.v <= 4 if encode == "int8" else ckernel.can_encode(L.metric, L.v)
        if not _native() or not ckernel.enabled() or not fits:
            return None
        lib = ckernel.load()
        if lib is None:
            return None
        a, (proto, wrap_bits, post_wrap) = E.layer_plan(L, self.acc_bits)
        if proto.dtype != np.int32 or post_wrap:
            return None
        packed = ckernel.pack_int8(a["tq"], lib, a.setdefault("packed", {}))
        return None if packed["tq8"] is None else (lib, packed, wrap_bits)

    def q8_input_ready(self) -> bool:
        """Whether this layer's int8 kernel takes a producer's uint8 NHWC output directly (v = 4, layout "channel")."""
        L = self.layer
        return (self.encode == "int8" and L.kind == "conv2d" and L.v == 4 and L.layout == "channel"
                and self._kernel_for("int8") is not None)

    # ------------------------------------------------------------------------------------------ the plan per shape
    def _plan(self, x: torch.Tensor, kern):
        """The per-input-shape call plan: the C job with everything fixed filled in, buffers, output shape."""
        key = x.shape
        pl = self._plans.get(key)
        if pl is not None and pl.kern is kern:
            return pl
        self._plans.clear()
        L = self.layer
        lib, packed, wrap_bits = kern
        job = ckernel.Job()
        keep = []
        if self.encode == "int8":
            g = q8.grid(L)
            job.c2, job.cinit = g["c2"].ctypes.data, g["cinit"].ctypes.data
            keep += [g["c2"], g["cinit"]]
            fn = lib.lutnb_job_q8
        else:
            a, _ = E.layer_plan(L, self.acc_bits)
            job.cb, job.K, job.v = a["cb"].ctypes.data, L.in_features, L.v
            job.metric, job.cb_finite = METRIC_CODES[L.metric], int(np.isfinite(a["cb"]).all())
            keep.append(a["cb"])
            fn = lib.lutnb_job_f32
        job.S, job.c, job.N, job.wrap_bits = L.S, L.c, L.out_features, wrap_bits
        job.tq8 = packed["tq8"].ctypes.data
        job.t4 = None if packed["t4"] is None else packed["t4"].ctypes.data
        scale = np.ascontiguousarray(L.scale, np.float32)
        bias = None if L.bias is None else np.ascontiguousarray(L.bias, np.float32)
        job.scale, job.bias = scale.ctypes.data, (None if bias is None else bias.ctypes.data)
        keep += [packed["tq8"], packed["t4"], scale, bias]
        job.Kp = L.S * 4 if self.encode == "int8" else L.in_features
        N = L.out_features
        job.ldy = job.ldr = job.ldq = N
        if L.kind == "conv2d":
            cv = L.conv
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (tuple(cv[f]) for f in ("kernel_size", "stride", "padding",
                                                                                "dilation"))
            B, C, H, W = x.shape
            ho, wo = conv_output_size(H, W, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
            M, out_shape = B * ho * wo, (B, ho, wo, N)
            implicit = L.layout == "channel" and (self.encode == "float32" or L.v == 4)
            if implicit:
                job.H, job.W, job.C, job.kh, job.kw, job.sh, job.sw = H, W, C, kh, kw, sh, sw
                job.ph, job.pw, job.dh, job.dw, job.Ho, job.Wo = ph, pw, dh, dw, ho, wo
        else:
            M, out_shape = x.numel() // L.in_features, (*x.shape[:-1], N)
            implicit = False
        mode = ("q8" if self.encode == "int8" else "f32") + ("conv" if implicit else "rows")
        if mode == "q8rows" and L.kind == "linear" and L.v == 4:
            mode = "q8lin"  # float rows quantized inside the kernel, per row block
            job.K, job.xs = L.in_features, float(q8.grid(L)["s"])
        xq = None
        if mode == "q8conv":
            xq = torch.empty(x.shape[0], x.shape[2], x.shape[3], x.shape[1], dtype=torch.uint8)
        pl = self._plans[key] = _Plan(job=job, fn=fn, M=M, N=N, out_shape=out_shape, mode=mode, xq=xq,
                                      s=q8.grid(L)["s"] if self.encode == "int8" else None, lib=lib, keep=keep,
                                      kern=kern, ref=ctypes.byref(job))
        return pl

    def _run_kernel(self, x: torch.Tensor, kern, ep, res, emit: bool):
        """(y (M, N) float32 or None when not written, flags, yq or None): one kernel call for input x; None when
        the input has a NaN / inf (the caller takes the plain path with the NaN-row policy)."""
        pl = self._plan(x, kern)
        job = pl.job
        xin = None
        if pl.mode == "q8conv":
            tag = getattr(x, "_lutnb_q8", None)
            if tag is not None and tag[0] is self and tag[2] == self._q8_gen and tag[3] == x._version:
                xin = tag[1]  # the producer already wrote this layer's uint8 NHWC input (finite)
                self.calls["handoff"] += 1
            else:
                xn = x.permute(0, 2, 3, 1)
                if not xn.is_contiguous():
                    xn = xn.contiguous()
                if not _quantize(pl, xn.data_ptr(), x.numel() // x.shape[1], x.shape[1]):
                    return None
                xin = pl.xq
        elif pl.mode == "q8lin":  # the kernel quantizes the float rows (flag bit 1: NaN / inf)
            xin = x if x.is_contiguous() else x.contiguous()
        elif pl.mode == "q8rows":
            xin, finite = self._rows_u8(x)
            if not (finite if finite is not None else bool(torch.isfinite(x.sum()))):
                return None
        elif pl.mode == "f32conv":
            xin = x.permute(0, 2, 3, 1)
            if not xin.is_contiguous():
                xin = xin.contiguous()
        else:  # f32rows (the kernel reports a NaN / inf input in flag bit 1)
            xin = self._rows(x)
            if not xin.is_contiguous():
                xin = xin.contiguous()
        job.x = xin.data_ptr()
        y = torch.empty(pl.M, pl.N)
        job.y = y.data_ptr()
        if pl.ep is not ep:
            pl.ep = ep
            job.alpha, job.beta = (ep.alpha_ptr, ep.beta_ptr) if ep is not None else (None, None)
            job.bn_fma, job.relu = (ep.bn_fma, int(ep.relu)) if ep is not None else (0, 0)
        job.res = None if res is None else res.data_ptr()
        yq = None
        if emit:
            c = self.emit_for
            yq = c._q8_buffer(pl.out_shape)
            job.yq, job.qs = yq.data_ptr(), float(q8.grid(c.layer)["s"])
        elif pl.emitting:
            job.yq = None
        pl.emitting = emit
        flags = ckernel.run_job(pl.fn, job, pl.M, pl.ref)
        if flags & 2:  # a NaN / inf input (float rows read by the kernel): the plain path applies the NaN-row policy
            return None
        return y, flags, yq

    def _q8_buffer(self, shape) -> torch.Tensor:
        """A reused uint8 NHWC buffer (B, H, W, C) for this layer's quantized input (written by a producer)."""
        buf = self._buffers_im2col.get(("q8in", tuple(shape)))
        if buf is None:
            buf = self._buffers_im2col[("q8in", tuple(shape))] = torch.empty(*shape, dtype=torch.uint8)
        return buf

    def _rows_u8(self, x: torch.Tensor):
        """(the kernel's activations (M, 4S) uint8 (xq + 128; 128 in padded dims) in a reused buffer, None: finiteness
        not known) for the layers the implicit im2col does not take (v < 4, layout "patch", padded K)."""
        L = self.layer
        s = q8.grid(L)["s"]
        f = self._rows(x)
        if L.K_padded != L.in_features:
            f = torch.nn.functional.pad(f, (0, L.K_padded - L.in_features))
        key = ("u8rows", f.shape[0])
        buf = self._buffers_im2col.get(key)
        if buf is None:
            buf = self._buffers_im2col[key] = torch.full((f.shape[0], L.S, 4), 128, dtype=torch.uint8)
        q8.quantize_u8(f.view(f.shape[0], L.S, L.v), s, out=buf[:, :, :L.v])
        return buf, None

    def _shape_out(self, x, y):
        L = self.layer
        if L.kind == "linear":
            return y.reshape(*x.shape[:-1], L.out_features)
        cv = L.conv
        ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                                  tuple(cv["padding"]), tuple(cv["dilation"]))
        # (B*Ho*Wo, N) is NHWC memory: return it as an NCHW tensor with channels-last strides (no copy)
        y = y.view(x.shape[0], ho, wo, L.out_features).permute(0, 3, 1, 2)
        return y if self.channels_last else y.contiguous()

    def _kernel(self):
        state = _SWITCHES[0]
        cached = self._kernel_cached
        if state is not None and cached is not None and cached[0] is state:
            return cached[1]
        kern = self._kernel_for(self.encode)
        self._kernel_cached = (state, kern) if state is not None else None
        return kern

    def _plain(self, x):
        """The layer without epilogue on the engine's path (NaN/inf inputs, fallbacks): the same bits."""
        L = self.layer
        native = _native()
        if self.encode == "int8":
            return E.run_layer(L, x, self.acc_bits, impl="fast", encode="int8")
        return E.run_layer(L, x, self.acc_bits, impl="native" if native else "fast")

    def call(self, x, ep=None, res=None):
        """(output, whether the epilogue ep and the residual res were applied). Without them: (forward(x), True)."""
        plain_ok = ep is None and res is None
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.device.type != "cpu" \
                or x.dtype != torch.float32:
            return E.run_layer(self.layer, x, self.acc_bits, impl="native" if _native() else "fast",
                               encode=self.encode), plain_ok
        L = self.layer
        if L.kind == "linear":
            if x.shape[-1] != L.in_features:
                self._rows(x)  # raises, naming the field
        else:
            self._check_conv_input(x)
        kern = self._kernel()
        if kern is None:
            self.calls["fallback"] += 1
            return self._plain(x), plain_ok
        emit = self.emit_for is not None and self.channels_last and self.emit_for.q8_input_ready()
        r = self._run_kernel(x, kern, ep, res, emit)
        self.calls["kernel"] += 1
        if r is None:  # a NaN / inf in the input: the NaN-row policy (engine path, same bits), epilogue in torch
            y = self._plain(x)
            if L.kind == "conv2d" and self.channels_last:
                y = y.contiguous(memory_format=torch.channels_last)
            return y, plain_ok
        y, flags, yq = r
        y = self._shape_out(x, y)
        if yq is not None and not (flags & 1):
            c = self.emit_for
            c._q8_gen += 1
            y._lutnb_q8 = (c, yq, c._q8_gen, y._version)
        return y, True

    def forward(self, x):
        return self.call(x)[0]


class _Plan:
    __slots__ = ("job", "fn", "M", "N", "out_shape", "mode", "xq", "s", "lib", "keep", "ep", "emitting", "kern", "ref")

    def __init__(self, **kw):
        self.ep, self.emitting = None, False
        for k, v in kw.items():
            setattr(self, k, v)


def _quantize(pl: _Plan, src_ptr: int, n_rows: int, run: int) -> bool:
    """xq + 128 of n_rows x run float32 values at src_ptr into the plan's uint8 buffer (C); False on a NaN / inf."""
    return ckernel.quantize_ptr(src_ptr, n_rows, run, pl.s, pl.xq.data_ptr(), pl.lib)


_SWITCHES: list = [None]  # (native on, C kernel on) while a CompiledModel call runs: read once per call, not per layer
_SWITCH_STATES = {(a, b): (a, b) for a in (False, True) for b in (False, True)}  # one object per state


def _native() -> bool:
    if _SWITCHES[0] is not None:
        return _SWITCHES[0][0]
    from ..kernels import numba_kernels

    return numba_kernels.enabled()


def _ckernel_enabled() -> bool:
    return _SWITCHES[0][1] if _SWITCHES[0] is not None else ckernel.enabled()


class CompiledModel(E.IntegerEngine):
    """`IntegerEngine` whose LUT layers are `FastLayer`s (the compiled kernel, channels-last activations).

    Built by `compile`; same arguments and the same table checks as `IntegerEngine`. With ``channels_last=True``
    the model's input is converted to channels-last once when it is a 4-D float32 image batch, and conv outputs
    stay channels-last (values unchanged). Not re-entrant: the layers reuse their im2col buffers, so one compiled
    model must not run in two Python threads at once (compile one per thread)."""

    def __init__(self, model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,
                 encode: str = "float32", channels_last: bool = True, fuse: bool = True):
        if not isinstance(channels_last, bool):
            raise TypeError(f"channels_last={channels_last!r}: pass True or False")
        if not isinstance(fuse, bool):
            raise TypeError(f"fuse={fuse!r}: pass True or False")
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
        self.fused = False
        if fuse and channels_last:
            from . import fusion

            self.model, n = fusion.fuse_tree(self.model, FastLayer)
            self.fused = n > 0

    def fast_layers(self) -> dict[str, FastLayer]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, FastLayer)}

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        if self.channels_last and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4 \
                and args[0].dtype == torch.float32:
            args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
        from ..kernels import numba_kernels

        outer = _SWITCHES[0]
        _SWITCHES[0] = _SWITCH_STATES[(numba_kernels.enabled(), ckernel.enabled())]
        try:
            return self.model(*args, **kwargs)
        finally:
            _SWITCHES[0] = outer


def compile(model: nn.Module, exported: ExportedModel | None = None, acc_bits: int | None = 32,  # noqa: A001
            encode: str = "float32", channels_last: bool = True, fuse: bool = True) -> CompiledModel:
    """A converted model ready for fast CPU inference: every LUT layer on the compiled kernel where it applies
    (correct fallback elsewhere), bit-identical to ``IntegerEngine(model, exported, acc_bits, impl="reference")``.

    model: a model converted with `lutnb.convert` (and calibrated); exported: its tables (default: exported
    from the model, as `IntegerEngine` does). encode: "float32" (default: the exact float32 distances) or "int8"
    (the integer-grid encode of `lutnb.deploy.q8`: cheaper, other codes; equal to
    ``IntegerEngine(model, exported, acc_bits, impl="reference", encode="int8")`` bit for bit).
    channels_last=False: conv outputs are copied to contiguous NCHW (for model code that calls ``.view`` on
    them; slower). fuse=True (default, with channels_last): BatchNorm / residual add / ReLU after a LUT layer run in
    the kernel's epilogue where the forward traces with torch.fx (`lutnb.deploy.fusion`; same bits); fuse=False
    keeps every module as it is (e.g. for forward hooks on the LUT layers)."""
    return CompiledModel(model, exported, acc_bits, encode, channels_last, fuse)
