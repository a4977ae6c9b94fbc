"""`convert(model, v, c, metric, skip, overrides)`: a copy of any nn.Module with LUT layers.

Documented choices (issue 17):

- Aliases: a module reachable under several names (``self.b = self.a``) is converted once and the same LUT
  layer is put under every name; the summary lists it once, with its other names (``aliases``).
- Tied weights: two layers that share one weight (or bias) Parameter keep sharing it: the LUT layers hold the
  very same Parameter (so ``lm_head`` stays tied to ``wte``, and to a float layer that is skipped). The
  summary's note names the partners. A transformers ``Conv1D`` whose weight is tied is refused (ValueError):
  its LUT layer needs the transposed weight, which cannot stay tied.
- transformers' ``Conv1D`` (GPT-2; weight (in, out), y = x @ W + b) is converted as the Linear it is: a
  LUTLinear with weight W.T (out, in) and the same bias. Its state_dict keys keep their names but
  ``weight`` is stored transposed, (out, in), plus the LUT layer's ``codebooks`` and ``calibrated``.
- When nothing at all is converted, one warning lists every layer left float and why.
"""
from __future__ import annotations

import copy
import fnmatch
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..kernels.common import check_acc_bits, check_metric
from .layers import (
    BACKWARDS,
    LAYOUTS,
    MODES,
    LUTConv2d,
    LUTLayer,
    LUTLinear,
    check_temperature,
    check_vc,
    equivalent_bits,
)
from .quant import check_table_bits

_OVERRIDE_KEYS = {"v", "c", "metric", "table_bits", "layout", "mode", "backward", "temperature", "acc_bits"}


@dataclass
class LayerReport:
    name: str
    kind: str
    status: str  # "converted" | "skipped" | "unsupported"
    reason: str = ""
    K: int = 0
    N: int = 0
    v: int = 0
    c: int = 0
    metric: str = ""
    S: int = 0
    equivalent_bits: float = 0.0
    table_bytes: int = 0
    aliases: list = field(default_factory=list)  # other names of the same module (replaced there too)
    note: str = ""  # e.g. a kept weight tie, a transposed Conv1D


@dataclass
class ConversionSummary:
    """What convert() did, layer by layer; `str()` gives a table, `.to_frame()` a pandas DataFrame."""

    layers: list[LayerReport] = field(default_factory=list)

    @property
    def converted(self) -> list[LayerReport]:
        return [r for r in self.layers if r.status == "converted"]

    @property
    def left_alone(self) -> list[LayerReport]:
        return [r for r in self.layers if r.status != "converted"]

    @property
    def alias_names(self) -> list[str]:
        """Every extra name under which a converted module was also replaced."""
        return [a for r in self.converted for a in r.aliases]

    @property
    def table_bytes(self) -> int:
        return sum(r.table_bytes for r in self.converted)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([r.__dict__ for r in self.layers])

    def __str__(self) -> str:
        head = f"{'layer':<32} {'kind':<10} {'status':<11} {'K':>6} {'N':>6} {'v':>3} {'c':>4} {'metric':<9} " \
               f"{'bits/act':>8} {'table B':>9}  note"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            if r.status == "converted":
                note = "; ".join(x for x in (r.note, "also replaced as " + ", ".join(r.aliases) if r.aliases
                                             else "") if x)
                lines.append(f"{r.name:<32} {r.kind:<10} {r.status:<11} {r.K:>6} {r.N:>6} {r.v:>3} {r.c:>4} "
                             f"{r.metric:<9} {r.equivalent_bits:>8.3f} {r.table_bytes:>9}  {note}".rstrip())
            else:
                lines.append(f"{r.name:<32} {r.kind:<10} {r.status:<11} {'':>6} {'':>6} {'':>3} {'':>4} "
                             f"{'':<9} {'':>8} {'':>9}  {r.reason}")
        n_alias = len(self.alias_names)
        alias = f" (also replaced under {n_alias} alias name{'s' * (n_alias != 1)})" if n_alias else ""
        lines.append(f"{len(self.converted)} converted{alias}, {len(self.left_alone)} left alone; "
                     f"tables {self.table_bytes:,} bytes")
        return "\n".join(lines)

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or name == p for p in patterns)


# layer types that carry weights a LUT could replace but that convert() does not handle (reported)
_REPORTED_TYPES = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                   nn.Bilinear, nn.MultiheadAttention, nn.Embedding, nn.EmbeddingBag, nn.RNNBase)


def is_hf_conv1d(module: nn.Module) -> bool:
    """transformers' Conv1D (GPT-2): a Linear with weight stored (in, out), y = x @ W + b."""
    w = getattr(module, "weight", None)
    return (type(module).__name__ == "Conv1D" and type(module).__module__.startswith("transformers")
            and isinstance(w, torch.Tensor) and w.dim() == 2 and hasattr(module, "nf"))


def _check_cfg(cfg: dict, where: str) -> None:
    """Validate one layer configuration; errors are prefixed with where it came from."""
    try:
        check_vc(cfg["v"], cfg["c"])
        cfg["metric"] = check_metric(cfg["metric"])
        check_table_bits(cfg["table_bits"])
        if cfg["mode"] not in MODES:
            raise ValueError(f"mode={cfg['mode']!r} is not a LUT mode: use one of {MODES}")
        if "layout" in cfg and cfg["layout"] not in LAYOUTS:
            raise ValueError(f"layout={cfg['layout']!r} is not supported: use one of {LAYOUTS}")
        if "backward" in cfg and cfg["backward"] not in BACKWARDS:
            raise ValueError(f"backward={cfg['backward']!r} is not supported: use one of {BACKWARDS}")
        if "temperature" in cfg:
            check_temperature(cfg["temperature"])
        if "acc_bits" in cfg:
            check_acc_bits(cfg["acc_bits"])
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: {e}") from None


def convert(model: nn.Module, v: int = 4, c: int = 16, metric: str = "l2", *, skip=(), overrides=None,
            table_bits: int = 8, layout: str = "channel", mode: str = "lut", inplace: bool = False,
            verbose: bool = False) -> nn.Module:
    """Return a converted copy: every nn.Linear / nn.Conv2d (and transformers' Conv1D) becomes a LUT layer
    unless skipped.

    The copy carries ``model.lut_summary`` (a ConversionSummary: per layer what was done, equivalent
    bits and table bytes); ``verbose=True`` prints it.

    skip: layer names or glob patterns (e.g. ``["conv1", "*.attention.*"]``) to keep float. Globs are
    fnmatch patterns, where ``*`` also crosses dots: ``"*.output.dense"`` matches BERT's
    ``attention.output.dense`` too (use ``"*.layer.?.output.dense"`` or explicit names for the MLP one).
    overrides: {name or glob: {"v": .., "c": .., "metric": .., "table_bits": ..}} per-layer settings; the
    first matching pattern wins. Grouped convolutions and other weight layers (Conv1d, Embedding, ...) are
    left alone and reported. A module with several names is matched (skip, overrides) under any of them.

    Aliased modules are replaced under every name by one LUT layer; tied weights stay tied (the LUT layers
    share the Parameter); transformers' Conv1D becomes a LUTLinear with the transposed weight (a tied
    Conv1D is refused); see the module docstring. When nothing is converted, one warning says why.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert: model must be a torch.nn.Module; got {type(model).__name__}")
    check_vc(v, c)
    metric = check_metric(metric)
    check_table_bits(table_bits)
    _check_cfg({"v": v, "c": c, "metric": metric, "table_bits": table_bits, "mode": mode, "layout": layout},
               "convert")
    skip, overrides = _check_patterns(model, skip, overrides, {"v": v, "c": c, "metric": metric,
                                                               "table_bits": table_bits, "mode": mode})
    out = model if inplace else copy.deepcopy(model)
    summary = ConversionSummary()
    names_of, owners = _aliases_and_owners(out)
    # nn.MultiheadAttention reads out_proj.weight directly (never calls its forward): leave it whole
    mha = [n for n, m in out.named_modules(remove_duplicate=False) if isinstance(m, nn.MultiheadAttention)]
    defaults = {"v": v, "c": c, "metric": metric, "table_bits": table_bits, "mode": mode}
    root_note = ""
    for name, module in list(out.named_modules()):
        if isinstance(module, LUTLayer):
            continue
        if not name:
            if isinstance(module, (nn.Linear, nn.Conv2d)) or is_hf_conv1d(module):
                root_note = (f"the model itself is a {type(module).__name__}: convert() replaces sub-modules, so "
                             "wrap it (e.g. nn.Sequential(layer)) or build the LUT layer directly "
                             "(LUTLinear.from_linear / LUTConv2d.from_conv)")
            continue
        report = _convert_one(out, name, module, names_of[id(module)], owners, mha, skip, overrides, defaults,
                              layout)
        if report is not None:
            summary.layers.append(report)
    out.lut_summary = summary
    if not summary.converted:
        _warn_nothing_converted(out, summary, root_note)
    if verbose:
        print(summary)
    return out


EDGE_TOKENS = ("first", "last")


_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                  nn.ConvTranspose3d)


@torch.no_grad()
def trace_layers(model: nn.Module, example: torch.Tensor) -> dict:
    """{name: MACs per example} of every weight layer (nn.Linear, nn.Conv1d/2d/3d and their transposes,
    transformers' Conv1D) that ``model`` calls on ``example``, in call order (a layer called twice is counted
    twice, kept at its first place); layers `convert` leaves float (Conv1d, ...) are counted too. MACs = output
    elements x K (the weight's input size, per group)."""
    macs: dict[str, int] = {}

    def hook(name):
        def fn(mod, args, out):
            n = max(1, example.shape[0])
            if isinstance(mod, nn.modules.conv._ConvTransposeNd):  # every input element meets a weight slice
                m = args[0].numel() // n * mod.weight[0].numel()
            else:
                m = out.numel() // n * (mod.weight.shape[0] if is_hf_conv1d(mod) else mod.weight[0].numel())
            macs[name] = macs.get(name, 0) + m
        return fn

    hooks = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
             if n and (isinstance(m, _WEIGHT_LAYERS) or is_hf_conv1d(m))]
    was = model.training
    model.eval()
    try:
        model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return macs


def edge_layers(model: nn.Module, example: torch.Tensor) -> dict:
    """{"first": name, "last": name}: the first and the last weight layer that ``model`` calls on ``example``
    (see `trace_layers`), in call order (not definition order: a head defined before the body is still the
    last layer called). Empty when the model calls none."""
    order = list(trace_layers(model, example))
    return {"first": order[0], "last": order[-1]} if order else {}


NARROW_SUBSPACES = 4  # skip="auto": a layer with fewer sub-spaces (ceil(K / v)) stays float, like the first layer


def layer_k(mod: nn.Module) -> int:
    """K of a weight layer: the length of the vector one output element reads (in_features; a conv's
    in_channels / groups x kernel size; transformers' Conv1D: nx)."""
    if is_hf_conv1d(mod):
        return int(mod.weight.shape[0])
    return int(mod.weight[0].numel())


def narrow_layers(model: nn.Module, v: int = 4, overrides=None) -> tuple[str, ...]:
    """Names of the weight layers with fewer than `NARROW_SUBSPACES` sub-spaces, ceil(K / v) < 4 (v from a
    matching ``overrides`` entry when it sets one). Such a layer sees at most c**3 distinct inputs per row (4,096
    at c=16): as coarse as the raw input of a first layer, which is why skip="auto" keeps them float. Measured on
    the zoo's MNIST-1D MLP-Mixer (docs/lutboost-zoo.md): its token-mixing fc1 (K = 10 tokens, 3 sub-spaces) alone
    took the calibrated model from 96.6 % to 76.3 %."""
    out = []
    for name, mod in model.named_modules():
        if not name or not (isinstance(mod, _WEIGHT_LAYERS) or is_hf_conv1d(mod)):
            continue
        lv = v
        for pat, ov in (overrides or {}).items():
            if (name == pat or fnmatch.fnmatchcase(name, pat)) and "v" in ov:
                lv = ov["v"]
        if -(-layer_k(mod) // lv) < NARROW_SUBSPACES:
            out.append(name)
    return tuple(out)


def resolve_skip(model: nn.Module, skip, example: torch.Tensor | None = None, v: int = 4,
                 overrides=None) -> tuple[str, ...]:
    """``skip`` with the tokens replaced by layer names: ``"auto"`` means ``("first", "last", "narrow")``;
    ``"first"`` / ``"last"`` name the first / last convertible layer the model calls on ``example`` (see
    `edge_layers`); ``"narrow"`` names the layers with fewer than 4 sub-spaces at ``v`` (see `narrow_layers`).
    Names and globs pass through; patterns that match no module are dropped (so a default such as ``"conv1"`` is
    harmless on a model without one)."""
    if skip is None:
        return ()
    skip = ("first", "last", "narrow") if skip == "auto" else ((skip,) if isinstance(skip, str) else tuple(skip))
    out = []
    if any(s in EDGE_TOKENS for s in skip):
        if example is None:
            raise ValueError(f"skip={skip!r} names layers by position ('first'/'last'): pass an example input batch")
        edges = edge_layers(model, example)
        out += [edges[s] for s in skip if s in EDGE_TOKENS and s in edges]
    if "narrow" in skip:
        out += list(narrow_layers(model, v, overrides))
    names = {n for n, _ in model.named_modules()}
    out += [s for s in skip if s not in EDGE_TOKENS and s != "narrow"
            and any(n == s or fnmatch.fnmatchcase(n, s) for n in names)]
    return tuple(dict.fromkeys(out))


def _check_patterns(model: nn.Module, skip, overrides, defaults: dict) -> tuple[list, dict]:
    """skip as a list of strings and overrides as {pattern: settings}, every pattern matching some module."""
    if isinstance(skip, str):
        skip = [skip]
    try:
        skip = list(skip)
    except TypeError:
        raise TypeError(f"convert: skip must be a layer name, a glob or a list of them; got {type(skip).__name__}") \
            from None
    for pat in skip:
        if not isinstance(pat, str):
            raise TypeError(f"convert: skip holds {pat!r} ({type(pat).__name__}); give layer names or glob strings")
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"convert: overrides must be a dict {{name or glob: {{'v': 2, ...}}}}; got "
                        f"{type(overrides).__name__}")
    overrides = dict(overrides or {})
    for pat, ov in overrides.items():
        if not isinstance(pat, str):
            raise TypeError(f"convert: overrides key {pat!r} must be a layer name or glob string")
        if not isinstance(ov, dict):
            raise TypeError(f"overrides[{pat!r}] must be a dict such as {{'v': 2}}; got {type(ov).__name__}")
        bad = set(ov) - _OVERRIDE_KEYS
        if bad:
            raise ValueError(f"overrides[{pat!r}] has unknown keys {sorted(bad)}: allowed {sorted(_OVERRIDE_KEYS)}")
        _check_cfg({**defaults, **ov}, f"overrides[{pat!r}]")
    names = {n for n, _ in model.named_modules(remove_duplicate=False)}
    for pat in list(skip) + list(overrides):
        if not any(fnmatch.fnmatchcase(n, pat) or n == pat for n in names):
            raise ValueError(f"pattern {pat!r} (in skip/overrides) matches no module of the model; "
                             f"module names look like {sorted(n for n in names if n)[:6]}")
    return skip, overrides


def _aliases_and_owners(out: nn.Module) -> tuple[dict, dict]:
    """{id(module): every name it has} (aliases) and {id(Parameter): the modules that own it} (ties)."""
    names_of: dict[int, list[str]] = {}
    for n, m in out.named_modules(remove_duplicate=False):
        names_of.setdefault(id(m), []).append(n)
    owners: dict[int, list[str]] = {}
    for m_names in names_of.values():
        m = out.get_submodule(m_names[0]) if m_names[0] else out
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append(m_names[0])
    return names_of, owners


def _convert_one(out, name, module, all_names, owners, mha, skip, overrides, defaults, layout) -> LayerReport | None:
    """Replace one module (under all its names) by its LUT layer, or say why it stays float; None: not a layer."""
    aliases = [n for n in all_names if n != name]
    kind = type(module).__name__
    is_linear = isinstance(module, nn.Linear)
    is_conv = isinstance(module, nn.Conv2d)
    is_c1d = is_hf_conv1d(module)
    if (is_linear or is_conv or is_c1d) and any(n.startswith(p + ".") for n in all_names for p in mha):
        return LayerReport(name, kind, "unsupported", "inside nn.MultiheadAttention, which bypasses its forward")
    if not (is_linear or is_conv or is_c1d):
        if isinstance(module, _REPORTED_TYPES) or kind == "Conv1D":
            return LayerReport(name, kind, "unsupported",
                               f"{kind} is not converted (only Linear, Conv2d and transformers' Conv1D)")
        return None
    if any(_matches(n, skip) for n in all_names):
        return LayerReport(name, kind, "skipped", "skipped by request")
    cfg = dict(defaults)
    for pat, ov in overrides.items():
        if any(_matches(n, [pat]) for n in all_names):
            cfg.update(ov)
            break
    ties = {}
    for pname, p in module.named_parameters(recurse=False):
        others = [o for o in owners.get(id(p), []) if o != all_names[0]]
        if others:
            ties[pname] = others
    note = ""
    if is_conv:
        if module.groups != 1:
            return LayerReport(name, kind, "unsupported", f"groups={module.groups}: grouped convs stay float")
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            return LayerReport(name, kind, "unsupported",
                               f"padding={module.padding!r}/{module.padding_mode}: stays float")
        cfg.setdefault("layout", layout)
        new = _build(name, LUTConv2d.from_conv, module, cfg)
    elif is_c1d:
        if ties:
            tied = sorted({name, *(o for v_ in ties.values() for o in v_)})
            raise ValueError(f"convert: {name!r} is a transformers Conv1D whose "
                             + ", ".join(f"{k} is shared with {', '.join(v_)}" for k, v_ in ties.items())
                             + "; its LUTLinear needs the transposed weight, which would untie them. Keep them "
                             f"float with skip={tied!r}, or untie the weights first")
        cfg.pop("layout", None)
        new = _build(name, conv1d_to_lut_linear, module, cfg)
        note = "transformers Conv1D as LUTLinear (weight stored transposed, (out, in))"
    else:
        cfg.pop("layout", None)
        new = _build(name, LUTLinear.from_linear, module, cfg)
    if ties and not is_c1d:  # keep the tie: the LUT layer holds the very same Parameter
        for pname in ties:
            setattr(new, pname, getattr(module, pname))
        note = "; ".join(f"{k} tied with {', '.join(o)} (shared Parameter kept)" for k, o in ties.items())
    for n in all_names:
        _set_submodule(out, n, new)
    return LayerReport(name, kind, "converted", "", new.K, new.N, new.v, new.c, new.metric,
                       new.S, equivalent_bits(new.v, new.c), new.table_bytes(), aliases, note)


def _warn_nothing_converted(out: nn.Module, summary, root_note: str) -> None:
    left = [f"{r.name} ({r.kind}: {r.reason})" for r in summary.left_alone]
    if root_note:
        left.append(root_note)
    n_lut = sum(1 for m in out.modules() if isinstance(m, LUTLayer))
    if n_lut:
        left.append(f"{n_lut} layer{'s' * (n_lut != 1)} already LUT layers (the model was converted before)")
    why = "; ".join(left) if left else "the model has no nn.Linear, nn.Conv2d or transformers Conv1D layer"
    warnings.warn(f"convert converted no layer, the whole model stays float. Left float: {why}", UserWarning,
                  stacklevel=2)


def _build(name: str, make, module: nn.Module, cfg: dict):
    try:
        return make(module, **cfg)
    except (TypeError, ValueError) as e:
        raise type(e)(f"convert: layer {name!r}: {e}") from None


def conv1d_to_lut_linear(module: nn.Module, **kw) -> LUTLinear:
    """A LUTLinear equal to transformers' Conv1D `module` (weight W (in, out), y = x @ W + b): weight W.T."""
    W = module.weight
    new = LUTLinear(W.shape[0], W.shape[1], bias=module.bias is not None, device=W.device, dtype=W.dtype, **kw)
    with torch.no_grad():
        new.weight.copy_(W.t())
        if module.bias is not None:
            new.bias.copy_(module.bias)
    new.train(module.training)
    return new


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
