"""Validation of the dense cost model against published silicon (Eyeriss, 65 nm; TPU v1, 28 nm).

Predicts each chip with our cited constants and node scaling (lutnb.codesign.silicon) and prints, next to the
published TOPS/W and area, the ratios predicted / published and what the model does not include.
Core accounting (chip power without DRAM), as both papers report. The link rule is off here (the chips'
published throughput is compute-bound and their DRAM traffic is not the im2col-expanded one we count).
Run: python benchmarks/bench_cost_validation.py
"""
from __future__ import annotations

import time


def main() -> dict:
    from lutnb.codesign.silicon import validation_table

    t0 = time.perf_counter()
    t = validation_table()
    wall = time.perf_counter() - t0
    print("Dense cost model vs published silicon (predicted / published; core accounting)")
    for _, r in t.iterrows():
        print(f"  {r['chip']:<22} {r['node_nm']:.0f} nm {r['clock_mhz']:.0f} MHz {r['precision']} {r['array']}")
        print(f"    TOPS/W  published {r['published_tops_per_w']:.3f}  predicted {r['predicted_tops_per_w_core']:.3f}"
              f"  ratio {r['tops_per_w_ratio']:.2f}x   (predicted utilization {r['predicted_utilization']:.2f},"
              f" leakage {100 * r['predicted_leakage_share']:.0f} % of core energy)")
        print(f"    area    published {r['published_area_mm2']:.2f} mm^2  predicted {r['predicted_area_mm2']:.2f} mm^2"
              f"  ratio {r['area_ratio']:.2f}x")
        print(f"    source: {r['source']}; not modelled: {r['not_modelled']}")
    print(f"  ({wall:.2f} s)")
    return {"table": t, "seconds": wall}


if __name__ == "__main__":
    main()
