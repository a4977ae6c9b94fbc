"""Calling a model on batches of any shape, sentence embeddings (mean pooling), and fidelity metrics
(cosine to a reference, Spearman of pairwise similarities)."""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import row_mask, run_model, token_rows  # noqa: F401  (re-exported: part of this module's API)
from ..vq.layers import lut_layers, set_mode


def last_hidden(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "last_hidden_state"):
        return out.last_hidden_state
    return out[0]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of token states over real tokens (sentence-transformers' pooling): (B, T, D) -> (B, D)."""
    if attention_mask is None:
        return hidden.mean(1)
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def _embed_batch(model: nn.Module, batch: dict, normalize: bool = True) -> torch.Tensor:
    e = mean_pool(last_hidden(run_model(model, batch)), batch.get("attention_mask"))
    return F.normalize(e, dim=-1) if normalize else e


@torch.no_grad()
def sentence_embeddings(model: nn.Module, batches: Iterable[dict], normalize: bool = True,
                        mode: str | None = None) -> torch.Tensor:
    """(n, D) sentence embeddings in batch order; ``mode`` sets every LUT layer's mode (restored after)."""
    saved = {n: m.mode for n, m in lut_layers(model)}
    if mode is not None:
        set_mode(model, mode)
    was = model.training
    model.eval()
    try:
        return torch.cat([_embed_batch(model, b, normalize).float() for b in batches])
    finally:
        for n, m in lut_layers(model):
            m.mode = saved[n]
        model.train(was)


def _rank(x: torch.Tensor) -> torch.Tensor:
    r = torch.empty_like(x, dtype=torch.float64)
    r[x.argsort()] = torch.arange(x.numel(), dtype=torch.float64)
    return r


def pairwise_spearman(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Spearman correlation between the two models' cosine similarities over all sentence pairs i < j."""
    if reference.shape != other.shape or reference.shape[0] < 3:
        raise ValueError(f"need two (n >= 3, D) embedding matrices of one shape; got {tuple(reference.shape)} "
                         f"and {tuple(other.shape)}")
    a, b = F.normalize(reference.double(), dim=-1), F.normalize(other.double(), dim=-1)
    iu = torch.triu_indices(a.shape[0], a.shape[0], offset=1)
    sa, sb = (a @ a.T)[iu[0], iu[1]], (b @ b.T)[iu[0], iu[1]]
    ra, rb = _rank(sa), _rank(sb)  # ties have probability ~0 for float similarities
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-30))


def neighbour_recall(reference: torch.Tensor, other: torch.Tensor, k: int = 10, chunk: int = 1024) -> float:
    """Retrieval agreement: for every sentence as a query (itself excluded), the fraction of the reference
    model's ``k`` nearest neighbours (cosine) that are also among the other model's ``k`` nearest; mean over
    queries. Ties have probability ~0 for float similarities."""
    n = reference.shape[0]
    if reference.shape != other.shape or not 1 <= k < n:
        raise ValueError(f"neighbour_recall: need two (n, D) matrices of one shape and 1 <= k < n; got "
                         f"{tuple(reference.shape)}, {tuple(other.shape)}, k={k}")
    a, b = F.normalize(reference.double(), dim=-1), F.normalize(other.double(), dim=-1)
    hits = 0
    for i in range(0, n, chunk):
        rows = torch.arange(i, min(i + chunk, n))
        sa, sb = a[rows] @ a.T, b[rows] @ b.T
        sa[torch.arange(len(rows)), rows] = -math.inf
        sb[torch.arange(len(rows)), rows] = -math.inf
        ta, tb = sa.topk(k, dim=1).indices, sb.topk(k, dim=1).indices
        hits += int((ta.unsqueeze(2) == tb.unsqueeze(1)).any(2).sum())
    return hits / (n * k)


def fidelity(reference: torch.Tensor, other: torch.Tensor, k: int = 10) -> dict:
    """Per-sentence cosine between two embedding sets (mean, min, 5th percentile), the pairwise Spearman and
    the ``k``-nearest-neighbour recall (``recall10`` for k=10; left out when there are <= k sentences)."""
    cos = F.cosine_similarity(reference.double(), other.double(), dim=-1)
    out = {"mean_cos": float(cos.mean()), "min_cos": float(cos.min()),
           "p05_cos": float(torch.quantile(cos, 0.05)), "spearman": pairwise_spearman(reference, other),
           "n": int(cos.numel())}
    if reference.shape[0] > k:
        out[f"recall{k}"] = neighbour_recall(reference, other, k)
    return out



