"""`convert(model, v, c, metric, skip, overrides)`: a copy of any nn.Module with LUT layers."""
from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field

import torch.nn as nn

from ..kernels.common import check_metric
from .layers import LUTConv2d, LUTLayer, LUTLinear, check_vc, equivalent_bits
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
                lines.append(f"{r.name:<32} {r.kind:<10} {r.status:<11} {r.K:>6} {r.N:>6} {r.v:>3} {r.c:>4} "
                             f"{r.metric:<9} {r.equivalent_bits:>8.3f} {r.table_bytes:>9}")
            else:
                lines.append(f"{r.name:<32} {r.kind:<10} {r.status:<11} {'':>6} {'':>6} {'':>3} {'':>4} "
                             f"{'':<9} {'':>8} {'':>9}  {r.reason}")
        lines.append(f"{len(self.converted)} converted, {len(self.left_alone)} left alone; "
                     f"tables {self.table_bytes:,} bytes")
        return "\n".join(lines)

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or name == p for p in patterns)


# layer types that carry weights a LUT could replace but that convert() does not handle (reported)
_REPORTED_TYPES = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                   nn.Bilinear, nn.MultiheadAttention, nn.Embedding, nn.EmbeddingBag, nn.RNNBase)


def convert(model: nn.Module, v: int = 4, c: int = 16, metric: str = "l2", *, skip=(), overrides=None,
            table_bits: int = 8, layout: str = "channel", mode: str = "lut", inplace: bool = False,
            verbose: bool = False) -> nn.Module:
    """Return a converted copy: every nn.Linear / nn.Conv2d becomes a LUT layer unless skipped.

    The copy carries ``model.lut_summary`` (a ConversionSummary: per layer what was done, equivalent
    bits and table bytes); ``verbose=True`` prints it.

    skip: layer names or glob patterns (e.g. ``["conv1", "*.attention.*"]``) to keep float. Globs are
    fnmatch patterns, where ``*`` also crosses dots: ``"*.output.dense"`` matches BERT's
    ``attention.output.dense`` too (use ``"*.layer.?.output.dense"`` or explicit names for the MLP one).
    overrides: {name or glob: {"v": .., "c": .., "metric": .., "table_bits": ..}} per-layer settings; the
    first matching pattern wins. Grouped convolutions and other weight layers (Conv1d, Embedding,
    Hugging Face Conv1D, ...) are left alone and reported.
    """
    check_vc(v, c)
    metric = check_metric(metric)
    check_table_bits(table_bits)
    if isinstance(skip, str):
        skip = [skip]
    overrides = dict(overrides or {})
    for pat, ov in overrides.items():
        if not isinstance(ov, dict):
            raise TypeError(f"overrides[{pat!r}] must be a dict such as {{'v': 2}}; got {type(ov).__name__}")
        bad = set(ov) - _OVERRIDE_KEYS
        if bad:
            raise ValueError(f"overrides[{pat!r}] has unknown keys {sorted(bad)}: allowed {sorted(_OVERRIDE_KEYS)}")
    names = {n for n, _ in model.named_modules()}
    for pat in list(skip) + list(overrides):
        if not any(fnmatch.fnmatchcase(n, pat) or n == pat for n in names):
            raise ValueError(f"pattern {pat!r} (in skip/overrides) matches no module of the model; "
                             f"module names look like {sorted(n for n in names if n)[:6]}")
    out = model if inplace else copy.deepcopy(model)
    summary = ConversionSummary()
    # nn.MultiheadAttention reads out_proj.weight directly (never calls its forward): leave it whole
    mha = [n for n, m in out.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for name, module in list(out.named_modules()):
        if not name or isinstance(module, LUTLayer):
            continue
        kind = type(module).__name__
        is_linear = isinstance(module, nn.Linear)
        is_conv = isinstance(module, nn.Conv2d)
        if (is_linear or is_conv) and any(name.startswith(p + ".") for p in mha):
            summary.layers.append(LayerReport(name, kind, "unsupported",
                                              "inside nn.MultiheadAttention, which bypasses its forward"))
            continue
        if not (is_linear or is_conv):
            if isinstance(module, _REPORTED_TYPES) or type(module).__name__ == "Conv1D":
                summary.layers.append(LayerReport(name, kind, "unsupported",
                                                  f"{kind} is not converted (only Linear and Conv2d)"))
            continue
        if _matches(name, skip):
            summary.layers.append(LayerReport(name, kind, "skipped", "skipped by request"))
            continue
        cfg = {"v": v, "c": c, "metric": metric, "table_bits": table_bits, "mode": mode}
        for pat, ov in overrides.items():
            if _matches(name, [pat]):
                cfg.update(ov)
                break
        if is_conv:
            if module.groups != 1:
                summary.layers.append(LayerReport(name, kind, "unsupported",
                                                  f"groups={module.groups}: grouped convs stay float"))
                continue
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                summary.layers.append(LayerReport(name, kind, "unsupported",
                                                  f"padding={module.padding!r}/{module.padding_mode}: stays float"))
                continue
            cfg.setdefault("layout", layout)
            new = LUTConv2d.from_conv(module, **cfg)
        else:
            cfg.pop("layout", None)
            new = LUTLinear.from_linear(module, **cfg)
        _set_submodule(out, name, new)
        summary.layers.append(LayerReport(name, kind, "converted", "", new.K, new.N, new.v, new.c, new.metric,
                                          new.S, equivalent_bits(new.v, new.c), new.table_bytes()))
    out.lut_summary = summary
    if verbose:
        print(summary)
    return out


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
