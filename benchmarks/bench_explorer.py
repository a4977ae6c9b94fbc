"""Benchmark: time per change of the interactive explorer (notebook 07), through its widgets, against
`dse.explore_point` (which matches the baseline by evaluating all 127 candidate arrays) on the same changes
in the same run. Goal: every change under 100 ms.

    python benchmarks/bench_explorer.py [--reference 6]
"""
import argparse
import statistics
import time

# a change of each kind, including first visits of a workload, a baseline and a clock (cold caches)
CHANGES = [("v", 2), ("c", 64), ("lanes", 64), ("table_bits", 4), ("workload", "resnet18"), ("v", 4),
           ("baseline", "fp16"), ("clock_mhz", 800), ("workload", "bert_base"), ("ccus", 64), ("c", 16),
           ("baseline", "int4"), ("workload", "minilm"), ("table_tile", 256), ("buffer_kb", 8),
           ("workload", "digits_cnn"), ("v", 9), ("c", 4), ("v", 4), ("c", 16)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=int, default=6, help="changes also timed with dse.explore_point")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from lutnb.codesign import dse
    from lutnb.codesign.explorer import Explorer

    t0 = time.perf_counter()
    ex = Explorer()
    t_open = time.perf_counter() - t0
    fast, slow = [], []
    for i, (name, value) in enumerate(CHANGES):
        t0 = time.perf_counter()
        ex.controls[name].value = value
        fast.append(time.perf_counter() - t0)
        if i < args.reference:
            t0 = time.perf_counter()
            ref = dse.explore_point(**ex.values())
            slow.append(time.perf_counter() - t0)
            assert ref == ex.result, (name, value)
    ms = [t * 1e3 for t in fast]
    print(f"explorer opened in {t_open:.1f} s (caches filled; includes the accuracy table, which measures the "
          f"proxy when results/ has no accuracy records); {len(ms)} changes through the widgets:")
    for (name, value), t in zip(CHANGES, ms):
        print(f"  {name} = {value!r:<12} {t:7.1f} ms")
    ref_ms = statistics.median(slow) * 1e3
    print(f"time per change: median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms (goal < 100 ms: "
          f"{'PASS' if max(ms) < 100 else 'FAIL'})")
    print(f"baseline dse.explore_point on the first {len(slow)} changes: median {ref_ms:.0f} ms per change; "
          f"speed-up {ref_ms / statistics.median(ms[:len(slow)]):.0f}x")


if __name__ == "__main__":
    main()
