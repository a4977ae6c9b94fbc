"""`convert_encoder`: a Hugging Face (BERT-style) sentence encoder as a LUT model, calibrated on the user's
own sentences with the project's recipe, in one call.

The recipe: every ``nn.Linear`` inside the encoder blocks becomes a LUT layer (anything outside the blocks,
such as BERT's pooler, stays float and is reported), then `lutnb.block_refit` calibrates block by block on
the activations the LUT model really produces: k-means per layer, then a ridge least-squares refit of the
layer's weights toward the fp32 teacher's outputs, the ridge chosen per layer on held-out token rows from a
list of candidates, and, for the two Linears per BERT layer that feed the residual stream, a refit against
the teacher's residual sum (`BERT_RESIDUALS`). Use varied text (thousands of sentences) for calibration:
the refit learns the text it sees.
"""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from ..boosting.refit import block_refit
from ..vq.conversion import convert
from ..zoo.minilm import BERT_RESIDUALS, token_batches

# candidate ridges (relative to the mean diagonal of X^T X), chosen per layer on held-out token rows
RIDGE_CANDIDATES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def find_blocks(model: nn.Module) -> str:
    """Name of the ``nn.ModuleList`` holding the most Linears (``"encoder.layer"`` for BERT)."""
    best, count = None, 0
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 1:
            n = sum(isinstance(m, nn.Linear) for m in mod.modules())
            if n > count:
                best, count = name, n
    if best is None:
        raise ValueError(f"{type(model).__name__} has no nn.ModuleList of blocks with Linears: pass blocks= "
                         "(the path of the list of transformer layers, e.g. 'encoder.layer')")
    return best


def _residuals_for(block: nn.Module, residual) -> dict | None:
    if residual == "auto":
        names = dict(block.named_modules())
        return BERT_RESIDUALS if all(k in names and v in names for k, v in BERT_RESIDUALS.items()) else None
    if residual is None or isinstance(residual, dict):
        return residual
    raise ValueError(f"residual={residual!r}: use 'auto', None or a {{layer: module}} dict (see block_refit)")


def convert_encoder(model: nn.Module, tokenizer, sentences: list[str], *, v: int = 2, c: int = 16,
                    metric: str = "l2", table_bits: int = 8, blocks: str | None = None,
                    ridge=RIDGE_CANDIDATES, max_rows: int = 4096, iters: int = 8, residual="auto",
                    overrides: dict | None = None, batch_size: int = 64, max_length: int = 64, seed: int = 0,
                    progress: bool = True) -> nn.Module:
    """A LUT copy of ``model`` (``model`` itself is untouched), calibrated on ``sentences``.

    ``model``: a transformers encoder (e.g. ``AutoModel.from_pretrained(...)``); ``tokenizer`` its tokenizer;
    ``sentences``: calibration text (a few thousand varied sentences; fewer than ~300 leaves the refit of the
    1536-wide MLP layers under-determined and the strong default ridge candidates take over). ``v``, ``c``,
    ``metric``, ``table_bits``, ``overrides`` as in `lutnb.convert`. ``blocks``: path of the list of layers
    (found automatically). ``ridge``, ``max_rows``, ``iters``, ``residual`` as in `lutnb.block_refit`
    (``residual="auto"``: BERT's two residual Linears when the block has them). Returns the model with
    ``lut_summary`` and ``refit_report`` (settings, per-layer stats, seconds).
    """
    if isinstance(sentences, str) or not sentences or not all(isinstance(s, str) and s.strip() for s in sentences):
        raise ValueError("sentences: give a list of non-empty strings (calibration text, ideally thousands)")
    blocks = blocks or find_blocks(model)
    inside = {f"{blocks}.{n}" for n, _ in model.get_submodule(blocks).named_modules()}
    outside = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in inside]
    t0 = time.perf_counter()
    lut = convert(model, v, c, metric, skip=outside, overrides=overrides, table_bits=table_bits)
    res = _residuals_for(model.get_submodule(blocks)[0], residual)
    batches = token_batches(tokenizer, list(sentences), batch_size, max_length)
    stats = block_refit(lut, model, batches, blocks, ridge=list(ridge) if not isinstance(ridge, (int, float))
                        else ridge, max_rows=max_rows, iters=iters, seed=seed, residual=res, progress=progress)
    lut.eval()
    layers = {k: s for k, s in stats.items() if not k.startswith("_")}
    lut.refit_report = {
        "v": v, "c": c, "metric": metric, "table_bits": table_bits, "bits_per_act": math.log2(c) / v,
        "blocks": blocks, "kept_float": outside, "residual": dict(res or {}), "sentences": len(sentences),
        "token_rows": int(sum(int(b["attention_mask"].sum()) if "attention_mask" in b else
                              int(torch.as_tensor(b["input_ids"]).numel()) for b in batches)),
        "layers": layers, "seconds": time.perf_counter() - t0,
    }
    return lut
