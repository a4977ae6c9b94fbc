"""MiniLM as a LUT model judged on text from a source it was not calibrated on (issue: held-out source).

    python tools/minilm_heldout_source.py --out results/minilm_heldout_source.json \
        [--metrics l2 l1 chebyshev] [--v 2 4] [--n-cal 3000] [--n-eval 2000] [--threads 2]

Calibration: `lutnb.convert_encoder` (all 36 encoder Linears, c=16, INT8 tables, ridge chosen per layer on
held-out token rows, residual refit) on ``--cal`` sources of `lutnb.zoo.corpus` (default: package docstrings,
scikit-learn dataset notes, license texts). Evaluation on ``--eval`` sources (default: Python standard library
docstrings, ``--n-eval`` of them, and the Python Language Reference topics, all of them), none of which was seen
in calibration. Per configuration: mean / min / 5th-percentile cosine to the fp32 embeddings, Spearman of all
pairwise similarities, recall@10 of the fp32 model's 10 nearest neighbours, conversion wall time.
Resumable: configurations already in ``--out`` are skipped; each finished one is written at once (atomically).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import lutnb
from lutnb.boosting.embeddings import fidelity, sentence_embeddings
from lutnb.files import atomic_write_bytes
from lutnb.zoo.corpus import SOURCES, load_corpus, sample_sentences
from lutnb.zoo.minilm import load_minilm, token_batches


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("results/minilm_heldout_source.json"))
    p.add_argument("--metrics", nargs="+", default=["l2", "l1", "chebyshev"])
    p.add_argument("--v", nargs="+", type=int, default=[2, 4])
    p.add_argument("--c", type=int, default=16)
    p.add_argument("--cal", nargs="+", default=["packages", "datasets", "licenses"], choices=SOURCES)
    p.add_argument("--eval", nargs="+", default=["stdlib", "pydoc"], choices=SOURCES)
    p.add_argument("--n-cal", type=int, default=3000)
    p.add_argument("--n-eval", type=int, default=2000, help="sentences per evaluation source (at most)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args(argv)
    if set(a.cal) & set(a.eval):
        p.error(f"--cal and --eval share {sorted(set(a.cal) & set(a.eval))}: the point is a held-out source")
    return a


def main(argv=None) -> int:
    a = _args(argv)
    torch.set_num_threads(a.threads)
    done = json.loads(a.out.read_text()) if a.out.exists() else {"rows": []}
    have = {(r["metric"], r["v"], r["c"]) for r in done["rows"]}
    tok, model = load_minilm()
    cal = sample_sentences(a.cal, a.n_cal, seed=0)
    evals = {src: sample_sentences(src, a.n_eval, seed=1) for src in a.eval}
    done["setup"] = {"cal_sources": a.cal, "n_cal": len(cal), "eval": {s: len(v) for s, v in evals.items()},
                     "corpus": {s: load_corpus(s).summary() for s in a.cal + a.eval}, "threads": a.threads,
                     "torch": torch.__version__, "python": platform.python_version(),
                     "command": "python " + " ".join(sys.argv)}
    refs = {}
    for src, sents in evals.items():
        batches = token_batches(tok, sents, 100, 64)
        refs[src] = (batches, sentence_embeddings(model, batches))
    for metric in a.metrics:
        for v in a.v:
            if (metric, v, a.c) in have:
                continue
            t0 = time.perf_counter()
            lut = lutnb.convert_encoder(model, tok, cal, v=v, c=a.c, metric=metric, progress=True)
            row = {"metric": metric, "v": v, "c": a.c, "bits_per_act": lut.refit_report["bits_per_act"],
                   "convert_seconds": time.perf_counter() - t0,
                   "ridges": {k: s["ridge"] for k, s in lut.refit_report["layers"].items()}}
            for src, (batches, ref) in refs.items():
                row[src] = fidelity(ref, sentence_embeddings(lut, batches, mode="quant"))
            done["rows"].append(row)
            atomic_write_bytes(a.out, json.dumps(done, indent=1).encode())
            print(f"{metric} v={v}: " + "; ".join(f"{s}: mean {row[s]['mean_cos']:.3f} p05 {row[s]['p05_cos']:.3f} "
                  f"recall@10 {row[s]['recall10']:.3f}" for s in refs) + f" ({row['convert_seconds']:.0f} s)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
