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
headline numbers stay at 45 nm.

Conventions: energies in pJ, areas in um^2 inside, mm^2 in the reports; TOPS counts equivalent dense ops
2*M*K*N; TOPS/W = ops / energy in pJ (1 op/pJ = 1 TOPS/W); power = energy / time + leakage.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..hw import LUTDLAConfig, SystolicConfig, systolic_cycles, systolic_sram_accesses

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
    _c("leakage_density", 0.01, "mW per mm^2",
       "[ours] assumption for a 45 nm general-purpose process at 0.9 V, chosen so leakage is a few percent "
       "of a busy accelerator's power; no published number used", "ours"),
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


def dram_energy_per_byte(tech: Tech = Tech()) -> float:
    """Off-chip DRAM energy per byte (not node-scaled: the DRAM and its interface are off this chip)."""
    return tech.dram_pj_per_64b / 8.0


def leakage_mw(area_mm2, tech: Tech = Tech()):
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
    """

    cfg: LUTDLAConfig = field(default_factory=LUTDLAConfig)
    acc_buffer_kb: float = 64.0
    act_buffer_kb: float = 16.0
    dense_unit: SystolicConfig | None = None
    dense_precision: str = "int8"

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
    """SRAM sizes in KiB: table (ping-pong), index buffer, FIFO, accumulators, activations, codebooks."""
    cfg = design.cfg
    return {
        "table": cfg.table_buffer_bytes / 1024,
        "index": design.m_tile * max_S * cfg.index_bits / 8 / 1024,
        "fifo": cfg.fifo_depth * cfg.index_bits / 8 / 1024,
        "accumulator": design.acc_buffer_kb,
        "activation": design.act_buffer_kb,
        "codebook": max_S * cfg.c * cfg.v * cfg.activation_bits / 8 / 1024,
    }


# operand -> buffer it is read from / written to
LUT_OPERAND_BUFFER = {"tables": "table", "indices": "index", "outputs": "accumulator",
                       "activations": "activation", "codebooks": "codebook"}


def lut_access_width(cfg) -> dict:
    """Words per access of each LUT-DLA operand's buffer (lanes x Tn table entries and accumulators per
    cycle, one index per lane, v activations per CCU, one codebook row of v per PE); works on arrays."""
    return {"tables": cfg["lanes"] * cfg["table_tile"], "outputs": cfg["lanes"] * cfg["table_tile"],
            "indices": cfg["lanes"], "activations": cfg["ccus"] * cfg["v"], "codebooks": cfg["v"]}


def lut_area(design: LUTDesign, max_S: int, tech: Tech = Tech()) -> dict:
    """Area per component in mm^2."""
    cfg = design.cfg
    parts = distance_pe(cfg.metric, cfg.v, cfg.activation_bits, tech)
    n_pe = cfg.ccus * cfg.c
    area = {f"ccm_{k}": n_pe * a / 1e6 for k, (_, a) in parts.items()}
    add_e, add_a = adder(cfg.acc_bits, tech)
    area["imm_adders"] = cfg.lanes * cfg.table_tile * add_a / 1e6
    area["imm_lane_registers"] = cfg.lanes * register(cfg.index_bits + cfg.table_tile * cfg.table_bits,
                                                      tech)[1] / 1e6
    for name, kb in lut_buffers(design, max_S).items():
        area[f"sram_{name}"] = sram_area_um2(kb, tech) / 1e6
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
    energy["imm_adders"] = totals["lookup_adds"] * adder(cfg.acc_bits, tech)[0]
    bufs = lut_buffers(design, max_S)
    width = lut_access_width(vars(cfg))
    for op, buf in LUT_OPERAND_BUFFER.items():
        energy[f"sram_{op}"] = totals[f"sram_{op}_bytes"] * 8 * sram_access_energy_per_bit(bufs[buf], width[op],
                                                                                          tech)
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


def dense_energy(cfg: SystolicConfig, precision: str, totals: dict, tech: Tech = Tech()) -> dict:
    """Energy per component (pJ) of dense totals (macs, sram_{op}_words, dram_{op}_words).

    Widths [ours]: activations and weights at the precision's bits, outputs (partial sums) at its
    accumulator width. DRAM: every operand once and final outputs once (`dense_traffic`).
    """
    p = PRECISIONS[check_precision(precision)]
    energy = {f"pe_{k}": totals["macs"] * e for k, (e, _) in mac(precision, tech).items()}
    bits = {"activations": p["bits"], "weights": p["bits"], "outputs": p["acc_bits"]}
    kb = {"activations": cfg.ifmap_sram_kb, "weights": cfg.filter_sram_kb, "outputs": cfg.ofmap_sram_kb}
    width = {"activations": cfg.rows, "weights": cfg.cols, "outputs": cfg.cols}   # words per cycle
    for op in bits:
        energy[f"sram_{op}"] = totals[f"sram_{op}_words"] * bits[op] * sram_access_energy_per_bit(kb[op], width[op],
                                                                                                  tech)
    dram_bits = sum(totals[f"dram_{op}_words"] * (p["bits"] if op != "outputs" else p["acc_bits"])
                    for op in bits)
    energy["dram"] = dram_bits / 8 * dram_energy_per_byte(tech)
    return energy


def dense_traffic(M: int, K: int, N: int, cfg: SystolicConfig) -> dict:
    """Cycles, MACs and words per operand of one GEMM on the array (closed form, lutnb.hw's model).

    DRAM [ours]: activations M*K, weights K*N and final outputs M*N once (partial sums stay in the
    output SRAM) -- the favourable case for the baseline.
    """
    cyc = systolic_cycles(M, K, N, cfg.rows, cfg.cols, cfg.dataflow)
    sram = systolic_sram_accesses(M, K, N, cfg.rows, cfg.cols, cfg.dataflow)
    out = {"total_cycles": cyc["total_cycles"], "macs": M * K * N}
    for op in ("activations", "weights", "outputs"):
        out[f"sram_{op}_words"] = sram[op]
    out.update(dram_activations_words=M * K, dram_weights_words=K * N, dram_outputs_words=M * N)
    return out


def summarize(energy: dict, area: dict, cycles: float, clock_mhz: float, ops: float) -> dict:
    """Totals and efficiencies from per-component energy (pJ) and area (mm^2)."""
    time_s = cycles / (clock_mhz * 1e6)
    area_mm2 = sum(area.values())
    leak_pj = float(leakage_mw(area_mm2)) * 1e-3 * time_s * 1e12
    dyn_pj = sum(energy.values())
    energy_pj = dyn_pj + leak_pj
    power_w = energy_pj * 1e-12 / time_s
    tops = ops / time_s / 1e12
    return {"cycles": cycles, "time_s": time_s, "energy_pj": energy_pj, "dynamic_pj": dyn_pj,
            "leakage_pj": leak_pj, "power_w": power_w, "area_mm2": area_mm2, "tops": tops,
            "tops_per_w": tops / power_w, "tops_per_mm2": tops / area_mm2, "ops": ops}


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
