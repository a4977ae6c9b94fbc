"""Diagnostics for the MiniLM fidelity gap of issue #6 (why all-36-Linears at v=2, c=16 stops near 0.95).

    python tools/minilm_probes.py oracle   # block_refit calibrated on train + held-out: a ceiling
    python tools/minilm_probes.py worst    # the held-out sentences with the lowest cosine
    python tools/minilm_probes.py layers   # one layer's VQ error under free reparametrizations
    python tools/minilm_probes.py distill  # end-to-end distillation from the refit model, by backward
    python tools/minilm_probes.py skip     # one Linear type kept float in every block: its share of the gap

Each prints what it measured; nothing is written to data/. `oracle` and `worst` run `block_refit` as
`minilm_experiment` does (all 3,000 training sentences, residual refit, ridge 1e-3, 8 k-means iterations).
One thread by default: `layers` takes about 2 min, `worst` 5, `oracle` and `distill` 10, `skip` 4 per type.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import lutnb
from lutnb.boosting import distill, embeddings, refit
from lutnb.vq.calibration import kmeans
from lutnb.vq.distances import encode
from lutnb.zoo import minilm


def _setup(args):
    tok, model = minilm.load_minilm()
    model.eval()
    heldout = minilm.load_sentences("heldout", args.heldout)
    ho = minilm.token_batches(tok, heldout, 100)
    ref = embeddings.sentence_embeddings(model, ho)
    tr = minilm.token_batches(tok, minilm.load_sentences("train"), 64)
    return tok, model, heldout, ho, ref, tr


def _refit(model, tr, args, skip: str | None = None):
    # explicit names: the glob "*.output.dense" would also match attention.output.dense
    names = [f"encoder.layer.{i}.{skip}" for i in range(len(model.encoder.layer))] if skip else []
    lut = lutnb.convert(model, args.v, 16, args.metric, table_bits=8, skip=names)
    residual = {k: m for k, m in minilm.BERT_RESIDUALS.items() if k != skip}
    refit.block_refit(lut, model, tr, ridge=1e-3, iters=8, residual=residual, progress=True)
    return lut


def _report(label, ref, lut, ho):
    for mode in ("lut", "quant"):
        f = embeddings.fidelity(ref, embeddings.sentence_embeddings(lut, ho, mode=mode))
        print(f"{label} [{mode} tables]: mean {f['mean_cos']:.4f}  min {f['min_cos']:.4f}  "
              f"5% {f['p05_cos']:.4f}  spearman {f['spearman']:.4f}  (n={f['n']})", flush=True)


def probe_oracle(args) -> None:
    """Calibrate on the held-out sentences too: an optimistic ceiling for the refit on this corpus."""
    tok, model, heldout, ho, ref, tr = _setup(args)
    _report("refit on train", ref, _refit(model, tr, args), ho)
    tr = minilm.token_batches(tok, minilm.load_sentences("train") + heldout, 64)
    _report("refit on train + the held-out sentences themselves", ref, _refit(model, tr, args), ho)


def probe_worst(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_sentences import HAND_WRITTEN

    _, model, heldout, ho, ref, tr = _setup(args)
    lut = _refit(model, tr, args)
    cos = F.cosine_similarity(ref, embeddings.sentence_embeddings(lut, ho, mode="quant"), dim=-1)
    for i in cos.argsort()[:args.top].tolist():
        print(f"{float(cos[i]):.3f}  {heldout[i]}")
    written = set(HAND_WRITTEN)
    hand = torch.tensor([s in written for s in heldout])
    print(f"hand-written: {int(hand.sum())} sentences, mean cos {float(cos[hand].mean()):.4f}; "
          f"templated: mean {float(cos[~hand].mean()):.4f}")


def _vq_refit_error(X, y, scale=None, v=2, c=16, seed=0):
    """Relative output error on a held-out fifth of the rows: k-means (L2) VQ of X / scale, then the ridge
    least-squares refit of [W, b] on the rows scale * C[idx] against y. What `refit._refit_layer` does, plus the
    per-row scale and the held-out rows it has no room for (its ridge pulls toward the old weights, this one
    toward zero; both at 1e-3 of the mean diagonal)."""
    n, K = X.shape
    s = torch.ones(n, 1, dtype=X.dtype) if scale is None else scale
    fit = torch.arange(n) % 5 != 0
    sub = (X / s).float().reshape(n, K // v, v)
    cb = kmeans(sub[fit][:4096].transpose(0, 1).contiguous(), c, "l2", iters=8, seed=seed)
    idx = encode(sub, cb, "l2")
    q = cb[torch.arange(K // v), idx].reshape(n, K).double() * s
    A = torch.cat([q, torch.ones(n, 1, dtype=torch.float64)], 1)
    G = A[fit].T @ A[fit]
    sol = torch.linalg.solve(G + 1e-3 * G.diagonal().mean() * torch.eye(K + 1, dtype=torch.float64),
                             A[fit].T @ y[fit])
    return float((A[~fit] @ sol - y[~fit]).pow(2).sum() / y[~fit].pow(2).sum())


def probe_layers(args) -> None:
    """The teacher's own activations in blocks 0, 2, 5 (800 training sentences), one layer at a time:

    - attention.output.dense under a per-head invertible map R folded into value and output
      (function-preserving): R = S V^T from the SVD of the head's columns of W_o makes the output error
      Euclidean in the new space ("svd"), plus a PCA rotation of it ("svd+pca");
    - per-token scaling (quantize x / rms(x), multiply the output back) for four layer types.
    """
    tok, model = minilm.load_minilm()
    model.eval()
    tr = minilm.token_batches(tok, minilm.load_sentences("train", 800), 64)
    names = ["attention.self.query", "attention.output.dense", "intermediate.dense", "output.dense"]
    blocks = (0, 2, 5)
    full = [f"encoder.layer.{li}.{n}" for li in blocks for n in names]
    store, cur = {f: [] for f in full}, {}

    def keep(name):
        return lambda _m, i, _o: store[name].append(embeddings.token_rows(i[0], cur["mask"]))

    hooks = [model.get_submodule(f).register_forward_hook(keep(f)) for f in full]  # one pass for all
    with torch.no_grad():
        for b in tr:
            cur["mask"] = embeddings.row_mask(b)
            embeddings.run_model(model, b)
    for h in hooks:
        h.remove()
    for li in blocks:
        mods = dict(model.encoder.layer[li].named_modules())
        for n in names:
            X = torch.cat(store.pop(f"encoder.layer.{li}.{n}")).double()
            W, b = mods[n].weight.detach().double(), mods[n].bias.detach().double()
            y = X @ W.T + b
            rms = X.pow(2).mean(1, keepdim=True).sqrt()
            line = {"plain": _vq_refit_error(X, y), "token-scaled": _vq_refit_error(X, y, scale=rms)}
            if n == "attention.output.dense":
                heads = model.config.num_attention_heads
                d = X.shape[1] // heads
                R1 = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64)
                R2 = torch.zeros_like(R1)
                for hh in range(heads):
                    sl = slice(hh * d, (hh + 1) * d)
                    _, S, Vh = torch.linalg.svd(W[:, sl], full_matrices=False)
                    R = torch.diag(S) @ Vh
                    ev, Q = torch.linalg.eigh(torch.cov((X[:, sl] @ R.T).T))
                    R1[sl, sl], R2[sl, sl] = R, Q[:, ev.argsort(descending=True)].T @ R
                for k, R in (("svd", R1), ("svd+pca", R2)):
                    line[k] = _vq_refit_error(X @ R.T, y)  # the refit finds W R^-1 (and better)
            print(f"block {li} {n:24s} " + "  ".join(f"{k} {val:.4f}" for k, val in line.items()), flush=True)


def probe_distill(args) -> None:
    """`distill_embeddings` from the refit model (cosine loss only, batch 32), once per backward."""
    tok, model, heldout, ho, ref, tr = _setup(args)
    tr32 = minilm.token_batches(tok, minilm.load_sentences("train"), 32)
    base = _refit(model, tr, args)
    _report("refit", ref, base, ho)
    state = {k: t.clone() for k, t in base.state_dict().items()}
    for backward in ("exact", "hard"):
        base.load_state_dict(state)
        hist = distill.distill_embeddings(base, model, tr32, args.steps, lr=args.lr, backward=backward,
                                    codebook_lr_scale=1.0, hidden_weight=0.0, progress=True)
        first = 1 - sum(h["cos_loss"] for h in hist[:50]) / min(50, len(hist))
        last = 1 - sum(h["cos_loss"] for h in hist[-50:]) / min(50, len(hist))
        print(f"backward={backward}: training-batch cosine, first 50 steps {first:.4f}, last 50 {last:.4f}")
        _report(f"distilled {args.steps} steps, lr {args.lr}, backward={backward}", ref, base, ho)


def probe_skip(args) -> None:
    """All Linears converted except one type (in all 6 blocks), which stays float."""
    _, model, _, ho, ref, tr = _setup(args)
    for kind in args.types.split(","):
        _report(f"{kind} kept float", ref, _refit(model, tr, args, skip=kind), ho)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", choices=("oracle", "worst", "layers", "distill", "skip"))
    ap.add_argument("--metric", default="l2")
    ap.add_argument("--v", type=int, default=2)
    ap.add_argument("--heldout", type=int, default=None, help="first N held-out sentences (default: all 600)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--types", default="attention.self.query,attention.self.key,attention.self.value,"
                    "attention.output.dense,intermediate.dense,output.dense",
                    help="skip: the Linear types to try, comma-separated")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    probes = {"oracle": probe_oracle, "worst": probe_worst, "layers": probe_layers, "distill": probe_distill,
              "skip": probe_skip}
    probes[args.probe](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
