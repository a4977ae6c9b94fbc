"""Named workloads for cost and design-space exploration: CNN shapes from lutnb.models, encoder shapes.

A `Workload` is a tuple of distinct GEMMs, how often each repeats, and which of them stay on a dense
unit (attention products QK^T and AV have no fixed weights, so they cannot become tables).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

from .hw import GemmWorkload, extract_workloads

ENCODERS = {   # [published model shapes] layers, hidden, heads, FFN width
    "bert_base": {"layers": 12, "hidden": 768, "heads": 12, "ffn": 3072},     # Devlin et al. 2019
    "minilm": {"layers": 6, "hidden": 384, "heads": 12, "ffn": 1536},         # all-MiniLM-L6-v2
}
CNNS = {   # model factory name, input shape (batch 1)
    "digits_cnn": ("digits_cnn", (1, 1, 8, 8)),
    "resnet20": ("resnet20", (1, 3, 32, 32)),
    "resnet18": ("resnet18_imagenet", (1, 3, 224, 224)),
    "resnet50": ("resnet50_imagenet", (1, 3, 224, 224)),
}
WORKLOADS = tuple(CNNS) + tuple(ENCODERS)


@dataclass(frozen=True)
class Workload:
    """Distinct GEMMs, their repeat counts and which run dense (by index)."""

    name: str
    layers: tuple
    repeats: tuple
    dense: tuple          # bools, one per layer

    def __post_init__(self):
        if not (len(self.layers) == len(self.repeats) == len(self.dense)) or not self.layers:
            raise ValueError(f"Workload {self.name!r}: layers, repeats and dense need equal, non-zero lengths")
        if any(r < 1 for r in self.repeats):
            raise ValueError(f"Workload {self.name!r}: repeats must be >= 1, got {self.repeats}")

    @property
    def lut_layers(self) -> list:
        return [(w, r) for w, r, d in zip(self.layers, self.repeats, self.dense) if not d]

    @property
    def dense_layers(self) -> list:
        return [(w, r) for w, r, d in zip(self.layers, self.repeats, self.dense) if d]

    @property
    def macs(self) -> int:
        return sum(w.macs * r for w, r in zip(self.layers, self.repeats))

    @property
    def ops(self) -> int:
        """Equivalent dense ops, 2*M*K*N summed over every GEMM (LUT and dense)."""
        return 2 * self.macs

    def expanded(self, dense: bool = False) -> list:
        """The LUT (or dense) GEMMs one by one, repeats written out (for lutnb.hw.simulate_network)."""
        return [w for w, r in (self.dense_layers if dense else self.lut_layers) for _ in range(r)]

    def fingerprint(self) -> str:
        key = [(w.name, w.M, w.K, w.N, r, d) for w, r, d in zip(self.layers, self.repeats, self.dense)]
        return hashlib.sha256(json.dumps([self.name, key]).encode()).hexdigest()[:16]

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"layer": w.name, "M": w.M, "K": w.K, "N": w.N, "repeats": r, "dense": d,
                              "macs": w.macs * r} for w, r, d in zip(self.layers, self.repeats, self.dense)])


def merge_repeats(name: str, works: list, dense: list | None = None) -> Workload:
    """Merge GEMMs of identical shape (and density) into one entry with a repeat count, keeping order."""
    dense = dense or [False] * len(works)
    keys, layers, reps, flags = {}, [], [], []
    for w, d in zip(works, dense):
        k = (w.M, w.K, w.N, d)
        if k in keys:
            reps[keys[k]] += 1
        else:
            keys[k] = len(layers)
            layers.append(w)
            reps.append(1)
            flags.append(d)
    return Workload(name, tuple(layers), tuple(reps), tuple(flags))


def encoder_workload(name: str = "bert_base", seq_len: int = 128, layers: int | None = None,
                     hidden: int | None = None, heads: int | None = None, ffn: int | None = None) -> Workload:
    """A transformer encoder: per layer Q, K, V, O (h x h), FFN up (h x ffn) and down as LUT GEMMs, and per
    head QK^T (seq x d_head x seq) and AV (seq x seq x d_head) as dense GEMMs. Batch 1, no pooler/head."""
    base = ENCODERS.get(name, {})
    L = layers or base.get("layers")
    h, nh, f = hidden or base.get("hidden"), heads or base.get("heads"), ffn or base.get("ffn")
    if None in (L, h, nh, f):
        raise ValueError(f"encoder {name!r}: unknown; give layers, hidden, heads and ffn (known: {list(ENCODERS)})")
    if h % nh:
        raise ValueError(f"encoder {name!r}: hidden={h} is not divisible by heads={nh}")
    dh = h // nh
    lin = [GemmWorkload(f"{p}_proj", M=seq_len, K=h, N=h, kind="linear") for p in ("q", "k", "v", "o")]
    lin += [GemmWorkload("ffn_up", M=seq_len, K=h, N=f, kind="linear"),
            GemmWorkload("ffn_down", M=seq_len, K=f, N=h, kind="linear")]
    att = [GemmWorkload("attn_qk", M=seq_len, K=dh, N=seq_len), GemmWorkload("attn_av", M=seq_len, K=seq_len, N=dh)]
    lut_w = merge_repeats(name, lin)
    layers_, reps, flags = list(lut_w.layers), [r * L for r in lut_w.repeats], list(lut_w.dense)
    for a in att:
        layers_.append(a)
        reps.append(L * nh)
        flags.append(True)
    return Workload(name, tuple(layers_), tuple(reps), tuple(flags))


@lru_cache(maxsize=16)
def cnn_workload(name: str, image_size: int | None = None) -> Workload:
    """A CNN from lutnb.models as GEMMs (every Conv2d and Linear; identical shapes merged)."""
    import torch

    from . import models

    factory, shape = CNNS[name]
    if image_size is not None:
        shape = shape[:2] + (image_size, image_size)
    with torch.no_grad():
        works = extract_workloads(getattr(models, factory)(), shape)
    return merge_repeats(name, works)


def get_workload(name: str, smoke: bool = False, **kw) -> Workload:
    """A named workload: digits_cnn, resnet20, resnet18, resnet50, bert_base, minilm.

    smoke: ResNet-18/50 at 64x64 inputs and encoders at sequence length 32 (same layers, fewer rows).
    """
    if name in ENCODERS:
        kw.setdefault("seq_len", 32 if smoke else 128)
        return encoder_workload(name, **kw)
    if name in CNNS:
        size = kw.get("image_size", 64 if smoke and name in ("resnet18", "resnet50") else None)
        return cnn_workload(name, size)
    raise ValueError(f"workload {name!r}: use one of {WORKLOADS}")
