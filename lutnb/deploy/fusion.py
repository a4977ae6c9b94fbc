"""Fusing the float ops after a LUT layer into the compiled kernel's epilogue (`lutnb.compile`, ``fuse=True``).

The model's forward is traced with `torch.fx` (the compiled LUT layers are leaves). Where a LUT layer's output
feeds, one user each, an eval-mode ``BatchNorm2d``, a residual ``+``, and a ReLU (any prefix of that chain, in that
order), the chain becomes one `FusedLUT` node: the C kernel applies them to each output value before storing it
(lutgemm.c, ``epilogue_block``), saving a read and a write of the activation per op. Where a conv's output goes
to a conv with the int8 encode, the producer also writes the consumer's quantized uint8 NHWC input in the same
pass (`FastLayer.emit_for`), so the consumer skips its quantize pass.

Exactness: every fused op is float32 in the order torch runs it (``f * alpha + beta`` for BatchNorm, then
``+ residual``, then ``max(0, .)``, then the consumer's quantize). How torch's eval BatchNorm rounds depends on
its build (torch 2.13 CPU here: ``alpha = w * rsqrt(var + eps)``, ``beta = fma(-mean, alpha, b)``,
``y = fma(x, alpha, beta)``), so each BatchNorm is fused only after a candidate formula was found equal bit for
bit to ``F.batch_norm`` on a probe of 8,192 values per channel over eight magnitudes; if none is, that
BatchNorm stays in torch. A NaN / inf input takes the unfused ops (the NaN-row policy applies before BatchNorm).
In the traced graph the LUT modules' ``forward`` is called directly, so forward hooks on them do not run
(``lutnb.compile(..., fuse=False)`` keeps every module call as it is). Where the whole forward does not trace
(Python control flow on tensors, e.g. a shape check), its children are tried one by one (`fuse_tree`); a module
whose forward has optional arguments is never traced (fx would fix ``if mask is not None`` to one branch). The
fused model's outputs equal the unfused model's and the reference engine's bit for bit (tests/test_inference.py).
"""
from __future__ import annotations

import inspect
import operator

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from ..kernels import compiled as ckernel

_RELU_FUNCS = (F.relu, torch.relu, torch.relu_)
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)


class Epilogue:
    """BatchNorm alpha / beta (float32, per output channel) or none, the rounding to use, and ReLU."""

    def __init__(self, alpha: torch.Tensor | None, beta: torch.Tensor | None, bn_fma: bool, relu: bool):
        self.alpha, self.beta = alpha, beta
        self.alpha_ptr = None if alpha is None else alpha.data_ptr()
        self.beta_ptr = None if beta is None else beta.data_ptr()
        self.bn_fma, self.relu = int(bn_fma), bool(relu)


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """(alpha, beta, fma) such that the kernel's ``f * alpha + beta`` (fmaf when fma) equals ``bn(f)`` in eval
    mode bit for bit on a probe, or None (training mode, no running stats, or no candidate matches)."""
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return None
    lib = ckernel.load()
    if lib is None:
        return None
    C = bn.num_features
    mean, var = bn.running_mean.detach().float(), bn.running_var.detach().float()
    w = bn.weight.detach().float() if bn.weight is not None else torch.ones(C)
    b = bn.bias.detach().float() if bn.bias is not None else torch.zeros(C)
    g = torch.Generator().manual_seed(0)
    probe = torch.cat([torch.randn(1024, C, generator=g) * 10.0 ** e for e in range(-3, 5)])  # (8192, C)
    with torch.no_grad():
        want = F.batch_norm(probe.reshape(-1, C, 1, 1).contiguous(memory_format=torch.channels_last), bn.running_mean,
                            bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps).reshape(-1, C).contiguous()
    ve = var + bn.eps
    for alpha in (w * torch.rsqrt(ve), (1 / torch.sqrt(ve)) * w, w / torch.sqrt(ve)):  # torch's, by build
        alpha = alpha.contiguous()
        for beta in (ckernel.affine(-mean.reshape(1, C), alpha, b, True, lib).reshape(C), (b - mean * alpha)):
            for fma in (True, False):
                got = ckernel.affine(probe, alpha, beta, fma, lib)
                if torch.equal(got.view(torch.int32), want.view(torch.int32)):
                    return alpha, beta.contiguous(), fma
    return None


class FusedLUT(nn.Module):
    """A LUT layer with the BatchNorm / residual add / ReLU after it run in the kernel's epilogue (see the module
    doc); ``forward(x, res=None)`` equals ``relu(bn(fast(x)) + res)`` (the parts present) bit for bit."""

    def __init__(self, fast, bn: nn.BatchNorm2d | None, affine, relu: bool, has_res: bool):
        super().__init__()
        self.fast, self.bn, self.relu, self.has_res = fast, bn, bool(relu), bool(has_res)
        alpha, beta, fma = affine if affine is not None else (None, None, False)
        self.ep = Epilogue(alpha, beta, fma, relu)

    def extra_repr(self) -> str:
        parts = ["bn"] * (self.bn is not None) + ["+res"] * self.has_res + ["relu"] * self.relu
        return "epilogue: " + ", ".join(parts)

    def _unfused(self, x, res):
        y = self.fast(x)
        if self.bn is not None:
            y = self.bn(y)
        if res is not None:
            y = y + res
        return torch.relu(y) if self.relu else y

    def forward(self, x, res=None):
        if self.bn is not None and self.bn.training:
            return self._unfused(x, res)
        if res is not None and not _fits_residual(res, x, self.fast):
            return self._unfused(x, res)
        y, applied = self.fast.call(x, self.ep, res)
        if applied:
            return y
        if self.bn is not None:
            y = self.bn(y)
        if res is not None:
            y = y + res
        return torch.relu(y) if self.relu else y


def _fits_residual(res, x, fast) -> bool:
    """Whether res can be read by the kernel as the (M, N) output's twin: float32 CPU, the output's shape, in the
    output's memory order (NHWC for a conv with channels-last outputs, row-major for a Linear)."""
    if not isinstance(res, torch.Tensor) or res.dtype != torch.float32 or res.device.type != "cpu":
        return False
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.device.type != "cpu":
        return False
    L = fast.layer
    if L.kind == "linear":
        return tuple(res.shape) == (*x.shape[:-1], L.out_features) and res.is_contiguous()
    if not fast.channels_last or res.dim() != 4 or x.dim() != 4:
        return False
    from ..vq.functional import conv_output_size

    cv = L.conv
    ho, wo = conv_output_size(x.shape[2], x.shape[3], tuple(cv["kernel_size"]), tuple(cv["stride"]),
                              tuple(cv["padding"]), tuple(cv["dilation"]))
    return (tuple(res.shape) == (x.shape[0], L.out_features, ho, wo)
            and res.is_contiguous(memory_format=torch.channels_last))


def _plain_signature(model: nn.Module) -> bool:
    """Whether forward takes only required positional tensors: fx would specialize ``if mask is not None`` on an
    optional argument to one branch (silently), so modules with defaults, *args or **kwargs are not traced."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is inspect.Parameter.empty
               and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for p in params)


class _Tracer(fx.Tracer):
    def __init__(self, leaf_types):
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, m, qualname):
        return isinstance(m, self.leaf_types) or super().is_leaf_module(m, qualname)


def _is_relu(n: fx.Node, modules) -> bool:
    if n.op == "call_function" and n.target in _RELU_FUNCS:
        return len(n.args) == 1
    if n.op == "call_method" and n.target in ("relu", "relu_"):
        return len(n.args) == 1
    return n.op == "call_module" and type(modules.get(n.target)) is nn.ReLU


def _residual_of(n: fx.Node, tail: fx.Node):
    """The other operand when n is ``tail + other`` (or other + tail) with a tensor node other, else None."""
    if n.op == "call_function" and n.target in _ADD_FUNCS and len(n.args) == 2 and not n.kwargs:
        a, b = n.args
    elif n.op == "call_method" and n.target in ("add", "add_") and len(n.args) == 2 and not n.kwargs:
        a, b = n.args
    else:
        return None
    other = b if a is tail else (a if b is tail else None)
    return other if isinstance(other, fx.Node) and other is not tail else None


def fuse_tree(model: nn.Module, fast_type) -> tuple[nn.Module, int]:
    """(model with fused epilogues, number of modules rewritten): the whole model where its forward traces, else
    each child module that traces (recursively; e.g. a ViT whose top-level forward checks shapes in Python but
    whose blocks trace). The model is changed in place where a child is replaced."""
    gm = fuse(model, fast_type)
    if gm is not None:
        return gm, 1
    if isinstance(model, fast_type) or not any(isinstance(m, fast_type) for m in model.modules()):
        return model, 0
    n = 0
    for name, child in list(model.named_children()):
        new, k = fuse_tree(child, fast_type)
        if k:
            setattr(model, name, new)
            n += k
    return model, n


def fuse(model: nn.Module, fast_type) -> fx.GraphModule | None:
    """The model with its LUT layers' epilogues fused (a GraphModule), or None when tracing fails or there is
    nothing to fuse. fast_type: the compiled layer class (`lutnb.deploy.compiled_model.FastLayer`)."""
    if isinstance(model, fast_type) or not _plain_signature(model):
        return None
    try:
        graph = _Tracer((fast_type,)).trace(model)
    except Exception:  # noqa: BLE001  (fx cannot trace this forward: run it unfused)
        return None
    gm = fx.GraphModule(model, graph)
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), fast_type) or len(node.args) != 1:
            continue
        fast = modules[node.target]
        tail, absorbed, bn, affine, res, relu = node, [], None, None, None, False
        u = next(iter(tail.users)) if len(tail.users) == 1 else None
        if (u is not None and u.op == "call_module" and isinstance(modules.get(u.target), nn.BatchNorm2d)
                and fast.layer.kind == "conv2d" and len(u.args) == 1):
            affine = bn_affine(modules[u.target])
            if affine is not None:
                bn, tail = modules[u.target], u
                absorbed.append(u)
        u = next(iter(tail.users)) if len(tail.users) == 1 else None
        if u is not None and (bn is not None or tail is node):
            other = _residual_of(u, tail)
            if other is not None:
                res, tail = other, u
                absorbed.append(u)
        u = next(iter(tail.users)) if len(tail.users) == 1 else None
        if u is not None and _is_relu(u, modules):
            relu, tail = True, u
            absorbed.append(u)
        if not absorbed:
            continue
        name = node.target.replace(".", "_") + "_fused"
        gm.add_submodule(name, FusedLUT(fast, bn, affine, relu, res is not None))
        with gm.graph.inserting_after(tail):
            new = gm.graph.call_module(name, (node.args[0], res) if res is not None else (node.args[0],))
        tail.replace_all_uses_with(new)
        for n in reversed([node, *absorbed]):
            gm.graph.erase_node(n)
        changed = True
    modules = dict(gm.named_modules())

    def fast_of(n):
        m = modules.get(n.target) if n.op == "call_module" else None
        return m.fast if isinstance(m, FusedLUT) else (m if isinstance(m, fast_type) else None)

    for node in gm.graph.nodes:  # a conv that feeds an int8-encode conv writes that conv's uint8 input as well
        p = fast_of(node)
        if p is None or p.layer.kind != "conv2d":
            continue
        for u in node.users:
            c = fast_of(u)
            if c is not None and u.args and u.args[0] is node and c.encode == "int8" and c is not p:
                p.emit_for = c
                changed = True
                break
    if not changed:
        return None
    for node in list(gm.graph.nodes):  # LUT calls go to forward directly (nn.Module.__call__ costs ~1 us a call)
        if node.op == "call_module" and fast_of(node) is not None:
            with gm.graph.inserting_before(node):
                mod = gm.graph.get_attr(node.target)
                new = gm.graph.call_method("forward", (mod, *node.args), dict(node.kwargs))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm
