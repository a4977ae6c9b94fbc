"""Named workloads for cost and design-space exploration: CNN shapes from lutnb.zoo.models, encoder shapes.

A `Workload` is a tuple of distinct GEMMs, how often each repeats, and which of them stay on a dense
unit (attention products QK^T and AV have no fixed weights, so they cannot become tables).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from ..hw import GemmWorkload, extract_workloads
from ..runtime import row_mask, run_model, token_rows
from ..zoo import models

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
    """A CNN from lutnb.zoo.models as GEMMs (every Conv2d and Linear; identical shapes merged)."""
    import torch

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


# ----------------------------------------------------------------------------- traced transformer workloads
def _attention_geometry(module: nn.Module) -> tuple[int, int] | None:
    """(heads, head_dim) of an attention module (HF BertSelfAttention-like or lutnb.zoo.vit.Attention)."""
    for h_attr, d_attr in (("num_attention_heads", "attention_head_size"), ("heads", "head_dim"),
                           ("num_heads", "head_dim")):
        h, d = getattr(module, h_attr, None), getattr(module, d_attr, None)
        if isinstance(h, int) and isinstance(d, int):
            return h, d
    return None


@torch.no_grad()
def transformer_workloads(model: nn.Module, example) -> list:
    """Per-call GEMMs of a transformer on one example batch (a dict of kwargs or a tensor).

    Every Linear / LUT Linear gives a ``GemmWorkload`` of kind ``"linear"`` (M = real tokens, K, N: goes to
    the LUT engine). Every attention module adds, per sequence and head, ``<name>.qk`` (M = T, K = head_dim,
    N = T) and ``<name>.av`` (M = T, K = T, N = head_dim) of kind ``"attention_dense"``: activation x
    activation products that stay on a dense unit. Padding tokens are not counted.
    """

    mask = row_mask(example)
    lengths = mask.sum(1).tolist() if mask is not None else None
    works: list = []
    calls: dict[str, int] = {}
    attn_names = {n for n, m in model.named_modules() if _attention_geometry(m) is not None}

    def lin_hook(name):
        def fn(_m, inp, out):
            calls[name] = calls.get(name, 0) + 1
            nm = name if calls[name] == 1 else f"{name}#{calls[name]}"
            rows = token_rows(inp[0], mask)
            works.append(GemmWorkload(name=nm, M=int(rows.shape[0]), K=int(inp[0].shape[-1]),
                                      N=int(out.shape[-1]), kind="linear", batch=int(inp[0].shape[0])))
        return fn

    def attn_hook(name, module):
        heads, dh = _attention_geometry(module)

        def fn(_m, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            B, T = int(x.shape[0]), int(x.shape[1])
            for b in range(B):
                t = int(lengths[b]) if lengths is not None else T
                for hd in range(heads):
                    works.append(GemmWorkload(name=f"{name}.qk[b{b},h{hd}]", M=t, K=dh, N=t, kind="attention_dense"))
                    works.append(GemmWorkload(name=f"{name}.av[b{b},h{hd}]", M=t, K=t, N=dh, kind="attention_dense"))
        return fn

    hs = [m.register_forward_hook(lin_hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hs += [m.register_forward_pre_hook(attn_hook(n, m), with_kwargs=True) for n, m in model.named_modules()
           if n in attn_names]
    was = model.training
    model.eval()
    try:
        run_model(model, example)
    finally:
        for h in hs:
            h.remove()
        model.train(was)
    return works


def as_workload(name: str, works: list):
    """Fold a `transformer_workloads` list into a `Workload` (repeats, dense flags)."""

    return merge_repeats(name, works, [w.kind == "attention_dense" for w in works])


def workload_summary(works: list) -> dict:
    """GEMM counts and MACs of a `transformer_workloads` list: LUT (Linear) vs dense (attention products)."""
    lut = [w for w in works if w.kind != "attention_dense"]
    dense = [w for w in works if w.kind == "attention_dense"]
    ml, md = sum(w.macs for w in lut), sum(w.macs for w in dense)
    return {"lut_gemms": len(lut), "dense_gemms": len(dense), "lut_macs": ml, "dense_macs": md,
            "dense_mac_fraction": md / max(1, ml + md)}



def workload_of(workload) -> Workload:
    """``workload`` itself if it is a Workload, the named one if it is a name (`get_workload`), else TypeError."""
    if isinstance(workload, str):
        return get_workload(workload)
    if not isinstance(workload, Workload):
        raise TypeError(f"workload={workload!r}: give a Workload or one of the names in "
                        "lutnb.codesign.workloads.WORKLOADS")
    return workload
