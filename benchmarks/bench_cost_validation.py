"""Validation of the dense cost model against published silicon (Eyeriss, 65 nm; TPU v1, 28 nm).

Predicts each chip with our cited constants and node scaling (lutnb.codesign.silicon) and prints, next to the
published TOPS/W and area, the ratios predicted / published and what the model does not include.
Core accounting (chip power without DRAM), as both papers report. The link rule is off here (the chips'
published throughput is compute-bound and their DRAM traffic is not the im2col-expanded one we count).
Then the efficiency table of the DSE's balanced design against INT8, INT4 and FP16 arrays, at equal area and
at equal throughput, in both accountings (core and system), on ResNet-18 (224x224) and BERT-base (seq 128).
Run: python benchmarks/bench_cost_validation.py [--no-table]
"""
from __future__ import annotations

import sys
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
    out = {"table": t, "seconds": wall}
    if "--no-table" not in sys.argv:
        out["efficiency"] = efficiency()
    return out


def efficiency() -> dict:
    """The balanced design (exact simulator) against matched dense arrays, core and system accountings."""
    from lutnb.codesign import balanced, dse
    from lutnb.codesign.workloads import get_workload

    tables = {}
    for name in ("resnet18", "bert_base"):
        wl = get_workload(name)
        s, _ = dse.evaluate_design(balanced.balanced_design(wl), wl, engine="simulate")
        cmp = dse.compare_with_baselines({"balanced": s}, wl)
        tables[name] = cmp
        print(f"\nBalanced design on {name}: {s['tops']:.3f} TOPS, {s['area_mm2']:.2f} mm^2, lanes "
              f"{s['utilization']:.0%} busy, TOPS/W core {s['tops_per_w_core']:.2f} / system {s['tops_per_w']:.3f}")
        print(f"  {'baseline':<9}{'matched':<18}{'array':<9}{'power core':>11}{'power system':>14}{'area eff':>10}")
        for r in cmp.sort_values(["matched_by", "baseline"]).itertuples():
            print(f"  {r.baseline.upper():<9}{'equal ' + r.matched_by:<18}{r.baseline_array:<9}"
                  f"{r.power_eff_ratio_core:>10.2f}x{r.power_eff_ratio_system:>13.2f}x{r.area_eff_ratio:>9.2f}x")
    return tables


if __name__ == "__main__":
    main()
