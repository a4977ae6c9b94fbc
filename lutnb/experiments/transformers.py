"""Transformers: LUT conversion of Hugging Face encoders (all-MiniLM-L6-v2) and of `lutnb.zoo.vit`.

What is converted: every ``nn.Linear`` inside attention (query, key, value, output) and the MLP. What stays
float: embeddings, LayerNorm, softmax, GELU, and the two activation-by-activation products of attention,
``Q K^T`` and ``softmax(.) V``: they have no fixed weight, so no table can be precomputed; on the accelerator
they run on a dense unit (`transformer_workloads` lists them with ``kind="attention_dense"``).

Here: `minilm_experiment` and `vit_experiment` (one configuration end to end, returning a row of numbers)
and the tables notebook 06 shows. What they are built from lives below: MiniLM loading and the sentence
corpus in `lutnb.zoo.minilm`, sentence embeddings and fidelity metrics in `lutnb.boosting.embeddings`,
`block_refit` in `lutnb.boosting.refit`, distillation in `lutnb.boosting.distill`, workloads for the cost
model in `lutnb.codesign.workloads`.
"""
from __future__ import annotations

import math
import time

from ..boosting.config import CalibrateStage, LUTBoostConfig
from ..boosting.distill import distill_classifier, distill_embeddings
from ..boosting.embeddings import fidelity, sentence_embeddings
from ..boosting.refit import block_refit
from ..boosting.runner import lutboost
from ..boosting.steps import accuracy
from ..files import cacheable
from ..vq.calibration import calibrate
from ..vq.conversion import convert
from ..zoo.data import load_digits
from ..zoo.minilm import BERT_RESIDUALS, load_minilm, load_sentences, token_batches
from ..zoo.train import VIT_RECIPE, evaluate, pretrained_vit
from ..zoo.vit import random_shift, regroup_channels


@cacheable()
def minilm_experiment(metric: str, v: int, c: int = 16, *, n_train: int | None = None,
                      n_heldout: int | None = None, batch_size: int = 64, max_length: int = 64,
                      ridge: float = 1e-3, max_rows: int = 4096, iters: int = 8,
                      distill_steps: int = 0, distill_lr: float = 1e-4, seed: int = 0,
                      table_bits: int = 8, residual: bool = True, model=None, tokenizer=None, reference=None,
                      train_sentences: list[str] | None = None, heldout_sentences: list[str] | None = None,
                      return_model: bool = False, progress: bool = False):
    """Convert all 36 encoder Linears of MiniLM at (metric, v, c), `block_refit` on ``n_train`` training
    sentences (+ ``distill_steps`` of `distill_embeddings`), and measure fidelity to fp32 on the held-out
    split with float ("lut") and INT-``table_bits`` ("quant") tables. Returns a flat dict of numbers.
    ``residual``: refit the two Linears per layer that feed the residual stream against the teacher's sum
    (`BERT_RESIDUALS`; L2, v=2, 300 held-out sentences: mean cosine 0.950 -> 0.958, minimum 0.81 -> 0.84).

    ``n_train=None`` uses all 3,000 sentences: the refit solves a (K+1) x (K+1) system per layer and needs
    many more token rows than K = 1536 (L2, v=2, 300 held-out sentences: mean cosine 0.896 with 256
    sentences, 0.950 with 3,000).

    ``train_sentences`` / ``heldout_sentences``: your own calibration / evaluation text instead of the
    project's corpus (`lutnb.zoo.corpus` has real text from other sources; `lutnb.convert_encoder` is the
    one-call API for your own encoder). ``return_model=True`` returns ``(row, lut_model)``.
    ``cache=PATH``: reuse the row of an identical earlier call stored there (`lutnb.files.cacheable`)."""

    if tokenizer is None or model is None:
        tokenizer, model = load_minilm()
    train = train_sentences if train_sentences is not None else load_sentences("train", n_train)
    held = heldout_sentences if heldout_sentences is not None else load_sentences("heldout", n_heldout)
    tr = token_batches(tokenizer, train, batch_size, max_length)
    ho = token_batches(tokenizer, held, 100, max_length)
    ref = reference if reference is not None else sentence_embeddings(model, ho)
    t0 = time.perf_counter()
    lut = convert(model, v, c, metric, table_bits=table_bits)
    n_conv = len(lut.lut_summary.converted)
    stats = block_refit(lut, model, tr, ridge=ridge, max_rows=max_rows, iters=iters, seed=seed, progress=progress,
                        residual=BERT_RESIDUALS if residual else None)
    row = {"model": "minilm", "metric": metric, "v": v, "c": c, "bits_per_act": math.log2(c) / v,
           "refit_residual": bool(residual),
           "layers_converted": n_conv, "n_train": len(train),
           "n_heldout": int(ref.shape[0]), "refit_seconds": stats["_seconds"],
           "recon_rel_mean": float(sum(s["recon_rel"] for k, s in stats.items() if not k.startswith("_"))
                                   / n_conv)}
    f = fidelity(ref, sentence_embeddings(lut, ho, mode="lut"))
    row.update({f"refit_{k}": val for k, val in f.items() if k != "n"})
    if distill_steps > 0:
        hist = distill_embeddings(lut, model, tr, distill_steps, lr=distill_lr, seed=seed, progress=progress)
        row["distill_steps"] = distill_steps
        row["distill_seconds"] = float(sum(h["seconds"] for h in hist))
    for mode in ("lut", "quant"):
        f = fidelity(ref, sentence_embeddings(lut, ho, mode=mode))
        row.update({f"{mode}_{k}": val for k, val in f.items() if k != "n"})
    row["seconds"] = time.perf_counter() - t0
    return (row, lut) if return_model else row


# the default ViT recipe (v=4 screening on digits, 1 thread): regroup channels
# into correlated sub-spaces, block_refit, then distill_classifier with these settings
VIT_DISTILL = {"epochs": 40, "lr": 2e-3, "codebook_lr_scale": 4.0, "feature_weight": 20.0,
               "layer_feature_weight": 5.0, "kd_weight": 1.0, "kd_temperature": 2.0, "task_weight": 1.0,
               "recon_weight": 1.0, "dead_restart": False, "quant_epochs": 1, "quant_lr": 1e-4,
               "select_best": True}


def _distill_kwargs(kw: dict) -> dict:
    """``kw`` as `distill_classifier` takes it: a ``max_shift`` > 0 becomes the random-shift ``augment`` hook
    (random +-``max_shift`` pixel shifts of every training batch, drawn from distill_classifier's generator)."""
    call = dict(kw)
    shift = call.pop("max_shift", 0)
    if shift:
        call["augment"] = lambda x, g: random_shift(x, shift, g)
    return call


@cacheable()
def vit_experiment(metric: str, v: int, c: int = 16, seed: int = 0, *, epochs_scale: float = 1.0,
                   lr_scale: float = 1.0, refit: bool = True, fp32_epochs: int | None = None,
                   recipe: str = "distill", regroup: bool = True, distill: dict | None = None,
                   fp32_act_noise: float | None = None, skip: tuple = ("patch_embed",),
                   progress: bool = False) -> dict:
    """The digits ViT at (metric, v, c), the layers in ``skip`` kept float; test accuracies (%) of the fp32 and
    the INT8-table LUT model.

    ``recipe="distill"`` (default): `lutnb.zoo.vit.regroup_channels` (function-preserving permutation putting
    correlated channels into one sub-space), `block_refit` of the blocks (head: k-means), then
    `distill_classifier` against the fp32 teacher with ``VIT_DISTILL`` (updated by ``distill``): logits KD,
    per-block and per-layer feature distillation, reconstruction loss, 1 INT8 epoch, best epoch on the
    VALIDATION split. ``recipe="lutboost"``: `block_refit` then the LUTBoost training stages (``refit=False``:
    plain LUTBoost from its own calibration stage). Epochs x ``epochs_scale``, learning rates x ``lr_scale``.
    ``distill`` may set ``max_shift`` (random +-pixel shifts of the training images, given to
    `distill_classifier` as its ``augment`` hook).
    ``cache=PATH``: reuse the row of an identical earlier call stored there (`lutnb.files.cacheable`).
    """

    if recipe not in ("distill", "lutboost"):
        raise ValueError(f"recipe={recipe!r}: use 'distill' or 'lutboost'")
    t0 = time.perf_counter()
    model = pretrained_vit(seed, epochs=fp32_epochs, act_noise=fp32_act_noise)
    data = load_digits(seed)
    fp32 = evaluate(model, data.test)

    row = {"model": "vit_digits", "metric": metric, "v": v, "c": c, "seed": seed, "bits_per_act": math.log2(c) / v,
           "fp32_acc": fp32, "fp32_act_noise": VIT_RECIPE.get("act_noise", 0.0) if fp32_act_noise is None
           else fp32_act_noise, "epochs_scale": epochs_scale, "lr_scale": lr_scale, "float_layers": list(skip),
           "dim": model.patch_embed.out_features}
    x = data.train.tensors[0]
    batches = [x[i:i + 256] for i in range(0, len(x), 256)]

    def refitted(teacher):  # convert, k-means for a LUT head, block_refit of the blocks; INT8 test accuracy
        lut = convert(teacher, v, c, metric, skip=list(skip))
        if "head" not in skip:
            calibrate(lut, batches, iters=10, seed=seed, layers=["head"])
        block_refit(lut, teacher, batches, blocks="blocks", ridge=1e-3, iters=10, max_rows=8192, seed=seed)
        row["refit_int8_acc"] = accuracy(lut, data.test, "quant")
        return lut

    if recipe == "distill":
        kw = dict(VIT_DISTILL, **(distill or {}))
        kw["epochs"] = max(1, int(round(kw["epochs"] * epochs_scale)))
        kw["lr"] *= lr_scale
        kw["quant_lr"] *= lr_scale
        teacher = regroup_channels(model, x, v) if regroup else model
        lut = refitted(teacher)
        hist = distill_classifier(lut, teacher, data.train, data.val, blocks="blocks", seed=seed,
                                  progress=progress, **_distill_kwargs(kw))
        final = accuracy(lut, data.test, "quant")
        row.update({"recipe": ("regroup+" if regroup else "") + "block_refit+distill", "distill": kw,
                    "selected_epoch": next((h["epoch"] for h in hist if h.get("selected")), len(hist)),
                    "val_int8_acc": accuracy(lut, data.val, "quant")})
    else:
        cfg = LUTBoostConfig().scaled(epochs_scale) if epochs_scale != 1.0 else LUTBoostConfig()
        if lr_scale != 1.0:
            for st in cfg.stages[1:]:
                cfg = cfg.with_stage(st.name, lr=st.lr * lr_scale)
        row["recipe"] = "block_refit+lutboost" if refit else "lutboost"
        start = model
        if refit:
            start = refitted(model)
            cfg = LUTBoostConfig((CalibrateStage(skip=True),) + cfg.stages[1:])
        _, rep = lutboost(start, data.train, data.val, v=v, c=c, metric=metric, skip=tuple(skip), stages=cfg,
                          seed=seed, test=data.test, teacher=model, progress=progress)
        final = rep.final_acc
    row.update({"lut_int8_acc": final, "drop_pt": fp32 - final, "n_test": len(data.test),
                "seconds": time.perf_counter() - t0})
    return row


# ------------------------------------------------------------------------------------------ reporting
def minilm_table(rows: list[dict]):
    """MiniLM rows -> DataFrame indexed by (metric, v): mean / min cosine and Spearman, INT8 and float tables."""
    import pandas as pd

    cols = {"bits_per_act": "bits/act", "quant_mean_cos": "mean cos (INT8)", "quant_min_cos": "min cos (INT8)",
            "quant_spearman": "Spearman (INT8)", "lut_mean_cos": "mean cos (float tables)",
            "refit_seconds": "refit s"}
    df = pd.DataFrame([r for r in rows if r["model"] == "minilm"])
    return df.set_index(["metric", "v"])[list(cols)].rename(columns=cols).sort_index()


def vit_table(rows: list[dict]):
    """ViT rows -> DataFrame indexed by (metric, v): fp32 and INT8 LUT accuracy, drop (mean over seeds)."""
    df = __import__("pandas").DataFrame([r for r in rows if r["model"] == "vit_digits"])
    g = df.groupby(["metric", "v"])
    out = g[["fp32_acc", "lut_int8_acc", "drop_pt"]].mean()
    out["drop_std"] = g["drop_pt"].std(ddof=0)
    out["seeds"] = g["seed"].nunique()
    return out.sort_index()
