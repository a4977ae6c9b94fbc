"""One traffic model for LUT-DLA and the dense baselines: every operand, its width, on chip and off chip.

Used by the simulator (`lut_sim`, `dense`), the closed-form sweep model (`lutnb.codesign.analytic`) and the
cost model, so the two sides of a comparison can never count different terms. Functions work on Python
integers and on numpy integer arrays alike (the sweeps pass arrays of design points).

Operands (words; each with its width in bits)
  LUT-DLA: indices, tables, activations, codebooks, outputs, psums
  dense:   activations, weights, outputs, psums

The accumulation rule, the same for both sides (`accumulation`) [ours]:
  a layer's reduction (dense: over K, in `ceil(K / rows)` folds of the array; LUT-DLA: over the S sub-spaces,
  in `ceil(S / adder_fanin)` accumulator updates) writes every partial sum once per fold and reads it back
  once per fold after the first. `psums` (accumulator width): on chip, folds * M * N writes (dense: SCALE-Sim's
  OFMAP write count) plus (folds - 1) * M * N reads; off chip nothing, unless the partial sums resident
  during the reduction (the reduction-inner output tile) do not fit the output/accumulator buffer: then every
  fold after the first spills, (folds - 1) * M * N written out and read back. `outputs`: the final results,
  requantized to the activation width for the next layer, written off chip once (M * N).
The link rule, the same for both sides (`link_bound`): a layer takes at least `ceil(off-chip bytes / bytes
per cycle)` cycles; if its compute timeline is shorter, the difference is an off-chip-bandwidth stall.
"""
from __future__ import annotations

import numpy as np

LUT_OPERANDS = ("indices", "tables", "activations", "outputs", "codebooks", "psums")
DENSE_OPERANDS = ("activations", "weights", "outputs", "psums")


def cdiv(a, b):
    """Ceiling division, for ints and integer numpy arrays."""
    return -(-a // b)


def accumulation(M, N, folds, tile_words, capacity_words=None, writes=None) -> dict:
    """Partial-sum and output words of a reduction done in `folds` accumulator updates (see module doc).

    `tile_words`: partial sums resident during the reduction; `capacity_words`: what the output buffer holds
    (None: the tile always fits, as in LUT-DLA where the accumulator buffer sets the row tile); `writes`: the
    on-chip partial-sum write count if the caller counts it differently (SCALE-Sim's OS count)."""
    back = (folds - 1) * M * N
    spill = 0 * back if capacity_words is None else np.where(tile_words > capacity_words, back, 0)
    writes = folds * M * N if writes is None else writes
    return {"sram_psums": writes + back, "dram_psums": 2 * spill, "sram_outputs": 0 * back, "dram_outputs": M * N}


def link_cycles(nbytes, bytes_per_cycle):
    """Cycles the off-chip link needs for `nbytes` (0 bytes: 0 cycles)."""
    return np.ceil(np.asarray(nbytes, dtype=float) / bytes_per_cycle).astype(np.int64)


def link_bound(timeline, link) -> tuple:
    """(total cycles, off-chip stall cycles): the layer lasts as long as the slower of compute and link."""
    total = np.maximum(timeline, link)
    return total, total - timeline


def lut_traffic(M, K, N, v, c, m_tiles, n_tiles, adder_fanin, bits: dict) -> dict:
    """{operand: (bits, sram words, dram words)} of one LUT-DLA layer in LS order.

    `bits`: widths of index, table, activation and accumulator words ("index", "table", "activation", "acc").
    Indices: CCM writes M*S into the FIFO, the IMM reads them; with several column tiles they are also written
    to the index buffer and re-read for every later tile (index reuse). Tables: loaded once per row tile
    (written into the ping-pong buffer) and read once per look-up. Activations and codebooks: read from DRAM
    once (codebooks once per row tile) and once on chip.
    """
    S = cdiv(K, v)
    acc = accumulation(M, N, cdiv(S, adder_fanin), 0)
    table_load = m_tiles * S * c * N
    return {
        "indices": (bits["index"], M * S + np.where(n_tiles > 1, M * S, 0) + M * S * (n_tiles - 1), 0 * M),
        "tables": (bits["table"], table_load + M * S * N, table_load),
        "activations": (bits["activation"], M * K, M * K),
        "codebooks": (bits["activation"], m_tiles * S * c * v, m_tiles * S * c * v),
        "outputs": (bits["activation"], acc["sram_outputs"], acc["dram_outputs"]),
        "psums": (bits["acc"], acc["sram_psums"], acc["dram_psums"]),
    }


def dense_reduction(K, rows, dataflow: str):
    """Accumulator folds of a dense layer: ws/is reduce K over ceil(K / rows) array folds; os keeps partial
    sums in the PEs (one fold)."""
    if dataflow == "os":
        return 1 + 0 * K
    return cdiv(K, rows)


def dense_traffic(M, K, N, rows, cols, dataflow: str, bits: int, acc_bits: int, sram: dict,
                  ofmap_capacity_words, m_tiles=1, row_tile=None) -> dict:
    """{operand: (bits, sram words, dram words)} of one dense layer.

    `sram`: SCALE-Sim's read counts for activations and weights and its OFMAP write count ("outputs", the
    partial-sum writes; its OS count adds R + C per fold); psums/outputs follow `accumulation` (ws/is: the
    reduction-inner tile is row_tile (default M) x cols partial sums, is: cols x N); weights are fetched once
    per row tile (`m_tiles`), as LUT-DLA's tables are."""
    folds = dense_reduction(K, rows, dataflow)
    Tm = M if row_tile is None else row_tile
    tile = Tm * np.minimum(cols, N) if dataflow != "is" else np.minimum(M, cols) * N
    acc = accumulation(M, N, folds, tile, ofmap_capacity_words, writes=sram["outputs"])
    return {
        "activations": (bits, sram["activations"], M * K),
        "weights": (bits, sram["weights"], m_tiles * K * N),
        "outputs": (bits, acc["sram_outputs"], acc["dram_outputs"]),
        "psums": (acc_bits, acc["sram_psums"], acc["dram_psums"]),
    }


def nbytes(words, bits):
    """Bytes of `words` words of `bits` bits (rounded up)."""
    return np.ceil(np.asarray(words) * np.asarray(bits) / 8).astype(np.int64)
