"""FULL runs of notebook 06 on a CPU: `python tools/run_06_full.py --part vit` / `--part minilm`.

Writes (merging, one row per model/metric/v/seed) data/reference_results/06_transformers_full.json, which
notebook 06 reads when USE_REFERENCE = True. Every row is what `lutnb.experiments.transformers.vit_experiment` or
`minilm_experiment` returned in this run; the file records the command, thread count and versions.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time

import torch

from lutnb.files import data_dir
from lutnb.nb.results import atomic_write_bytes

OUT = data_dir() / "reference_results" / "06_transformers_full.json"


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock on ``path``.lock while the JSON is read, merged and written, so two parts run side
    by side (``--part vit`` and ``--part minilm``) cannot lose each other's rows. No-op where fcntl is
    missing (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    with open(str(path) + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _save(rows: list[dict], meta: dict) -> None:
    key = lambda r: (r["model"], r["metric"], r["v"], r["c"], r.get("seed", 0))  # noqa: E731
    with _locked(OUT):
        old = json.loads(OUT.read_text()) if OUT.exists() else {"rows": [], "runs": []}
        merged = {key(r): r for r in old["rows"]}
        merged.update({key(r): r for r in rows})
        runs = [x for x in old.get("runs", []) if x.get("started") != meta["started"]] + [meta]
        out = {"rows": sorted(merged.values(), key=lambda r: (r["model"], r["metric"], r["v"], r.get("seed", 0))),
               "runs": runs}
        atomic_write_bytes(OUT, (json.dumps(out, indent=1) + "\n").encode())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--part", choices=("vit", "minilm"), required=True)
    ap.add_argument("--metrics", default="l2,l1,chebyshev")
    ap.add_argument("--v", default="2,4")
    ap.add_argument("--seeds", default="0,1,2", help="ViT seeds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=None,
                    help="MiniLM training sentences for block_refit (default: all 3,000)")
    ap.add_argument("--distill-steps", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from lutnb.boosting import embeddings
    from lutnb.experiments import transformers
    from lutnb.zoo import minilm

    meta = {"command": " ".join(["python", "tools/run_06_full.py"] + (argv or sys.argv[1:])),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    if args.part == "vit":
        from lutnb.zoo.train import VIT_RECIPE
        from lutnb.zoo.vit import VIT_DIGITS_DIM

        meta["vit_recipe"] = {"recipe": "regroup+block_refit+distill", "distill": transformers.VIT_DISTILL,
                              "fp32": VIT_RECIPE, "dim": VIT_DIGITS_DIM}
    rows = []
    metrics, vs = args.metrics.split(","), [int(x) for x in args.v.split(",")]
    if args.part == "vit":
        for seed in [int(s) for s in args.seeds.split(",")]:
            for v in vs:
                for metric in metrics:
                    r = transformers.vit_experiment(metric, v, 16, seed)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                    _save(rows, meta)
    else:
        tok, model = minilm.load_minilm()
        ho = minilm.token_batches(tok, minilm.load_sentences("heldout"), 100)
        ref = embeddings.sentence_embeddings(model, ho)
        for v in vs:
            for metric in metrics:
                r = transformers.minilm_experiment(metric, v, 16, n_train=args.n_train,
                                                  distill_steps=args.distill_steps, model=model, tokenizer=tok,
                                                  reference=ref)
                rows.append(r)
                print(json.dumps(r), flush=True)
                _save(rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
