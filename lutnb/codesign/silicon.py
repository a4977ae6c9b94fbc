"""Check the dense cost model against published silicon: predict two real accelerators with our constants and
node scaling, and compare with their published efficiency and area.

Published numbers (cited; none is tuned against, none is from the LUT-DLA paper):

Eyeriss: Y.-H. Chen, T. Krishna, J. Emer, V. Sze, "Eyeriss: An Energy-Efficient Reconfigurable Accelerator for
  Deep Convolutional Neural Networks", ISSCC 2016 (14.5) and IEEE JSSC 52(1), 2017. 65 nm CMOS, 168 PEs
  (12 x 14), 16-bit fixed point, 108 KB global buffer plus per-PE scratchpads (224 + 12 + 24 16-bit words),
  core 3.5 mm x 3.5 mm = 12.25 mm^2 (die 4.0 mm x 4.0 mm), 200 MHz; AlexNet CONV layers (666 M MACs per
  image) at 34.7 frames/s and 278 mW (batch 4): 2 * 666e6 * 34.7 / 0.278 W = 0.166 TOPS/W.
TPU v1: N. P. Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA 2017.
  28 nm, 700 MHz, 256 x 256 8-bit MACs (65,536), 92 TOPS peak, 24 MiB unified buffer + 4 MiB accumulators,
  die < 331 mm^2, busy power 40 W (TDP 75 W): at most 92 / 40 = 2.3 TOPS/W (peak ops over busy power).

Both published powers are chip power without DRAM, so they are compared with our **core** accounting.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..hw import GemmWorkload, SystolicConfig
from . import cost
from .workloads import merge_repeats


@dataclass(frozen=True)
class PublishedChip:
    name: str
    source: str
    node_nm: float
    clock_mhz: float
    array: SystolicConfig
    precision: str
    published_tops_per_w: float
    published_area_mm2: float
    workload: tuple            # GEMMs (M, K, N) the published figure was measured on
    note: str


def _alexnet_conv(batch: int = 4) -> tuple:
    """AlexNet's five CONV layers as GEMMs (grouped layers as two GEMMs each), 666 M MACs per image."""
    px = {1: 55 * 55, 2: 27 * 27, 3: 13 * 13, 4: 13 * 13, 5: 13 * 13}
    shapes = [(1, 3 * 11 * 11, 96, 1), (2, 48 * 25, 128, 2), (3, 256 * 9, 384, 1), (4, 192 * 9, 192, 2),
              (5, 192 * 9, 128, 2)]
    return tuple((batch * px[i], K, N, groups) for i, K, N, groups in shapes)


CHIPS = (
    PublishedChip(
        "Eyeriss (ISSCC 2016)", "Chen et al., ISSCC 2016 / JSSC 2017", 65, 200,
        SystolicConfig(rows=12, cols=14, dataflow="ws", ifmap_sram_kb=36, filter_sram_kb=36, ofmap_sram_kb=36,
                       word_bytes=2, offchip_bytes_per_cycle=1e6),
        "int16", 2 * 666e6 * 34.7 / 0.278 / 1e12, 12.25, _alexnet_conv(4),
        "row-stationary dataflow and per-PE scratchpads (our array is weight-stationary with the 108 KB global "
        "buffer split into three SRAMs), NoC, control, clock tree, zero gating, its 1.0 V supply"),
    PublishedChip(
        "TPU v1 (ISCA 2017)", "Jouppi et al., ISCA 2017", 28, 700,
        SystolicConfig(rows=256, cols=256, dataflow="ws", ifmap_sram_kb=24 * 1024, filter_sram_kb=256,
                       ofmap_sram_kb=4 * 1024, offchip_bytes_per_cycle=1e6),
        "int8", 92 / 40, 331.0, ((4096, 4096, 4096, 1),),
        "DDR3 interface, PCIe, activation pipeline, control; the published TOPS/W is peak ops over busy power "
        "(an upper bound) and the die area an upper bound (< 331 mm^2)"),
)


def _workload(chip: PublishedChip):
    works = [GemmWorkload(f"l{i}", M=M, K=K, N=N) for i, (M, K, N, g) in enumerate(chip.workload) for _ in range(g)]
    return merge_repeats(chip.name, works)


def predict(chip: PublishedChip) -> dict:
    """Our model's core TOPS/W and area of the chip (its array, SRAMs, precision, node and clock)."""
    tech = cost.Tech(node_nm=chip.node_nm)
    wl = _workload(chip)
    cfg = chip.array.replace(clock_mhz=chip.clock_mhz)
    tot: dict = {}
    for w, rep in zip(wl.layers, wl.repeats):
        for k, val in cost.dense_traffic(w.M, w.K, w.N, cfg, chip.precision).items():
            tot[k] = tot.get(k, 0) + val * rep
    energy = cost.dense_energy(cfg, chip.precision, tot, tech)
    area = cost.dense_area(cfg, chip.precision, tech)
    s = cost.summarize(energy, area, tot["total_cycles"], chip.clock_mhz, wl.ops, tech)
    return {"tops_per_w_core": s["tops_per_w_core"], "area_mm2": s["area_mm2"], "tops": s["tops"],
            "utilization": tot["macs"] / (tot["total_cycles"] * cfg.rows * cfg.cols),
            "leakage_share": s["leakage_pj"] / s["energy_core_pj"]}


def validation_table() -> pd.DataFrame:
    """One row per published chip: published vs predicted TOPS/W (core) and area, and the ratios."""
    rows = []
    for chip in CHIPS:
        p = predict(chip)
        rows.append({"chip": chip.name, "node_nm": chip.node_nm, "clock_mhz": chip.clock_mhz,
                     "precision": chip.precision, "array": f"{chip.array.rows}x{chip.array.cols}",
                     "published_tops_per_w": chip.published_tops_per_w,
                     "predicted_tops_per_w_core": p["tops_per_w_core"],
                     "tops_per_w_ratio": p["tops_per_w_core"] / chip.published_tops_per_w,
                     "published_area_mm2": chip.published_area_mm2, "predicted_area_mm2": p["area_mm2"],
                     "area_ratio": p["area_mm2"] / chip.published_area_mm2,
                     "predicted_utilization": p["utilization"], "predicted_leakage_share": p["leakage_share"],
                     "source": chip.source, "not_modelled": chip.note})
    return pd.DataFrame(rows)
