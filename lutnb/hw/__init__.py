"""lutnb.hw: the LUT-DLA accelerator as a cycle-level simulator, with dense systolic baselines.

Public API
----------
LUTDLAConfig, SystolicConfig               frozen, self-validating hardware configs (every field type- and
                                           range-checked; a wrong type raises ConfigTypeError, a TypeError
                                           that is also a ValueError)
GemmWorkload, extract_workloads(model, x)  every Linear/Conv2d as a GEMM M x K x N (im2col)
read_scalesim_topology / write_scalesim_topology   SCALE-Sim topology CSVs (GEMM or conv)
simulate_layer(work, cfg, engine="fast"|"reference") -> record dict
simulate_network(workloads, cfg) -> (DataFrame one row per layer, totals dict); [] -> no rows, zero totals
simulate_dense_layer / simulate_dense_network / systolic_cycles   WS/OS/IS arrays, SCALE-Sim 3.0.0 cycles
lutnb.hw.traffic                           the one traffic model (operands, widths, spill and link rules)
simulate_layer_functional(exported_layer, x, cfg)   bit-exact CCM -> FIFO -> IMM output (cfg must match the
                                           layer's c, v, metric and table_bits; acc_bits follows cfg)
loop_order_traffic, table_swap_timeline   dataflow analyses for notebook 04 (their plots: lutnb.nb.plots)
scalesim_compat.run_scalesim               the cross-check against a real SCALE-Sim 3.0.0 install (optional)

LUT-DLA record fields (one per layer)
-------------------------------------
layer, M, K, N, S, m_tiles, n_tiles
total_cycles = imm_cycles + stall_cycles; stall_cycles = the sum of stall_{cause} over STALL_CAUSES
               (table_load, fill, fifo_empty, offchip_bw, bank_conflict): one timeline, the IMM's
ccm_cycles (CCM issue cycles), ccm_stall_fifo_full (CCM's own timeline: blocked by a full FIFO; not a part),
link_cycles (cycles the off-chip link needs for all the layer's DRAM bytes; total_cycles >= link_cycles)
table_loads, lookups, lookup_adds, distance_ops, utilization (IMM lanes), ccm_utilization, latency_us
per operand op in OPERANDS (indices, tables, activations, outputs, codebooks, psums): {op}_bits (its width),
sram_{op}_words, sram_{op}_bytes, dram_{op}_words, dram_{op}_bytes; sram_bytes, dram_bytes.
Dense records use operands activations, weights, outputs, psums with the same field pattern, and
total_cycles = compute_cycles (SCALE-Sim) + stall_offchip_bw (the same link rule, `lutnb.hw.traffic`).
"""
from .config import DATAFLOWS, METRICS, ConfigTypeError, LUTDLAConfig, SystolicConfig
from .dataflow import loop_order_traffic, table_swap_timeline
from .dense import (
    dense_layer_traffic,
    simulate_dense_layer,
    simulate_dense_network,
    systolic_cycles,
    systolic_sram_accesses,
)
from .functional import simulate_layer_functional
from .lut_sim import ENGINES, OPERANDS, STALL_CAUSES, STALL_FIELDS, TIMING_FIELDS, simulate_layer, simulate_network
from .workloads import (
    GemmWorkload,
    extract_workloads,
    read_scalesim_topology,
    workloads_frame,
    write_scalesim_topology,
)

__all__ = [
    "DATAFLOWS", "ENGINES", "METRICS", "OPERANDS", "STALL_CAUSES", "STALL_FIELDS", "TIMING_FIELDS",
    "dense_layer_traffic",
    "ConfigTypeError", "GemmWorkload", "LUTDLAConfig", "SystolicConfig", "extract_workloads",
    "loop_order_traffic", "read_scalesim_topology", "simulate_dense_layer", "simulate_dense_network",
    "simulate_layer", "simulate_layer_functional", "simulate_network", "systolic_cycles",
    "systolic_sram_accesses", "table_swap_timeline", "workloads_frame", "write_scalesim_topology",
]
