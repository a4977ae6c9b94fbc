"""Energy, area and efficiency of LUT-DLA designs and dense MAC baselines, from cited component constants.

Every constant lives in `CONSTANTS` (a registry of `Constant(name, value, unit, source, kind)`); `kind` is
"published" (a number from the cited source), "derived" (computed from published numbers by the rule in
its source text) or "ours" (a modelling assumption of this project, said so). None of them is a number
from the LUT-DLA paper. Reference node: 45 nm (Horowitz, ISSCC 2014).

Width scaling [ours]: an integer adder's and multiplier's energy and area follow a power law in the bit
width fitted through Horowitz's 8- and 32-bit points (x(b) = x8 * (b / 8) ** alpha, alpha = log4(x32 / x8):
~1 for adders, ~2 for multipliers, as ripple/array structures predict). SRAM energy per bit: piecewise
log-log interpolation through Horowitz's 8 KB, 32 KB and 1 MB points (the square-root-like growth CACTI
reports), extrapolated with the end slopes. Node scaling (`Tech(node_nm=...)`): area x (node/45)^2,
dynamic energy x (node/45) (capacitance with feature size, supply held), leakage density constant;
a first-order classical rule which Stillmaker & Baas (2017) show can be off by large factors, so the
headline numbers stay at 45 nm (`lutnb.codesign.validation_silicon` checks the rule against two chips).

Two accountings, reported side by side everywhere: **core** = compute + on-chip memories + leakage (what
the LUT-DLA paper and most accelerator papers report) and **system** = core + off-chip DRAM energy.
`summarize` gives energy_core_pj / power_core_w / tops_per_w_core and the system ones (tops_per_w is the
system figure, tops_per_w_system the same number by its explicit name).

Conventions: energies in pJ, areas in um^2 inside, mm^2 in the reports; TOPS counts equivalent dense ops
2*M*K*N; TOPS/W = ops / energy in pJ (1 op/pJ = 1 TOPS/W); power = energy / time + leakage.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..hw import LUTDLAConfig, SystolicConfig, dense_layer_traffic
from ..hw.dense import dense_compute
from ..hw.traffic import link_bound, link_cycles

HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
            "45 nm, 0.9 V")


@dataclass(frozen=True)
class Constant:
    """One cited constant at the reference node."""

    name: str
    value: float
    unit: str
    source: str
    kind: str = "published"     # "published" | "derived" | "ours"


def _c(name, value, unit, source, kind="published"):
    return name, Constant(name, float(value), unit, source, kind)


CONSTANTS: dict[str, Constant] = dict([
    _c("node_ref_nm", 45, "nm", HOROWITZ),
    _c("e_add8", 0.03, "pJ", HOROWITZ + ", 8-bit integer add"),
    _c("e_add32", 0.1, "pJ", HOROWITZ + ", 32-bit integer add"),
    _c("e_mul8", 0.2, "pJ", HOROWITZ + ", 8-bit integer multiply"),
    _c("e_mul32", 3.1, "pJ", HOROWITZ + ", 32-bit integer multiply"),
    _c("e_fp16_add", 0.4, "pJ", HOROWITZ + ", 16-bit FP add"),
    _c("e_fp16_mul", 1.1, "pJ", HOROWITZ + ", 16-bit FP multiply"),
    _c("e_fp32_add", 0.9, "pJ", HOROWITZ + ", 32-bit FP add"),
    _c("a_add8", 36, "um^2", HOROWITZ + ", 8-bit integer adder area"),
    _c("a_add32", 137, "um^2", HOROWITZ + ", 32-bit integer adder area"),
    _c("a_mul8", 282, "um^2", HOROWITZ + ", 8-bit integer multiplier area"),
    _c("a_mul32", 3495, "um^2", HOROWITZ + ", 32-bit integer multiplier area"),
    _c("a_fp16_add", 1360, "um^2", HOROWITZ + ", 16-bit FP adder area"),
    _c("a_fp16_mul", 1640, "um^2", HOROWITZ + ", 16-bit FP multiplier area"),
    _c("a_fp32_add", 4184, "um^2", HOROWITZ + ", 32-bit FP adder area"),
    _c("e_sram_8kb_64b", 10, "pJ per 64-bit access", HOROWITZ + ", 8 KB SRAM read"),
    _c("e_sram_32kb_64b", 20, "pJ per 64-bit access", HOROWITZ + ", 32 KB SRAM read"),
    _c("e_sram_1mb_64b", 100, "pJ per 64-bit access", HOROWITZ + ", 1 MB SRAM read"),
    _c("e_dram_64b_low", 1300, "pJ per 64 bits", HOROWITZ + ", DRAM access, low end of 1.3-2.6 nJ"),
    _c("e_dram_64b_high", 2600, "pJ per 64 bits", HOROWITZ + ", DRAM access, high end of 1.3-2.6 nJ"),
    _c("e_dram_64b", 1950, "pJ per 64 bits",
       "[ours] midpoint of Horowitz ISSCC 2014's 1.3-2.6 nJ per 64-bit DRAM access", "ours"),
    _c("a_sram_bitcell", 0.346, "um^2 per bit",
       "K. Mistry et al., 'A 45nm logic technology with high-k+metal gate transistors...', IEDM 2007: "
       "Intel 45 nm 6T SRAM cell 0.346 um^2"),
    _c("sram_array_efficiency", 0.5, "fraction",
       "[ours] cell area / macro area of a small SRAM macro (peripherals, sense amps, decoders); CACTI "
       "(Muralimanohar et al., HP Labs 2009) macros of 8-256 KB report roughly 0.3-0.7", "ours"),
    _c("a_dff", 4.522, "um^2 per bit", "NanGate FreePDK45 Open Cell Library (45 nm), DFF_X1 cell area"),
    _c("a_mux2", 1.862, "um^2 per bit", "NanGate FreePDK45 Open Cell Library (45 nm), MUX2_X1 cell area"),
    _c("logic_energy_density", 0.03 / 36, "pJ per um^2 switched",
       "derived: Horowitz ISSCC 2014 8-bit add energy / its area (0.03 pJ / 36 um^2); used to give a "
       "register bit or a mux bit an energy from its NanGate area", "derived"),
    _c("min_bank_kb", 0.5, "KiB",
       "[ours] smallest SRAM bank the banking rule assumes (below it a buffer would be a register file)",
       "ours"),
    _c("leakage_density", 25.066064 / 1.064, "mW per mm^2",
       "derived: NanGate FreePDK45 Open Cell Library, typical corner (1.1 V, 25 C), AND2_X1 "
       "cell_leakage_power 25.07 nW / area 1.064 um^2 = 23.6 nW/um^2 = 23.6 mW/mm^2, applied to logic and "
       "SRAM macro area alike (a predictive PDK with standard-Vt cells: an upper-end figure; low-leakage "
       "SRAM cells leak less)", "derived"),
    _c("a_regfile_bit", 4.522 + 1.862, "um^2 per bit",
       "derived: NanGate FreePDK45 DFF_X1 (4.522 um^2) storage plus one MUX2_X1 (1.862 um^2) of the read "
       "select tree per stored bit: a flip-flop register file", "derived"),
])


def constants_frame():
    """The registry as a DataFrame (name, value, unit, kind, source)."""
    import pandas as pd

    return pd.DataFrame([vars(c) for c in CONSTANTS.values()])[["name", "value", "unit", "kind", "source"]]


@dataclass(frozen=True)
class Tech:
    """A technology point: the registry scaled from 45 nm by the rule in the module docstring."""

    node_nm: float = 45.0
    dram_pj_per_64b: float = CONSTANTS["e_dram_64b"].value

    def __post_init__(self):
        for name in ("node_nm", "dram_pj_per_64b"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, numbers.Real) or not math.isfinite(val) or val <= 0:
                raise (ValueError if isinstance(val, numbers.Real) and not isinstance(val, bool) else TypeError)(
                    f"Tech.{name}={val!r}: must be a finite number > 0")
        if not (3 <= self.node_nm <= 180):
            raise ValueError(f"Tech.node_nm={self.node_nm}: the scaling rule is meant for 3..180 nm")

    @property
    def area_scale(self) -> float:
        return (self.node_nm / CONSTANTS["node_ref_nm"].value) ** 2

    @property
    def energy_scale(self) -> float:
        return self.node_nm / CONSTANTS["node_ref_nm"].value

    def k(self, name: str) -> float:
        return CONSTANTS[name].value


def power_law(x8: float, x32: float, bits) -> float:
    alpha = math.log(x32 / x8) / math.log(4.0)
    return x8 * (np.asarray(bits, dtype=float) / 8.0) ** alpha


# ------------------------------------------------------------------------------------ arithmetic units
def adder(bits, tech: Tech = Tech()) -> tuple:
    """(energy pJ per add, area um^2) of a `bits`-wide integer adder."""
    e = power_law(CONSTANTS["e_add8"].value, CONSTANTS["e_add32"].value, bits)
    a = power_law(CONSTANTS["a_add8"].value, CONSTANTS["a_add32"].value, bits)
    return float(e) * tech.energy_scale, float(a) * tech.area_scale


def multiplier(bits, tech: Tech = Tech()) -> tuple:
    """(energy, area) of a `bits` x `bits` integer multiplier."""
    e = power_law(CONSTANTS["e_mul8"].value, CONSTANTS["e_mul32"].value, bits)
    a = power_law(CONSTANTS["a_mul8"].value, CONSTANTS["a_mul32"].value, bits)
    return float(e) * tech.energy_scale, float(a) * tech.area_scale


def register(bits, tech: Tech = Tech()) -> tuple:
    """(energy per write, area) of a `bits`-wide register (NanGate DFF area, energy from area density)."""
    a = CONSTANTS["a_dff"].value * bits
    return a * CONSTANTS["logic_energy_density"].value * tech.energy_scale, a * tech.area_scale


def mux(bits, tech: Tech = Tech()) -> tuple:
    """(energy, area) of a `bits`-wide 2:1 multiplexer."""
    a = CONSTANTS["a_mux2"].value * bits
    return a * CONSTANTS["logic_energy_density"].value * tech.energy_scale, a * tech.area_scale


def comparator(bits, tech: Tech = Tech()) -> tuple:
    """(energy, area) of a compare-and-select (a subtractor for the sign plus a `bits` mux) [ours]."""
    return tuple(x + y for x, y in zip(adder(bits, tech), mux(bits, tech)))


def absolute(bits, tech: Tech = Tech()) -> tuple:
    """(energy, area) of |x|: a negation (an adder) and a select mux [ours]."""
    return tuple(x + y for x, y in zip(adder(bits, tech), mux(bits, tech)))


def check_precision(precision, name: str = "precision") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"{name}={precision!r}: not a dense baseline precision; use one of {tuple(PRECISIONS)}")
    return precision


def mac(precision: str, tech: Tech = Tech()) -> dict:
    """Per-MAC energy and area of a dense PE: multiplier, accumulator adder, operand/psum registers."""
    check_precision(precision)
    if precision == "fp16":
        mul = (CONSTANTS["e_fp16_mul"].value * tech.energy_scale, CONSTANTS["a_fp16_mul"].value * tech.area_scale)
        add = (CONSTANTS["e_fp16_add"].value * tech.energy_scale, CONSTANTS["a_fp16_add"].value * tech.area_scale)
    else:
        b = PRECISIONS[precision]["bits"]
        mul, add = multiplier(b, tech), adder(PRECISIONS[precision]["acc_bits"], tech)
    regs = register(2 * PRECISIONS[precision]["bits"] + PRECISIONS[precision]["acc_bits"], tech)
    return {"multiplier": mul, "adder": add, "registers": regs}


PRECISIONS = {   # [ours] operand and accumulator widths of the dense baselines
    "int16": {"bits": 16, "acc_bits": 32},    # for the Eyeriss check (16-bit fixed point)
    "int8": {"bits": 8, "acc_bits": 32},
    "int4": {"bits": 4, "acc_bits": 24},      # 8-bit products summed over K <= 65536
    "fp16": {"bits": 16, "acc_bits": 16},     # FP16 multiply and FP16 add (Horowitz's FP16 units)
}
# ------------------------------------------------------------------------------------ memories
_SRAM_KB = np.log(np.array([8.0, 32.0, 1024.0]))


def sram_energy_per_bit(kb, tech: Tech = Tech()):
    """Energy (pJ) per bit accessed in an SRAM of `kb` KiB: log-log interpolation of Horowitz's points."""
    e = np.log(np.array([CONSTANTS[f"e_sram_{s}_64b"].value for s in ("8kb", "32kb", "1mb")]) / 64.0)
    x = np.log(np.maximum(np.asarray(kb, dtype=float), 1e-3))
    lo = e[0] + (x - _SRAM_KB[0]) * (e[1] - e[0]) / (_SRAM_KB[1] - _SRAM_KB[0])
    hi = e[1] + (x - _SRAM_KB[1]) * (e[2] - e[1]) / (_SRAM_KB[2] - _SRAM_KB[1])
    out = np.exp(np.where(x <= _SRAM_KB[1], lo, hi)) * tech.energy_scale
    return float(out) if out.ndim == 0 else out


def sram_access_energy_per_bit(kb, words_per_access, tech: Tech = Tech()):
    """Per-bit energy of a buffer read `words_per_access` words at a time [ours banking rule]: it is that many
    banks of kb / words each (at least `min_bank_kb`), and a bit costs what it costs in one bank (CACTI's
    energy per access follows the bank's size, not the whole buffer's)."""
    bank = np.maximum(np.asarray(kb, dtype=float) / np.asarray(words_per_access, dtype=float),
                      CONSTANTS["min_bank_kb"].value)
    return sram_energy_per_bit(bank, tech)


def sram_area_um2(kb, tech: Tech = Tech()):
    """Area (um^2) of an SRAM macro of `kb` KiB: bit cells / array efficiency."""
    bits = np.asarray(kb, dtype=float) * 8192.0
    out = bits * CONSTANTS["a_sram_bitcell"].value / CONSTANTS["sram_array_efficiency"].value * tech.area_scale
    return float(out) if out.ndim == 0 else out


def regfile_energy_per_bit(tech: Tech = Tech()) -> float:
    """Energy (pJ) per bit read or written in a flip-flop register file: its area times the logic energy
    density (the rule `register` uses)."""
    return CONSTANTS["a_regfile_bit"].value * CONSTANTS["logic_energy_density"].value * tech.energy_scale


def regfile_area_um2(kb, tech: Tech = Tech()):
    """Area (um^2) of a flip-flop register file of `kb` KiB."""
    return np.asarray(kb, dtype=float) * 8192.0 * CONSTANTS["a_regfile_bit"].value * tech.area_scale


def required_acc_bits(table_bits, S):
    """Accumulator width that sums S signed `table_bits` entries without overflow and no wasted bit:
    table_bits + ceil(log2(S)), at least 8 and at most 64 (the integer engine's range); works on arrays."""
    S = np.maximum(np.asarray(S), 1)
    out = np.clip(np.asarray(table_bits) + np.ceil(np.log2(S)).astype(np.int64), 8, 64)
    return int(out) if out.ndim == 0 else out


def dram_energy_per_byte(tech: Tech = Tech()) -> float:
    """Off-chip DRAM energy per byte (not node-scaled: the DRAM and its interface are off this chip)."""
    return tech.dram_pj_per_64b / 8.0


def leakage_mw(area_mm2, tech: Tech = Tech()):
    """Leakage power (mW) of `area_mm2` of chip (density held constant across nodes, see module doc)."""
    return np.asarray(area_mm2) * CONSTANTS["leakage_density"].value


# ------------------------------------------------------------------------------------ distance PE
def distance_pe(metric: str, v: int, bits: int = 8, tech: Tech = Tech()) -> dict:
    """One distance PE (one centroid, one sub-vector of v `bits`-wide elements per cycle).

    Returns {component: (energy pJ per evaluation, area um^2)}:
      l2: v subtractors, v squarers (multipliers of bits+1), adder tree of v-1 adders;
      l1: v subtractors, v absolute values, adder tree of v-1 adders;
      chebyshev: v subtractors, v absolute values, max tree of v-1 comparators;
    plus, for every metric, the argmin step (a comparator on the distance) and the registers (the
    stationary centroid, the passing sub-vector, the running minimum and its index).
    """
    if metric not in ("l2", "l1", "chebyshev"):
        raise ValueError(f"metric={metric!r}: use 'l2', 'l1' or 'chebyshev'")
    d = bits + 1                                   # a difference of two `bits` numbers
    tree = max(0, v - 1)
    lg = math.ceil(math.log2(v)) if v > 1 else 0
    sub = adder(bits, tech)
    parts = {"subtract": tuple(v * x for x in sub)}
    if metric == "l2":
        parts["square"] = tuple(v * x for x in multiplier(d, tech))
        dist_bits = 2 * d + lg
        parts["adder_tree"] = tuple(tree * x for x in adder(2 * d + lg, tech))
    elif metric == "l1":
        parts["abs"] = tuple(v * x for x in absolute(d, tech))
        dist_bits = d + lg
        parts["adder_tree"] = tuple(tree * x for x in adder(d + lg, tech))
    else:
        parts["abs"] = tuple(v * x for x in absolute(d, tech))
        dist_bits = d
        parts["max_tree"] = tuple(tree * x for x in comparator(d, tech))
    parts["argmin"] = comparator(dist_bits, tech)
    # registers written per evaluation: the passing sub-vector and the running (min, index) [ours];
    # the stationary centroid register costs area but is written only on codebook loads
    reg_bits = v * bits + dist_bits + 8
    e_reg, a_reg = register(reg_bits, tech)
    parts["registers"] = (e_reg, a_reg + register(v * bits, tech)[1])
    return parts


def distance_pe_total(metric: str, v: int, bits: int = 8, tech: Tech = Tech()) -> tuple:
    parts = distance_pe(metric, v, bits, tech)
    return sum(p[0] for p in parts.values()), sum(p[1] for p in parts.values())


# ------------------------------------------------------------------------------------ designs
@dataclass(frozen=True)
class LUTDesign:
    """A LUT-DLA chip: the simulator's config plus the buffers the cost model sizes [ours].

    acc_buffer_kb holds m_tile x table_tile partial sums (LS order), so it fixes the row tile;
    act_buffer_kb stages activations for the CCM; the index buffer (for index reuse across column tiles)
    and the codebook buffer are sized by `lut_buffers` from the workload. `dense_unit`: a dense INT8 array
    for layers that stay dense (attention products), costed like the baselines; None if none needed.
    `acc_storage`: "sram" (a banked SRAM, Horowitz energy) or "regfile" (flip-flops, NanGate area).
    """

    cfg: LUTDLAConfig = field(default_factory=LUTDLAConfig)
    acc_buffer_kb: float = 64.0
    act_buffer_kb: float = 16.0
    dense_unit: SystolicConfig | None = None
    dense_precision: str = "int8"
    acc_storage: str = "sram"

    def __post_init__(self):
        if not isinstance(self.cfg, LUTDLAConfig):
            raise TypeError(f"LUTDesign.cfg={self.cfg!r}: must be a LUTDLAConfig")
        for name in ("acc_buffer_kb", "act_buffer_kb"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, numbers.Real) or not math.isfinite(val):
                raise TypeError(f"LUTDesign.{name}={val!r}: must be a finite number of KiB")
        if self.dense_unit is not None and not isinstance(self.dense_unit, SystolicConfig):
            raise TypeError(f"LUTDesign.dense_unit={self.dense_unit!r}: must be a SystolicConfig or None")
        check_precision(self.dense_precision, "LUTDesign.dense_precision")
        if self.acc_storage not in ACC_STORAGES:
            raise ValueError(f"LUTDesign.acc_storage={self.acc_storage!r}: use one of {ACC_STORAGES}")
        if self.acc_buffer_kb * 1024 < self.cfg.table_tile * self.cfg.acc_bits / 8:
            raise ValueError(f"LUTDesign.acc_buffer_kb={self.acc_buffer_kb}: must hold at least one row of "
                             f"table_tile={self.cfg.table_tile} accumulators; make it larger")
        if self.act_buffer_kb <= 0:
            raise ValueError(f"LUTDesign.act_buffer_kb={self.act_buffer_kb}: must be positive")

    @property
    def m_tile(self) -> int:
        """Rows per row tile that the accumulator buffer allows."""
        return int(self.acc_buffer_kb * 1024 * 8 // (self.cfg.table_tile * self.cfg.acc_bits))

    def sim_config(self) -> LUTDLAConfig:
        """The simulator config with the row tile set by the accumulator buffer."""
        return self.cfg.replace(m_tile=self.m_tile)


def lut_buffers(design: LUTDesign, max_S: int) -> dict:
    """Buffer sizes in KiB: table (ping-pong), index buffer, FIFO, accumulators, activations, codebooks."""
    cfg = design.cfg
    return {
        "table": cfg.table_buffer_bytes / 1024,
        "index": design.m_tile * max_S * cfg.index_bits / 8 / 1024,
        "fifo": cfg.fifo_depth * cfg.index_bits / 8 / 1024,
        "accumulator": design.acc_buffer_kb,
        "activation": design.act_buffer_kb,
        "codebook": max_S * cfg.c * cfg.v * cfg.activation_bits / 8 / 1024,
    }


# operand -> buffer it is read from / written to (outputs: no on-chip words, see lutnb.hw.traffic)
LUT_OPERAND_BUFFER = {"tables": "table", "indices": "index", "psums": "accumulator", "outputs": "accumulator",
                       "activations": "activation", "codebooks": "codebook"}
ACC_STORAGES = ("sram", "regfile")


def lut_access_width(cfg) -> dict:
    """Words per access of each LUT-DLA operand's buffer (lanes / g rows x Tn accumulators per cycle, lanes x Tn
    table entries, one index per lane, v activations per CCU, one codebook row of v per PE); works on arrays."""
    acc = cfg["lanes"] * cfg["table_tile"] / cfg.get("adder_fanin", 1)
    return {"tables": cfg["lanes"] * cfg["table_tile"], "outputs": acc, "psums": acc,
            "indices": cfg["lanes"], "activations": cfg["ccus"] * cfg["v"], "codebooks": cfg["v"]}


def imm_adders(acc_bits, table_bits, fanin, tech: Tech = Tech()) -> dict:
    """Per look-up (energy pJ) and per lane-column (area um^2) of the IMM's adders: with an adder tree over g
    sub-spaces, g look-ups cost g - 1 tree adds of table_bits + ceil(log2 g) bits and one accumulator add of
    acc_bits; g = 1 is one acc_bits add per look-up. Works on arrays."""
    g = np.asarray(fanin, dtype=float)
    tree_bits = np.asarray(table_bits) + np.ceil(np.log2(np.maximum(g, 1)))
    e_tree = power_law(CONSTANTS["e_add8"].value, CONSTANTS["e_add32"].value, tree_bits) * tech.energy_scale
    a_tree = power_law(CONSTANTS["a_add8"].value, CONSTANTS["a_add32"].value, tree_bits) * tech.area_scale
    e_acc = power_law(CONSTANTS["e_add8"].value, CONSTANTS["e_add32"].value, acc_bits) * tech.energy_scale
    a_acc = power_law(CONSTANTS["a_add8"].value, CONSTANTS["a_add32"].value, acc_bits) * tech.area_scale
    return {"energy_per_lookup": ((g - 1) * e_tree + e_acc) / g, "area_per_lane": ((g - 1) * a_tree + a_acc) / g}


def acc_storage_cost(kb, words_per_access, storage: str, tech: Tech = Tech()) -> tuple:
    """(energy pJ per bit accessed, area um^2) of the accumulator storage: SRAM (banked, Horowitz) or a
    flip-flop register file (NanGate DFF + read mux, energy from the logic density)."""
    if storage == "regfile":
        return regfile_energy_per_bit(tech), regfile_area_um2(kb, tech)
    return sram_access_energy_per_bit(kb, words_per_access, tech), sram_area_um2(kb, tech)


def lut_area(design: LUTDesign, max_S: int, tech: Tech = Tech()) -> dict:
    """Area per component in mm^2."""
    cfg = design.cfg
    parts = distance_pe(cfg.metric, cfg.v, cfg.activation_bits, tech)
    n_pe = cfg.ccus * cfg.c
    area = {f"ccm_{k}": n_pe * a / 1e6 for k, (_, a) in parts.items()}
    add = imm_adders(cfg.acc_bits, cfg.table_bits, cfg.adder_fanin, tech)
    area["imm_adders"] = cfg.lanes * cfg.table_tile * float(add["area_per_lane"]) / 1e6
    area["imm_lane_registers"] = cfg.lanes * register(cfg.index_bits + cfg.table_tile * cfg.table_bits,
                                                      tech)[1] / 1e6
    width = lut_access_width(vars(cfg))
    for name, kb in lut_buffers(design, max_S).items():
        a = (acc_storage_cost(kb, width["psums"], design.acc_storage, tech)[1] if name == "accumulator"
             else sram_area_um2(kb, tech))
        area[f"sram_{name}"] = float(a) / 1e6
    if design.dense_unit is not None:
        for k, v in dense_area(design.dense_unit, design.dense_precision, tech).items():
            area[f"dense_unit_{k}"] = v
    return area


def lut_energy(design: LUTDesign, totals: dict, max_S: int, tech: Tech = Tech(),
               dense_totals: dict | None = None) -> dict:
    """Energy per component in pJ for a workload, from simulator totals (summed records).

    Needs the totals' distance_ops, lookup_adds and per-operand sram_*_bytes / dram_*_bytes.
    """
    cfg = design.cfg
    evals = totals["distance_ops"] / cfg.v            # M * S * c distance-PE evaluations
    parts = distance_pe(cfg.metric, cfg.v, cfg.activation_bits, tech)
    energy = {f"ccm_{k}": evals * e for k, (e, _) in parts.items()}
    add = imm_adders(cfg.acc_bits, cfg.table_bits, cfg.adder_fanin, tech)
    energy["imm_adders"] = totals["lookup_adds"] * float(add["energy_per_lookup"])
    bufs = lut_buffers(design, max_S)
    width = lut_access_width(vars(cfg))
    for op, buf in LUT_OPERAND_BUFFER.items():
        per_bit = (acc_storage_cost(bufs[buf], width[op], design.acc_storage, tech)[0] if buf == "accumulator"
                   else sram_access_energy_per_bit(bufs[buf], width[op], tech))
        energy[f"sram_{op}"] = totals.get(f"sram_{op}_bytes", 0) * 8 * per_bit
    energy["dram"] = totals["dram_bytes"] * dram_energy_per_byte(tech)
    if dense_totals is not None and design.dense_unit is not None:
        for k, v in dense_energy(design.dense_unit, design.dense_precision, dense_totals, tech).items():
            energy[f"dense_unit_{k}"] = v
    return energy


def dense_area(cfg: SystolicConfig, precision: str, tech: Tech = Tech()) -> dict:
    """Area per component (mm^2) of a rows x cols MAC array with its three SRAMs."""
    n = cfg.rows * cfg.cols
    area = {f"pe_{k}": n * a / 1e6 for k, (_, a) in mac(precision, tech).items()}
    for name, kb in (("ifmap", cfg.ifmap_sram_kb), ("filter", cfg.filter_sram_kb), ("ofmap", cfg.ofmap_sram_kb)):
        area[f"sram_{name}"] = sram_area_um2(kb, tech) / 1e6
    return area


def dense_bits(precision: str) -> dict:
    """Width of each dense operand: activations, weights and final outputs at the precision, psums at its
    accumulator width (the LUT-DLA side: activations and outputs at activation_bits, psums at acc_bits)."""
    p = PRECISIONS[check_precision(precision)]
    return {"activations": p["bits"], "weights": p["bits"], "outputs": p["bits"], "psums": p["acc_bits"]}


def dense_energy(cfg: SystolicConfig, precision: str, totals: dict, tech: Tech = Tech()) -> dict:
    """Energy per component (pJ) of dense totals (macs, sram_{op}_words, dram_{op}_words), `dense_bits` widths."""
    bits = dense_bits(precision)
    energy = {f"pe_{k}": totals["macs"] * e for k, (e, _) in mac(precision, tech).items()}
    kb = {"activations": cfg.ifmap_sram_kb, "weights": cfg.filter_sram_kb, "outputs": cfg.ofmap_sram_kb,
          "psums": cfg.ofmap_sram_kb}
    width = {"activations": cfg.rows, "weights": cfg.cols, "outputs": cfg.cols, "psums": cfg.cols}
    for op in bits:
        energy[f"sram_{op}"] = totals[f"sram_{op}_words"] * bits[op] * sram_access_energy_per_bit(kb[op], width[op],
                                                                                                  tech)
    dram_bits = sum(totals[f"dram_{op}_words"] * bits[op] for op in bits)
    energy["dram"] = dram_bits / 8 * dram_energy_per_byte(tech)
    return energy


def dense_traffic(M: int, K: int, N: int, cfg: SystolicConfig, precision: str = "int8") -> dict:
    """Cycles, MACs and words per operand of one GEMM on the array: `lutnb.hw.dense_layer_traffic` (the
    traffic model LUT-DLA's records use) and SCALE-Sim cycles, bandwidth-limited by the link at the
    precision's widths (`lutnb.hw.traffic.link_bound`)."""
    bits = dense_bits(precision)
    traffic = dense_layer_traffic(M, K, N, cfg.replace(acc_bits=bits["psums"]))
    compute = dense_compute(M, K, N, cfg.replace(acc_bits=bits["psums"]))["total_cycles"]
    dram_bytes = sum(math.ceil(traffic[op][2] * bits[op] / 8) for op in bits)
    link = int(link_cycles(dram_bytes, cfg.offchip_bytes_per_cycle))
    total, stall = (int(x) for x in link_bound(compute, link))
    out = {"total_cycles": total, "compute_cycles": compute, "stall_offchip_bw": stall, "link_cycles": link,
           "macs": M * K * N, "dram_bytes": dram_bytes}
    for op, (_, sram, dram) in traffic.items():
        out[f"sram_{op}_words"] = sram
        out[f"dram_{op}_words"] = dram
    return out


def is_offchip(component: str) -> bool:
    """True for energy components of the system accounting only (DRAM, the dense unit's DRAM)."""
    return component == "dram" or component.endswith("_dram")


def summarize(energy: dict, area: dict, cycles: float, clock_mhz: float, ops: float, tech: Tech = Tech()) -> dict:
    """Totals and efficiencies from per-component energy (pJ) and area (mm^2), in both accountings:
    core (compute + on-chip memory + leakage) and system (core + DRAM); tops_per_w is the system figure."""
    time_s = cycles / (clock_mhz * 1e6)
    area_mm2 = sum(area.values())
    leak_pj = float(leakage_mw(area_mm2, tech)) * 1e-3 * time_s * 1e12
    dyn_pj = sum(energy.values())
    dram_pj = sum(v for k, v in energy.items() if is_offchip(k))
    energy_pj = dyn_pj + leak_pj
    core_pj = energy_pj - dram_pj
    power_w, power_core_w = energy_pj * 1e-12 / time_s, core_pj * 1e-12 / time_s
    tops = ops / time_s / 1e12
    return {"cycles": cycles, "time_s": time_s, "energy_pj": energy_pj, "dynamic_pj": dyn_pj,
            "leakage_pj": leak_pj, "dram_pj": dram_pj, "energy_core_pj": core_pj, "power_w": power_w,
            "power_core_w": power_core_w, "area_mm2": area_mm2, "tops": tops, "tops_per_w": tops / power_w,
            "tops_per_w_system": tops / power_w, "tops_per_w_core": tops / power_core_w,
            "tops_per_mm2": tops / area_mm2, "ops": ops}


def breakdown(energy: dict, area: dict, summary: dict | None = None):
    """Per-component DataFrame: energy (pJ and share), area (mm^2 and share), and power (W) if timed."""
    import pandas as pd

    names = sorted(set(energy) | set(area))
    df = pd.DataFrame({"component": names,
                       "energy_pj": [energy.get(n, 0.0) for n in names],
                       "area_mm2": [area.get(n, 0.0) for n in names]})
    if summary is not None:
        df.loc[len(df)] = ["leakage", summary["leakage_pj"], 0.0]
        df["power_w"] = df["energy_pj"] * 1e-12 / summary["time_s"]
    df["energy_share"] = df["energy_pj"] / df["energy_pj"].sum()
    df["area_share"] = df["area_mm2"] / max(df["area_mm2"].sum(), 1e-30)
    return df
