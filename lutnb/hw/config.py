"""Hardware configurations (frozen, self-validating): the LUT-DLA accelerator and dense systolic arrays.

Every number here is an [ours] modelling choice (see docs/paper.md), not a value from the paper.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..kernels.common import ACC_BITS_RANGE, METRICS  # METRICS: defined once for kernels, layers and hardware

DATAFLOWS = ("ws", "os", "is")


class ConfigTypeError(TypeError, ValueError):
    """A config field of the wrong type (a str, bool or float where a number or an integer is needed).

    A TypeError, and a ValueError too, so code that catches either (as the DSE does) keeps working."""


def _check(ok: bool, cls: str, field: str, value, why: str, fix: str) -> None:
    if not ok:
        raise ValueError(f"{cls}.{field}={value!r}: {why}; {fix}")


def _type_error(cls: str, field: str, value, want: str, fix: str):
    return ConfigTypeError(f"{cls}.{field}={value!r}: must be {want}, not {type(value).__name__}; {fix}")


def _integer(obj, cls: str, name: str, lo: int | None = 1, hi: int | None = None, fix: str = "") -> int:
    """Check (and normalise numpy integers to int) an integer field in [lo, hi]; bools and floats refused."""
    value = getattr(obj, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        hint = f"use {int(value)}" if isinstance(value, float) and value.is_integer() else ""
        raise _type_error(cls, name, value, "an integer", hint or fix or f"use an integer >= {lo}")
    value = int(value)
    _check((lo is None or value >= lo) and (hi is None or value <= hi), cls, name, value,
           "must be a positive integer" if (lo, hi) == (1, None)
           else f"must be an integer >= {lo}" if hi is None else f"must be an integer from {lo} to {hi}",
           fix or f"use an integer >= {lo}")
    object.__setattr__(obj, name, value)
    return value


def _positive_number(obj, cls: str, name: str, fix: str) -> None:
    """A finite number > 0 (int or float; numpy scalars become Python numbers); bools and strings refused."""
    value = getattr(obj, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _type_error(cls, name, value, "a number", fix)
    if isinstance(value, np.generic):
        value = value.item()
        object.__setattr__(obj, name, value)
    _check(math.isfinite(value) and value > 0, cls, name, value, "must be a finite number > 0", fix)


def _choice(obj, cls: str, name: str, options: tuple, what: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, str):
        raise _type_error(cls, name, value, f"a string, one of {options}", f"use one of {options}")
    _check(value in options, cls, name, value, f"unknown {what}", f"use one of {options}")


def _flag(obj, cls: str, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, (bool, np.bool_)):
        raise _type_error(cls, name, value, "True or False", "use True or False")
    object.__setattr__(obj, name, bool(value))


@dataclass(frozen=True)
class LUTDLAConfig:
    """The LUT-DLA accelerator (CCM -> index FIFO -> IMM), in the paper's notation.

    CCM: `ccus` (L) centroid-computing units, each a pipelined chain of `c` distance PEs that encodes one
    sub-vector of length `v` per cycle after a fill of `c` cycles. IMM: ping-pong table buffer holding
    `c x table_tile` (Tn) entries of `table_bits`, `lanes` (P) look-ups per cycle, each adding one table
    row of Tn entries into `acc_bits` accumulators. `m_tile` rows are streamed per table tile (None: all
    M rows, the pure LUT-Stationary order). Off-chip bandwidth in bytes per cycle. `adder_fanin` (g): how
    many sub-spaces an adder tree across lanes combines per accumulator access (g table tiles resident at
    once; the accumulator is read and written ceil(S / g) times per output instead of S times).
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
    adder_fanin: int = 1

    def __post_init__(self):
        """Every field type-checked and range-checked, in the ranges the simulator, the functional model and
        the integer engine support (numpy integers and floats are accepted and stored as Python numbers)."""
        n = type(self).__name__
        for f in ("ccus", "v", "fifo_depth", "lanes", "table_tile", "table_buffer_bytes", "sram_banks",
                  "adder_fanin"):
            _integer(self, n, f)
        _integer(self, n, "c", 2, fix="use c >= 2 (a codebook needs at least 2 centroids; 16 is usual)")
        _choice(self, n, "metric", METRICS, "distance metric")
        _integer(self, n, "table_bits", 4, 16, "tables are 4..16-bit integers: use 4 <= table_bits <= 16")
        lo = max(self.table_bits, ACC_BITS_RANGE[0])
        _integer(self, n, "acc_bits", lo, ACC_BITS_RANGE[1],
                 f"accumulators need at least table_bits={self.table_bits} and {ACC_BITS_RANGE[0]} bits (the "
                 f"integer engine's range is {ACC_BITS_RANGE[0]}..{ACC_BITS_RANGE[1]}): use e.g. 32")
        _integer(self, n, "activation_bits", 1, 32, "use 1..32 (8 or 16 are usual)")
        _positive_number(self, n, "clock_mhz", "use e.g. 500")
        _positive_number(self, n, "offchip_bytes_per_cycle", "use e.g. 16")
        _flag(self, n, "double_buffer")
        if self.m_tile is not None:
            _integer(self, n, "m_tile", fix="use a positive integer, or None for all M rows")
        need = self.ccus + self.lanes
        _check(self.fifo_depth >= need, n, "fifo_depth", self.fifo_depth,
               f"the index FIFO must hold one CCM group and one IMM group (ccus + lanes = {need}) "
               "or the two modules deadlock", f"use fifo_depth >= {need}")
        _check(self.adder_fanin <= self.lanes, n, "adder_fanin", self.adder_fanin,
               f"an adder tree over g sub-spaces needs g lanes (lanes={self.lanes})",
               f"use adder_fanin <= lanes={self.lanes}")
        tile_bytes = self.table_tile_bytes * self.adder_fanin
        bufs = 2 if self.double_buffer else 1
        _check(self.table_buffer_bytes >= bufs * tile_bytes, n, "table_buffer_bytes", self.table_buffer_bytes,
               f"too small for {bufs} x adder_fanin={self.adder_fanin} table tile(s) of c x table_tile x "
               f"table_bits = {self.table_tile_bytes} bytes",
               f"use table_buffer_bytes >= {bufs * tile_bytes} or a smaller table_tile")

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.c)))

    @property
    def min_unthrottled_fifo_depth(self) -> int:
        """The FIFO depth at which credits never hold the CCM back: the L x c results in flight in the PE
        chains, the L being issued and one IMM group of P waiting (smaller depths are legal; the record's
        `ccm_stall_fifo_full` then reports the throttling)."""
        return self.ccus * (self.c + 1) + self.lanes

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
    """A dense systolic array as in SCALE-Sim: `rows` x `cols` MACs, dataflow ws/os/is, SRAM in KiB; operands
    of `word_bytes`, partial sums and outputs of `acc_bits`; the off-chip link in bytes per cycle."""

    rows: int = 32
    cols: int = 32
    dataflow: str = "ws"
    ifmap_sram_kb: int = 6144
    filter_sram_kb: int = 6144
    ofmap_sram_kb: int = 2048
    word_bytes: int = 1
    offchip_bytes_per_cycle: float = 10.0
    clock_mhz: float = 500.0
    acc_bits: int = 32

    def __post_init__(self):
        n = type(self).__name__
        for f in ("rows", "cols", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb", "word_bytes"):
            _integer(self, n, f)
        _integer(self, n, "acc_bits", 8, 64, "partial sums are 8..64-bit: use e.g. 32")
        _choice(self, n, "dataflow", DATAFLOWS, "dataflow")
        _positive_number(self, n, "offchip_bytes_per_cycle", "use e.g. 10")
        _positive_number(self, n, "clock_mhz", "use e.g. 500")

    def replace(self, **kw) -> SystolicConfig:
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return asdict(self)
