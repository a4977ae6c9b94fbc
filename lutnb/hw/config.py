"""Hardware configurations (frozen, self-validating): the LUT-DLA accelerator and dense systolic arrays.

Every number here is an [ours] modelling choice (see docs/paper.md), not a value from the paper.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..kernels.common import METRICS  # noqa: F401  (defined once for kernels, layers and hardware)

DATAFLOWS = ("ws", "os", "is")


def _check(ok: bool, cls: str, field: str, value, why: str, fix: str) -> None:
    if not ok:
        raise ValueError(f"{cls}.{field}={value!r}: {why}; {fix}")


def _positive_int(cls: str, name: str, value, fix: str = "use an integer >= 1") -> None:
    _check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, cls, name, value,
           "must be a positive integer", fix)


@dataclass(frozen=True)
class LUTDLAConfig:
    """The LUT-DLA accelerator (CCM -> index FIFO -> IMM), in the paper's notation.

    CCM: `ccus` (L) centroid-computing units, each a pipelined chain of `c` distance PEs that encodes one
    sub-vector of length `v` per cycle after a fill of `c` cycles. IMM: ping-pong table buffer holding
    `c x table_tile` (Tn) entries of `table_bits`, `lanes` (P) look-ups per cycle, each adding one table
    row of Tn entries into `acc_bits` accumulators. `m_tile` rows are streamed per table tile (None: all
    M rows, the pure LUT-Stationary order). Off-chip bandwidth in bytes per cycle.
    """

    ccus: int = 16
    c: int = 16
    v: int = 4
    metric: str = "l2"
    fifo_depth: int = 512
    lanes: int = 16
    table_tile: int = 64
    table_buffer_bytes: int = 4096
    table_bits: int = 8
    acc_bits: int = 32
    activation_bits: int = 8
    clock_mhz: float = 500.0
    offchip_bytes_per_cycle: float = 16.0
    double_buffer: bool = True
    sram_banks: int = 16
    m_tile: int | None = None

    def __post_init__(self):
        n = type(self).__name__
        for f in ("ccus", "c", "v", "fifo_depth", "lanes", "table_tile", "table_buffer_bytes", "sram_banks"):
            _positive_int(n, f, getattr(self, f))
        _check(self.c >= 2, n, "c", self.c, "a codebook needs at least 2 centroids",
               "use c >= 2 (16 is usual)")
        _check(self.metric in METRICS, n, "metric", self.metric, "unknown distance metric",
               f"use one of {METRICS}")
        _check(isinstance(self.table_bits, int) and 4 <= self.table_bits <= 16, n, "table_bits",
               self.table_bits, "tables are 4..16-bit integers", "use 4 <= table_bits <= 16")
        _check(isinstance(self.acc_bits, int) and self.table_bits <= self.acc_bits <= 64, n, "acc_bits",
               self.acc_bits, f"accumulators need table_bits={self.table_bits} to 64 bits",
               "use e.g. 32")
        _check(isinstance(self.activation_bits, int) and 1 <= self.activation_bits <= 32, n,
               "activation_bits", self.activation_bits, "out of range", "use 1..32 (8 or 16 are usual)")
        _check(self.clock_mhz > 0, n, "clock_mhz", self.clock_mhz, "must be positive", "use e.g. 500")
        _check(self.offchip_bytes_per_cycle > 0, n, "offchip_bytes_per_cycle", self.offchip_bytes_per_cycle,
               "must be positive", "use e.g. 16")
        need = self.ccus + self.lanes
        _check(self.fifo_depth >= need, n, "fifo_depth", self.fifo_depth,
               f"the index FIFO must hold one CCM group and one IMM group (ccus + lanes = {need}) "
               "or the two modules deadlock", f"use fifo_depth >= {need}")
        tile_bytes = self.table_tile_bytes
        bufs = 2 if self.double_buffer else 1
        _check(self.table_buffer_bytes >= bufs * tile_bytes, n, "table_buffer_bytes", self.table_buffer_bytes,
               f"too small for {bufs} table tile(s) of c x table_tile x table_bits = {tile_bytes} bytes",
               f"use table_buffer_bytes >= {bufs * tile_bytes} or a smaller table_tile")
        if self.m_tile is not None:
            _positive_int(n, "m_tile", self.m_tile, "use a positive integer, or None for all M rows")

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.c)))

    @property
    def table_tile_bytes(self) -> int:
        return math.ceil(self.c * self.table_tile * self.table_bits / 8)

    @property
    def bits_per_activation(self) -> float:
        """Equivalent bits per activation element, log2(c) / v."""
        return math.log2(self.c) / self.v

    def replace(self, **kw) -> LUTDLAConfig:
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SystolicConfig:
    """A dense systolic array as in SCALE-Sim: `rows` x `cols` MACs, dataflow ws/os/is, SRAM in KiB."""

    rows: int = 32
    cols: int = 32
    dataflow: str = "ws"
    ifmap_sram_kb: int = 6144
    filter_sram_kb: int = 6144
    ofmap_sram_kb: int = 2048
    word_bytes: int = 1
    offchip_bytes_per_cycle: float = 10.0
    clock_mhz: float = 500.0

    def __post_init__(self):
        n = type(self).__name__
        for f in ("rows", "cols", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb", "word_bytes"):
            _positive_int(n, f, getattr(self, f))
        _check(self.dataflow in DATAFLOWS, n, "dataflow", self.dataflow, "unknown dataflow",
               f"use one of {DATAFLOWS}")
        _check(self.offchip_bytes_per_cycle > 0, n, "offchip_bytes_per_cycle", self.offchip_bytes_per_cycle,
               "must be positive", "use e.g. 10")
        _check(self.clock_mhz > 0, n, "clock_mhz", self.clock_mhz, "must be positive", "use e.g. 500")

    def replace(self, **kw) -> SystolicConfig:
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return asdict(self)
