"""Cycle-level LUT-DLA simulator: a per-cycle reference and a fast event-level engine, one record type.

The model ([ours], see docs/paper.md and notebook 04): a layer is a GEMM M x K x N, S = ceil(K / v)
sub-spaces, combined g = adder_fanin at a time. LUT-Stationary order: for each row tile (m_tile rows, None =
all M), for each column tile of `table_tile` (Tn) outputs, for each group of g sub-spaces: the DMA loads the
g c x Tn table tiles (ceil(bytes / bandwidth) cycles, into one of two ping-pong buffers when double
buffering is on), then the IMM streams the group's rows x g indices through them, `lanes` (P) look-ups per
cycle. Indices come from the CCM through the index FIFO for the first column tile (the CCM's `ccus` (L)
units encode L sub-vectors per cycle, results visible `c` cycles later, credit-based flow control against
the FIFO depth) and from the index buffer for the others (index reuse). A look-up group whose indices hit
one table-buffer bank at different rows serialises: max_bank(distinct rows) - 1 extra cycles.

One timeline, the IMM's: every cycle of `total_cycles` is exactly one of busy (`imm_cycles`, issuing a
group) or one named stall cause (`STALL_CAUSES`): table_load (exposed load: no double buffering, or the
layer's first tile), fill (waiting for the CCM's first results), fifo_empty, offchip_bw (double buffered but
the next tile is not in yet, or the link: see below), bank_conflict. So
    total_cycles = imm_cycles + stall_cycles,  stall_cycles = sum of the STALL_CAUSES fields.
The link ([ours], `lutnb.hw.traffic.link_bound`, the same rule as the dense baselines): activations,
codebooks, outputs and partial-sum spills share the off-chip link with the table loads; they are assumed
prefetched / drained in the link's idle time, so a layer lasts at least ceil(all off-chip bytes / bandwidth)
cycles (`link_cycles`) and any excess over the IMM timeline is added to stall_offchip_bw.
`ccm_stall_fifo_full` (cycles the CCM had a group ready but no FIFO credit) is on the CCM's timeline, overlaps
IMM time and is not a part of total_cycles; it is 0 when fifo_depth >= cfg.min_unthrottled_fifo_depth.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .config import LUTDLAConfig
from .traffic import LUT_OPERANDS, link_bound, link_cycles, lut_traffic, nbytes
from .workloads import GemmWorkload

OPERANDS = LUT_OPERANDS
STALL_CAUSES = ("table_load", "fill", "fifo_empty", "offchip_bw", "bank_conflict")   # parts of total - busy
STALL_FIELDS = tuple(f"stall_{c}" for c in STALL_CAUSES)
TIMING_FIELDS = ("total_cycles", "ccm_cycles", "imm_cycles", *STALL_FIELDS, "ccm_stall_fifo_full")
ENGINES = ("fast", "reference")
RECORD_FIELDS = ("layer", "M", "K", "N", "S", "m_tiles", "n_tiles", *TIMING_FIELDS, "stall_cycles", "link_cycles",
                 "table_loads",
                 "lookups", "lookup_adds", "distance_ops", "utilization", "ccm_utilization", "latency_us",
                 *(f"{pre}{op}_{post}" for op in OPERANDS
                   for pre, post in (("", "bits"), ("sram_", "words"), ("sram_", "bytes"), ("dram_", "words"),
                                     ("dram_", "bytes"))),
                 "sram_bytes", "dram_bytes")


def _check_inputs(cfg, engine: str, seed) -> LUTDLAConfig:
    cfg = LUTDLAConfig() if cfg is None else cfg
    if not isinstance(cfg, LUTDLAConfig):
        raise TypeError(f"cfg={cfg!r}: must be a LUTDLAConfig (or None for the defaults)")
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: use one of {ENGINES}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r}: must be an integer")
    return cfg


def _check_work(work) -> None:
    if not isinstance(work, GemmWorkload):
        raise TypeError(f"workload {work!r}: must be a GemmWorkload (see lutnb.hw.extract_workloads), "
                        f"not {type(work).__name__}")


@dataclass
class _Phase:
    mt: int
    nt: int
    s: int
    rows: int
    load: int


@dataclass
class _Plan:
    """What both engines need: the LS phase sequence, group sizes and bank-conflict extras."""

    phases: list
    m_tiles: int
    n_tiles: int
    S: int
    prod_sizes: list          # CCM groups in FIFO order
    extras: dict              # (mt, s) -> np.ndarray of extra cycles per IMM group (or None: all zero)
    group_sizes: dict         # rows -> list of IMM group sizes


def _group_sizes(rows: int, width: int) -> list:
    full, rem = divmod(rows, width)
    return [width] * full + ([rem] if rem else [])


def _bank_extras(idx: np.ndarray, cfg: LUTDLAConfig, c: int | None = None) -> np.ndarray:
    """Extra cycles per IMM group of P consecutive indices: max_bank(distinct rows) - 1 (`c` table rows in all:
    g sub-spaces' tables side by side when adder_fanin > 1)."""
    P, c, B = cfg.lanes, (cfg.c if c is None else c), cfg.sram_banks
    ng = math.ceil(len(idx) / P)
    present = np.zeros((ng, c), dtype=bool)
    present[np.arange(len(idx)) // P, idx] = True
    bank_of = np.zeros((c, B), dtype=np.int64)
    bank_of[np.arange(c), np.arange(c) % B] = 1
    return (present.astype(np.int64) @ bank_of).max(axis=1) - 1


def layer_indices(work: GemmWorkload, cfg: LUTDLAConfig, seed: int = 0) -> np.ndarray:
    """Synthetic indices (M, S), uniform over the c centroids, for timing without data."""
    S = math.ceil(work.K / cfg.v)
    return np.random.default_rng(seed).integers(0, cfg.c, size=(work.M, S))


def plan_layer(work: GemmWorkload, cfg: LUTDLAConfig, indices: np.ndarray | None, seed: int) -> _Plan:
    M, N = work.M, work.N
    S = math.ceil(work.K / cfg.v)
    Tm = M if cfg.m_tile is None else min(cfg.m_tile, M)
    m_tiles, n_tiles = math.ceil(M / Tm), math.ceil(N / cfg.table_tile)
    phases, prod_sizes, extras, group_sizes = [], [], {}, {}
    need_idx = cfg.sram_banks < cfg.c
    if need_idx and indices is None:
        indices = layer_indices(work, cfg, seed)
    if indices is not None:
        indices = np.asarray(indices)
        if indices.shape != (M, S):
            raise ValueError(f"indices shape {indices.shape}: expected (M, S) = ({M}, {S})")
        if indices.dtype.kind not in "iu":
            raise TypeError(f"indices dtype {indices.dtype}: must be integer centroid indices in [0, c={cfg.c})")
        if indices.size and (indices.min() < 0 or indices.max() >= cfg.c):
            raise ValueError(f"indices span [{indices.min()}, {indices.max()}]: centroid indices must lie in "
                             f"[0, c={cfg.c}) for layer {work.name!r}")
    g = cfg.adder_fanin
    n_groups = math.ceil(S / g)
    for mt in range(m_tiles):
        rows = min(Tm, M - mt * Tm)
        r0 = mt * Tm
        for sg in range(n_groups):
            gs = min(g, S - sg * g)
            items = rows * gs
            group_sizes.setdefault(items, _group_sizes(items, cfg.lanes))
            prod_sizes.extend(_group_sizes(items, cfg.ccus))
            if need_idx:
                block = indices[r0: r0 + rows, sg * g: sg * g + gs] + cfg.c * np.arange(gs)[None, :]
                extras[(mt, sg)] = _bank_extras(block.reshape(-1), cfg, cfg.c * gs)
            else:
                extras[(mt, sg)] = None
        for nt in range(n_tiles):
            width = min(cfg.table_tile, N - nt * cfg.table_tile)
            tile_bytes = math.ceil(cfg.c * width * cfg.table_bits / 8)
            for sg in range(n_groups):
                gs = min(g, S - sg * g)
                load = max(1, math.ceil(gs * tile_bytes / cfg.offchip_bytes_per_cycle))
                phases.append(_Phase(mt, nt, sg, rows * gs, load))
    return _Plan(phases, m_tiles, n_tiles, S, prod_sizes, extras, group_sizes)


def _simulate_reference(plan: _Plan, cfg: LUTDLAConfig) -> dict:
    """Step the DMA, CCM and IMM one cycle at a time (slow; small layers only)."""
    ph, K, nb = plan.phases, len(plan.phases), 2 if cfg.double_buffer else 1
    D, c, G = cfg.fifo_depth, cfg.c, len(plan.prod_sizes)
    ready, release = [None] * K, [None] * K
    cnt = dict.fromkeys(TIMING_FIELDS, 0)
    dma_next, dma_tile, dma_done = 0, None, 0
    g = issued = popped = visible = 0
    inflight: deque = deque()
    seen_first = False
    k = h = busy_until = t = 0
    while k < K or t < busy_until:
        if dma_tile is not None and dma_done == t:                       # DMA: finish, then start next
            ready[dma_tile], dma_tile = t, None
        if dma_tile is None and dma_next < K and (dma_next < nb or (release[dma_next - nb] is not None
                                                                   and release[dma_next - nb] <= t)):
            dma_tile, dma_done, dma_next = dma_next, t + ph[dma_next].load, dma_next + 1
        while inflight and inflight[0][0] == t:                           # CCM results reach the FIFO
            visible += inflight.popleft()[1]
            seen_first = True
        if g < G:                                                         # CCM issues one group
            if issued - popped + plan.prod_sizes[g] <= D:
                inflight.append((t + c, plan.prod_sizes[g]))
                issued += plan.prod_sizes[g]
                g += 1
                cnt["ccm_cycles"] += 1
            else:
                cnt["ccm_stall_fifo_full"] += 1
        if busy_until > t:                                                # IMM
            cnt["stall_bank_conflict"] += 1
        elif k < K:
            p = ph[k]
            sizes = plan.group_sizes[p.rows]
            size = sizes[h]
            table_ok = ready[k] is not None and ready[k] <= t
            if table_ok and (p.nt > 0 or visible >= size):
                if p.nt == 0:
                    visible -= size
                    popped += size
                ex = plan.extras[(p.mt, p.s)]
                extra = 0 if ex is None else int(ex[h])
                cnt["imm_cycles"] += 1
                busy_until = t + 1 + extra
                h += 1
                if h == len(sizes):
                    release[k], k, h = busy_until, k + 1, 0
            elif not table_ok:
                cnt["stall_table_load" if (not cfg.double_buffer or k == 0) else "stall_offchip_bw"] += 1
            elif not seen_first:
                cnt["stall_fill"] += 1
            else:
                cnt["stall_fifo_empty"] += 1
        t += 1
    cnt["total_cycles"] = t
    return cnt


class _Producer:
    """The CCM's issue times, computed lazily in FIFO order from the IMM's pop times (credit flow)."""

    def __init__(self, sizes: list, depth: int, latency: int):
        self.sizes, self.D, self.c = sizes, depth, latency
        self.g, self.end, self.I = 0, 0, -1
        self.V = self.V0 = None
        self.fifo_full = 0
        self.pop_end: list = []   # item end (exclusive) of each popped IMM group
        self.pop_t: list = []     # its pop cycle
        self.ptr = 0

    def advance_past(self, item: int) -> int:
        """Issue CCM groups until `item` is produced; return the cycle it becomes visible."""
        while self.end <= item:
            e = self.end + self.sizes[self.g]
            lb = self.I + 1
            x = e - self.D - 1
            if x >= 0:
                while self.pop_end[self.ptr] <= x:
                    self.ptr += 1
                lb = max(lb, self.pop_t[self.ptr] + 1)
            self.fifo_full += lb - (self.I + 1)
            self.I, self.end, self.g = lb, e, self.g + 1
            self.V = lb + self.c
            if self.V0 is None:
                self.V0 = self.V
        return self.V


def simulate_plan(plan: _Plan, cfg: LUTDLAConfig, trace: list | None = None) -> dict:
    """Event-level engine: group-level max-plus recursion for the CCM-fed tiles, closed form for the rest.

    `trace`, if a list, receives one dict per table tile: DMA start/ready and IMM start/end cycles.
    """
    ph, K, nb = plan.phases, len(plan.phases), 2 if cfg.double_buffer else 1
    cnt = dict.fromkeys(TIMING_FIELDS, 0)
    prod = _Producer(plan.prod_sizes, cfg.fifo_depth, cfg.c)
    ready, release = [0] * K, [0] * K
    free_at = consumed = 0
    table_key = "stall_table_load"
    ex_sums = {key: (0 if ex is None else int(ex.sum())) for key, ex in plan.extras.items()}
    for k, p in enumerate(ph):
        start = max(ready[k - 1] if k else 0, release[k - nb] if k >= nb else 0)
        ready[k] = rk = start + p.load
        table_key = "stall_table_load" if (not cfg.double_buffer or k == 0) else "stall_offchip_bw"
        sizes = plan.group_sizes[p.rows]
        ex = plan.extras[(p.mt, p.s)]
        if p.nt > 0:                                     # indices from the index buffer: closed form
            c0 = max(free_at, rk)
            cnt[table_key] += c0 - free_at
            cnt["imm_cycles"] += len(sizes)
            cnt["stall_bank_conflict"] += ex_sums[(p.mt, p.s)]
            free_at = c0 + len(sizes) + ex_sums[(p.mt, p.s)]
            release[k] = free_at
            if trace is not None:
                trace.append({"tile": k, "mt": p.mt, "nt": p.nt, "s": p.s, "dma_start": start, "dma_end": rk,
                              "imm_start": c0, "imm_end": free_at})
            continue
        for h, size in enumerate(sizes):                 # indices through the FIFO: group by group
            consumed += size
            v_need = prod.advance_past(consumed - 1)
            a = free_at
            s0 = max(a, rk) if h == 0 else a
            T = max(s0, v_need)
            if h == 0:
                cnt[table_key] += s0 - a
                imm_start = T
            fill = max(0, min(prod.V0, T) - s0)
            cnt["stall_fill"] += fill
            cnt["stall_fifo_empty"] += T - s0 - fill
            prod.pop_end.append(consumed)
            prod.pop_t.append(T)
            extra = 0 if ex is None else int(ex[h])
            cnt["imm_cycles"] += 1
            cnt["stall_bank_conflict"] += extra
            free_at = T + 1 + extra
        release[k] = free_at
        if trace is not None:
            trace.append({"tile": k, "mt": p.mt, "nt": p.nt, "s": p.s, "dma_start": start, "dma_end": rk,
                          "imm_start": imm_start, "imm_end": free_at})
    cnt["ccm_cycles"] = len(plan.prod_sizes)
    cnt["ccm_stall_fifo_full"] = prod.fifo_full
    cnt["total_cycles"] = free_at
    return cnt


def _accesses(work: GemmWorkload, cfg: LUTDLAConfig, plan: _Plan) -> dict:
    """{operand: (bits, sram words, dram words)} from the shared traffic model (`lutnb.hw.traffic`)."""
    bits = {"index": cfg.index_bits, "table": cfg.table_bits, "activation": cfg.activation_bits, "acc": cfg.acc_bits}
    t = lut_traffic(work.M, work.K, work.N, cfg.v, cfg.c, plan.m_tiles, plan.n_tiles, cfg.adder_fanin, bits)
    return {op: tuple(int(x) for x in val) for op, val in t.items()}


def simulate_layer(work: GemmWorkload, cfg: LUTDLAConfig | None = None, engine: str = "fast",
                   indices: np.ndarray | None = None, seed: int = 0) -> dict:
    """Simulate one layer on LUT-DLA; return its record (a flat dict, see `lutnb.hw` for the fields).

    `indices` (M, S) are only needed when `cfg.sram_banks < cfg.c` (bank conflicts depend on the data);
    without them uniform random indices drawn from `seed` are used.
    """
    cfg = _check_inputs(cfg, engine, seed)
    _check_work(work)
    plan = plan_layer(work, cfg, indices, seed)
    timing = (simulate_plan if engine == "fast" else _simulate_reference)(plan, cfg)
    rec = {"layer": work.name, "M": work.M, "K": work.K, "N": work.N, "S": plan.S,
           "m_tiles": plan.m_tiles, "n_tiles": plan.n_tiles, **timing}
    for op, (bits, sram, dram) in _accesses(work, cfg, plan).items():
        rec[f"{op}_bits"] = bits
        rec[f"sram_{op}_words"] = sram
        rec[f"sram_{op}_bytes"] = int(nbytes(sram, bits))
        rec[f"dram_{op}_words"] = dram
        rec[f"dram_{op}_bytes"] = int(nbytes(dram, bits))
    dram_bytes = sum(rec[f"dram_{op}_bytes"] for op in OPERANDS)
    rec["link_cycles"] = link = int(link_cycles(dram_bytes, cfg.offchip_bytes_per_cycle))
    total, extra = (int(x) for x in link_bound(timing["total_cycles"], link))
    rec["total_cycles"] = total
    rec["stall_offchip_bw"] += extra
    rec["stall_cycles"] = sum(rec[f] for f in STALL_FIELDS)
    rec["table_loads"] = plan.m_tiles * plan.n_tiles * plan.S
    rec["lookups"] = work.M * plan.S * plan.n_tiles
    rec["lookup_adds"] = work.M * plan.S * work.N
    rec["distance_ops"] = work.M * plan.S * cfg.c * cfg.v
    rec["utilization"] = rec["lookups"] / (cfg.lanes * total)
    rec["ccm_utilization"] = work.M * plan.S / (cfg.ccus * total)
    rec["latency_us"] = total / cfg.clock_mhz
    rec["sram_bytes"] = sum(rec[f"sram_{op}_bytes"] for op in OPERANDS)
    rec["dram_bytes"] = dram_bytes
    return {k: rec[k] for k in RECORD_FIELDS}


def simulate_network(workloads: list[GemmWorkload], cfg: LUTDLAConfig | None = None, engine: str = "fast",
                     seed: int = 0):
    """Every layer: (pandas DataFrame, one row per layer; totals dict summed over layers).

    An empty list is a valid, empty network: a DataFrame with no rows (the record columns) and totals of
    zero (utilization 0.0, latency 0.0), so a workload whose layers all stay dense simulates to nothing.
    """
    import pandas as pd

    cfg = _check_inputs(cfg, engine, seed)
    if isinstance(workloads, GemmWorkload) or isinstance(workloads, (str, bytes)) or \
            not hasattr(workloads, "__iter__"):
        raise TypeError(f"workloads must be a list of GemmWorkload, not {type(workloads).__name__}; "
                        "wrap a single layer in a list")
    workloads = list(workloads)
    for w in workloads:
        _check_work(w)
    df = pd.DataFrame([simulate_layer(w, cfg, engine=engine, seed=seed) for w in workloads],
                      columns=list(RECORD_FIELDS))
    summed = [k for k in df.columns
              if k.endswith(("_cycles", "_words", "_bytes")) or k.startswith(("stall_", "ccm_stall"))
              or k in ("table_loads", "lookups", "lookup_adds", "distance_ops")]
    totals = {k: int(df[k].sum()) for k in summed}
    cycles = totals["total_cycles"]
    totals["utilization"] = totals["lookups"] / (cfg.lanes * cycles) if cycles else 0.0
    totals["latency_ms"] = cycles / cfg.clock_mhz / 1e3
    return df, totals
