"""Benchmark: ResNet-50 at 224x224 (all conv + fc layers) on LUT-DLA (default config) and a 32x32 WS array
(the two designs timed against the <= 5 s goal), plus the DSE's balanced design for reference.

One thread. Prints seconds (untraced run), peak Python memory (tracemalloc, separate run), the
process's max RSS, and the ratio to
SCALE-Sim 3.0.0's 558 s / 12.1 GB for the baseline half on this kind of machine (the issue's figures).
Run: python benchmarks/bench_simulator.py
"""
from __future__ import annotations

import resource
import time
import tracemalloc

import torch

SCALESIM_SECONDS, SCALESIM_GB = 558.0, 12.1


def main() -> dict:
    torch.set_num_threads(1)
    from lutnb.hw import LUTDLAConfig, SystolicConfig, extract_workloads, simulate_dense_network, simulate_network
    from lutnb.zoo.models import resnet50_imagenet

    t0 = time.perf_counter()
    works = extract_workloads(resnet50_imagenet(), (1, 3, 224, 224))
    t1 = time.perf_counter()
    _, lut = simulate_network(works, LUTDLAConfig())
    t2 = time.perf_counter()
    _, ws = simulate_dense_network(works, SystolicConfig(rows=32, cols=32, dataflow="ws"))
    t3 = time.perf_counter()
    from lutnb.codesign.balanced import balanced_design

    bal_cfg = balanced_design("resnet50").sim_config()
    tb = time.perf_counter()
    _, bal = simulate_network(works, bal_cfg)
    bal_s = time.perf_counter() - tb
    tracemalloc.start()  # second, untimed pass: tracemalloc slows Python ~15x, so it is not in the timing
    simulate_network(works, LUTDLAConfig())
    simulate_dense_network(works, SystolicConfig(rows=32, cols=32, dataflow="ws"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    sim_s = t3 - t1
    out = {"layers": len(works), "extract_s": t1 - t0, "lut_s": t2 - t1, "dense_s": t3 - t2,
           "simulate_s": sim_s,
           "total_s": t3 - t0, "peak_traced_gb": peak / 1024 ** 3, "max_rss_gb": rss_gb,
           "lut_cycles": lut["total_cycles"], "ws_cycles": ws["total_cycles"], "balanced_s": bal_s,
           "balanced_cycles": bal["total_cycles"], "balanced_utilization": bal["utilization"]}
    print(f"ResNet-50 224x224, {len(works)} conv+fc layers, torch threads={torch.get_num_threads()}")
    print(f"  workload extraction      {out['extract_s']:.2f} s")
    print(f"  LUT-DLA (default config) {out['lut_s']:.2f} s  total {lut['total_cycles']:,} cycles")
    print(f"  32x32 WS systolic        {out['dense_s']:.4f} s  total {ws['total_cycles']:,} cycles")
    print(f"  LUT-DLA (balanced design) {bal_s:.2f} s  total {bal['total_cycles']:,} cycles, lanes "
          f"{bal['utilization']:.1%} busy, link-bound share {bal['stall_offchip_bw'] / bal['total_cycles']:.1%}")
    print(f"  all simulation {sim_s:.2f} s (with extraction {out['total_s']:.2f} s); goal <= 5 s")
    print(f"  peak traced memory {out['peak_traced_gb'] * 1024:.0f} MiB, max RSS {rss_gb:.2f} GB; "
          "goal <= 1 GB")
    print(f"  vs SCALE-Sim 3.0.0 baseline half ({SCALESIM_SECONDS:.0f} s, {SCALESIM_GB} GB): "
          f"WS half {SCALESIM_SECONDS / max(out['dense_s'], 1e-9):,.0f}x faster; both halves with extraction "
          f"{SCALESIM_SECONDS / out['total_s']:,.0f}x faster; memory {SCALESIM_GB / rss_gb:.0f}x smaller")
    return out


if __name__ == "__main__":
    main()
