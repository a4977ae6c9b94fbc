"""Workloads: every Linear and Conv2d of a model as a GEMM M x K x N (after im2col), and SCALE-Sim CSVs.

M = batch * Ho * Wo (rows), K = Cin / groups * kh * kw (reduction), N = Cout (columns). SCALE-Sim's
convention is the same (M = output pixels, K = window size, N = filters) with batch 1 and no padding:
its conv topology gives the *padded* input size, and its GEMM topology is `Layer, M, N, K,` (note the
order N before K, and the trailing comma SCALE-Sim's reader expects).
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


@dataclass(frozen=True)
class GemmWorkload:
    """One layer as a GEMM (M x K) @ (K x N), plus the conv geometry it came from (if any)."""

    name: str
    M: int
    K: int
    N: int
    kind: str = "gemm"          # "linear" | "conv2d" | "gemm"
    in_h: int = 1               # input height (unpadded), conv only
    in_w: int = 1
    in_channels: int = 0
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    batch: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"GemmWorkload.name={self.name!r}: must be a string (the layer's name)")
        for f in ("M", "K", "N"):
            val = getattr(self, f)
            if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"GemmWorkload.{f}={val!r} (layer {self.name!r}): must be an integer >= 1")
            object.__setattr__(self, f, int(val))     # numpy integers are stored as Python ints

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N

    def to_dict(self) -> dict:
        return asdict(self)


def _pair(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def _conv_workload(name: str, m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> GemmWorkload:
    kh, kw = _pair(m.kernel_size)
    b, _, ho, wo = y.shape
    pad = m.padding if not isinstance(m.padding, str) else (0, 0)
    if isinstance(m.padding, str):  # 'same' / 'valid': recover the total padding from the shapes
        dh, dw = _pair(m.dilation)
        sh, sw = _pair(m.stride)
        pad = (max(0, ((ho - 1) * sh + dh * (kh - 1) + 1 - x.shape[2]) // 2),
               max(0, ((wo - 1) * sw + dw * (kw - 1) + 1 - x.shape[3]) // 2))
    return GemmWorkload(name=name, kind="conv2d", M=int(b * ho * wo),
                        K=int(m.in_channels // m.groups * kh * kw), N=int(m.out_channels),
                        in_h=int(x.shape[2]), in_w=int(x.shape[3]),
                        in_channels=int(m.in_channels), kernel=(kh, kw), stride=_pair(m.stride),
                        padding=_pair(pad), dilation=_pair(m.dilation), groups=int(m.groups), batch=int(b))


def extract_workloads(model: nn.Module, example_input,
                      types: tuple = (nn.Linear, nn.Conv2d)) -> list[GemmWorkload]:
    """Run `model(example_input)` once with forward hooks; every Linear/Conv2d call becomes a GemmWorkload.

    `example_input` is a tensor (or a shape tuple, filled with zeros). Layers that export as LUT layers
    (any module with `in_features`/`out_features` and a Linear-like forward) are matched by type; pass
    `types` to add others. Layers called several times appear once per call (`name#2`, ...).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if isinstance(example_input, (tuple, list)) and all(isinstance(d, int) for d in example_input):
        if not example_input or any(d < 1 for d in example_input):
            raise ValueError(f"example_input shape {tuple(example_input)}: every size must be >= 1")
        example_input = torch.zeros(*example_input)
    out: list[GemmWorkload] = []
    seen: dict[str, int] = {}

    def hook(name):
        def _h(mod, inputs, output):
            x = inputs[0]
            seen[name] = seen.get(name, 0) + 1
            nm = name if seen[name] == 1 else f"{name}#{seen[name]}"
            if isinstance(mod, nn.Conv2d):
                out.append(_conv_workload(nm, mod, x, output))
            else:
                rows = int(x.numel() // x.shape[-1])
                out.append(GemmWorkload(name=nm, kind="linear", M=rows, K=int(x.shape[-1]),
                                        N=int(output.shape[-1]), batch=int(x.shape[0]) if x.dim() > 1 else 1))
        return _h

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, types)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out


def write_scalesim_topology(workloads: list[GemmWorkload], path: str | Path, mode: str = "gemm") -> Path:
    """Write a SCALE-Sim topology CSV: mode "gemm" (`Layer, M, N, K,`) or "conv" (padded input sizes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode not in ("gemm", "conv"):
        raise ValueError(f"mode={mode!r}: use 'gemm' or 'conv'")
    lines = ["Layer, M, N, K,"] if mode == "gemm" else [
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for w in workloads:
        name = w.name.replace(",", "_").replace(" ", "_")
        if mode == "gemm":
            lines.append(f"{name}, {w.M}, {w.N}, {w.K},")
            continue
        if w.kind != "conv2d" or w.stride[0] != w.stride[1] or w.dilation != (1, 1) or w.groups != 1 \
                or w.batch != 1:
            raise ValueError(f"layer {w.name}: SCALE-Sim's conv format needs batch 1, square stride, no "
                             "dilation or groups; write mode='gemm' instead")
        kh, kw = w.kernel
        # the padded extent the output actually uses, so SCALE-Sim's ceil formula gives PyTorch's Ho, Wo
        ho = (w.in_h + 2 * w.padding[0] - kh) // w.stride[0] + 1
        wo = (w.in_w + 2 * w.padding[1] - kw) // w.stride[1] + 1
        lines.append(f"{name}, {(ho - 1) * w.stride[0] + kh}, {(wo - 1) * w.stride[1] + kw}, {kh}, {kw}, "
                     f"{w.in_channels}, {w.N}, {w.stride[0]},")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_scalesim_topology(path: str | Path, mode: str | None = None) -> list[GemmWorkload]:
    """Read a SCALE-Sim topology CSV (GEMM `Layer, M, N, K` or conv); `mode` None guesses from the header."""
    if mode not in (None, "gemm", "conv"):
        raise ValueError(f"mode={mode!r}: use 'gemm', 'conv' or None (guess from the header)")
    rows = [r for r in csv.reader(Path(path).read_text().splitlines()) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"SCALE-Sim topology {path}: empty file (expected a header, then one layer per line)")
    header, body = rows[0], rows[1:]
    cells = [[c.strip() for c in r if c.strip() != ""] for r in body]
    if mode is None:
        mode = "gemm" if len([c for c in header if c.strip()]) <= 5 else "conv"
    need = 4 if mode == "gemm" else 8
    what = "name, M, N, K" if mode == "gemm" else "name, IFMAP H, W, filter H, W, channels, filters, stride"
    out = []
    for line, r in enumerate(cells, start=2):
        try:
            if len(r) < need:
                raise ValueError(f"{len(r)} cells, expected {need}")
            nums = [int(x) for x in r[1:need]]
        except ValueError as err:
            raise ValueError(f"SCALE-Sim topology {path}, layer line {line}: {err} ({mode} rows are "
                             f"'{what}', the numbers integers)") from None
        if mode == "gemm":
            name, (m, n, k) = r[0], nums
            out.append(GemmWorkload(name=name, kind="gemm", M=m, K=k, N=n))
            continue
        name, (ih, iw, fh, fw, ch, nf, st) = r[0], nums
        if min(nums) < 1 or fh > ih or fw > iw:
            raise ValueError(f"SCALE-Sim topology {path}, layer line {line}: sizes must be >= 1 and the filter "
                             f"({fh}x{fw}) no larger than the (padded) input ({ih}x{iw})")
        oh = math.ceil((ih - fh + st) / st)  # SCALE-Sim's formula (no padding: sizes are padded already)
        ow = math.ceil((iw - fw + st) / st)
        out.append(GemmWorkload(name=name, kind="conv2d", M=oh * ow, K=fh * fw * ch, N=nf, in_h=ih, in_w=iw,
                                in_channels=ch, kernel=(fh, fw), stride=(st, st)))
    return out


def workloads_frame(workloads: list[GemmWorkload]):
    """A pandas DataFrame with one row per workload (name, kind, M, K, N, MACs)."""
    import pandas as pd

    return pd.DataFrame([{"name": w.name, "kind": w.kind, "M": w.M, "K": w.K, "N": w.N, "macs": w.macs}
                         for w in workloads])
