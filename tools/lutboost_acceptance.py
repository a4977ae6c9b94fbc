"""Issue-3 acceptance run: LUTBoost vs single-stage, 3 metrics x seeds, INT8 tables, test split.

    python tools/lutboost_acceptance.py digits_cnn --seeds 0,1,2 [--threads 1]
    python tools/lutboost_acceptance.py mnist1d_cnn --seeds 0,1,2

Writes results/lutboost_acceptance_<model>.json after every run (so a killed run keeps what finished) and
prints mean +- std per (method, metric) with the drop against fp32.
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["digits_cnn", "mnist1d_cnn"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--metrics", default="l2,l1,chebyshev")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from lutnb.experiments.compare import compare, summarize
    from lutnb.files import results_dir
    from lutnb.nb.results import write_results

    out = results_dir() / f"lutboost_acceptance_{args.model}.json"
    records: list[dict] = []

    def save(rec):
        records.append(rec)
        print(f"{rec['method']:>12} {rec['metric']:>9} seed {rec['seed']}: fp32 {rec['fp32_acc']:.2f} "
              f"LUT {rec['lut_acc']:.2f} ({rec['seconds']:.0f} s, {rec['epochs']} epochs)", flush=True)
        write_results(out.stem, {"model": args.model, "records": records})

    t0 = time.perf_counter()
    compare(args.model, metrics=tuple(args.metrics.split(",")), seeds=tuple(int(s) for s in args.seeds.split(",")),
            track_test=True, on_record=save)
    print(summarize(records))
    print(f"total {time.perf_counter() - t0:.0f} s; records in {out}")
    json.loads(out.read_text())


if __name__ == "__main__":
    main()
