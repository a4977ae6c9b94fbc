"""Benchmark: LUTBoost's default recipe on the held-out architecture zoo (issue 14), v=4, c=16, INT8 tables.

Six architectures (`lutnb.zoo.archs`: plain CNN, residual CNN with a 1x1 shortcut and odd widths, a CNN
whose K is not a multiple of v, an MLP, an MLP-Mixer, a ViT) on digits and on MNIST-1D generated large
(10,000 / 2,000 / 5,000: one test sample = 0.02 pt), three metrics, three seeds. Nothing is tuned per model:
one fp32 recipe, the default LUTBoost schedule (skip="auto": first and last layer float), the fair
single-stage baseline at the same budget. Prints, per (data set, model, metric), the mean over seeds of fp32,
k-means only, single-stage and LUTBoost test accuracy, LUTBoost's drop and wall time, then the issue's
acceptance checks. Resumable: every finished run is appended to the JSON (default results/lutboost_zoo.json)
and skipped when the command is run again.

    python benchmarks/bench_lutboost_zoo.py                                  # the whole zoo (~1.5 h, 1 thread)
    python benchmarks/bench_lutboost_zoo.py --datasets digits --seeds 0 --metrics l2
    python benchmarks/bench_lutboost_zoo.py --report-only                   # table from the JSON so far
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402


def main() -> None:
    from lutnb.experiments import zoo
    from lutnb.files import atomic_write_bytes, results_dir
    from lutnb.zoo.archs import ARCHS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(zoo.ZOO_DATASETS))
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--metrics", default="l2,l1,chebyshev")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="JSON (default results/lutboost_zoo.json)")
    ap.add_argument("--report-only", action="store_true", help="print the table of the records so far")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or results_dir() / "lutboost_zoo.json"
    doc = json.loads(out.read_text()) if out.exists() else {"records": []}
    records = doc["records"]
    done = {(r["dataset"], r["arch"], r["metric"], r["seed"]) for r in records}
    grid = zoo.zoo_grid(args.datasets.split(","), args.archs.split(","), args.metrics.split(","),
                        [int(s) for s in args.seeds.split(",")])

    def save(rec):
        records.append(rec)
        doc.update(records=records, machine=f"{platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} cores, {args.threads} thread(s)", torch=torch.__version__,
                   command="python benchmarks/bench_lutboost_zoo.py " + " ".join(
                       f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                       if k in ("datasets", "archs", "metrics", "seeds", "threads")))
        atomic_write_bytes(out, (json.dumps(doc, indent=1, default=float) + "\n").encode())
        print(f"{rec['dataset']:>13} {rec['arch']:>9} {rec['metric']:>9} seed {rec['seed']}: fp32 "
              f"{rec['fp32_acc']:.2f} k-means {rec['kmeans_acc']:.2f} single {rec['single_stage_acc']:.2f} "
              f"LUTBoost {rec['lutboost_acc']:.2f} ({rec['lutboost_selected']}) "
              f"{rec['lutboost_seconds']:.0f}+{rec['single_stage_seconds']:.0f} s", flush=True)

    if not args.report_only:
        t0 = time.perf_counter()
        zoo.run_zoo(grid, done, save)
        print(f"ran {len([g for g in grid if g not in done])} points in {time.perf_counter() - t0:.0f} s")
    if not records:
        print("no records yet")
        return
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.float_format", "{:.2f}".format):
        print(zoo.zoo_summary(records).to_string(index=False))
        print("\nwhat each stage did (mean change of INT8 test accuracy from the state it started from; share of runs "
              "where it lowered the val score and was rolled back; share where its state was returned):")
        print(zoo.stage_effects(records).to_string(index=False))
    print(json.dumps(zoo.zoo_verdict(records), indent=1))
    print(f"records: {out}")


if __name__ == "__main__":
    main()
