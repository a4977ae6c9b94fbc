"""Benchmark: a >= 10,000-point design-space sweep over ResNet-18 (analytic engine), against the exact
simulator (lutnb.hw.simulate_network) on a few points in the same run. Threads: torch 1, 2 processes.

    python benchmarks/bench_dse.py [--points 12000] [--jobs 2]
"""
import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=12_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workload", default="resnet18")
    ap.add_argument("--exact", type=int, default=3, help="points run through simulate_network (baseline)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from lutnb.codesign import dse
    from lutnb.codesign.workloads import get_workload
    from lutnb.hw import simulate_network

    wl = get_workload(args.workload)
    pts = dse.random_points(args.points, seed=0)
    dse.accuracy_table()                                   # warm imports
    t0 = time.perf_counter()
    df = dse.run_sweep(pts, wl, n_jobs=args.jobs, cache_dir=False)
    t_sweep = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _, row in pts.head(args.exact).iterrows():
        simulate_network(wl.expanded(), dse.design_from_params(row.to_dict()).sim_config())
    t_exact = (time.perf_counter() - t0) / args.exact
    print(f"workload {wl.name}: {len(wl.expanded())} LUT layers; {len(df)} points, {int(df['feasible'].sum())} "
          f"feasible; {args.jobs} processes, torch threads 1")
    print(f"analytic sweep: {t_sweep:.2f} s, {len(df) / t_sweep:,.0f} points/s")
    print(f"exact simulator (baseline): {t_exact:.2f} s per point, {1 / t_exact:.2f} points/s "
          f"-> {args.points * t_exact / 60:.0f} min for the same sweep")
    print(f"speed-up: {t_exact * len(df) / t_sweep:,.0f}x; target <= 60 s: {'PASS' if t_sweep <= 60 else 'FAIL'}")


if __name__ == "__main__":
    main()
