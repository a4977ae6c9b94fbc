"""The README's results gallery: the committed FULL figures with the numbers of their FULL results JSON.

Every figure under figures/ was written by a FULL notebook run, which also wrote
data/reference_results/NN_name.json with a provenance block. `render()` turns those files into the markdown
block the README holds between ``<!-- gallery:start -->`` and ``<!-- gallery:end -->``: per notebook, how the
run was made (commit, date, machine, wall time, seeds), its headline numbers read from the JSON, and its
figures, each labelled with the paper figure whose topic it reconstructs. `python tools/gallery.py` rewrites
the block; `tests/test_gallery.py` fails when the README and the files disagree, so no number in the gallery
can go stale or be typed by hand.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from ..files import repo_root

START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"

# (file stem, paper figure number, reconstructed topic, notebook)
FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("fig03_framework_overview", "3", "framework overview, annotated with a real end-to-end run", "00_overview"),
    ("fig01_scalar_vs_vector_quantization", "1", "scalar vs vector quantization: output error vs bits per activation",
     "01_vector_quantization"),
    ("fig02_lut_gemm", "2", "the LUT GEMM on a small real example", "01_vector_quantization"),
    ("fig08_lutboost_stages", "8", "LUTBoost stage by stage: accuracy and losses", "02_lutboost"),
    ("fig09_lutboost_vs_single_stage", "9", "LUTBoost vs single-stage conversion at equal epochs", "02_lutboost"),
    ("fig10_accuracy_vs_bits", "10", "accuracy vs equivalent bits per (v, c) and metric", "03_accuracy_vs_bits"),
    ("fig04_block_diagram", "4", "accelerator block diagram drawn from a configuration", "04_simulate_accelerator"),
    ("fig06_dataflow_loop_orders", "6", "LUT-Stationary vs other loop orders: traffic and table reloads",
     "04_simulate_accelerator"),
    ("fig07_table_swap_timeline", "7", "double-buffered table swap timeline", "04_simulate_accelerator"),
    ("fig14b_layer_latency_breakdown", "14 (latency half)", "per-layer latency and stall breakdown",
     "04_simulate_accelerator"),
    ("fig05_distance_pe_cost", "5", "distance PE cost per metric vs v and bit width", "05_design_space_exploration"),
    ("fig11_hardware_cost", "11", "hardware cost vs (v, c, CCUs, lanes)", "05_design_space_exploration"),
    ("fig12_pareto_fronts", "12", "design-space Pareto fronts: accuracy vs efficiency", "05_design_space_exploration"),
    ("fig13_baseline_comparison", "13", "against dense baseline accelerators, normalized efficiency",
     "05_design_space_exploration"),
    ("fig14_area_power_breakdown", "14 (cost half)", "area and power breakdown", "05_design_space_exploration"),
    ("fig06b_transformer_fidelity", "none (ours)", "transformers as LUT models: MiniLM fidelity, ViT accuracy",
     "06_transformers"),
)

NOTEBOOKS: dict[str, str] = {
    "00_overview": "00 overview",
    "01_vector_quantization": "01 vector quantization",
    "02_lutboost": "02 LUTBoost",
    "03_accuracy_vs_bits": "03 accuracy vs bits",
    "04_simulate_accelerator": "04 simulating the accelerator",
    "05_design_space_exploration": "05 design-space exploration",
    "06_transformers": "06 transformers",
    "07_interactive_explorer": "07 interactive explorer",
    "08_cifar10_resnet20": "08 CIFAR-10 ResNet-20",
}

NOT_RUN: dict[str, str] = {
    "08_cifar10_resnet20": "not run FULL here: it downloads CIFAR-10 and trains ResNet-20 for days on a CPU; it is "
                           "meant for a GPU with a network (`make reproduce-full`, or "
                           "`python tools/full_cifar_resnet20.py`), and none was available to us. Its SMOKE run "
                           "checks the code path on a generated archive only.",
}


def _get(d: Any, *path, default=None):
    for key in path:
        if isinstance(d, dict) and key in d:
            d = d[key]
        else:
            return default
    return d


def _f(x, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


# ------------------------------------------------------------------------------------------ headlines
def _h00(r: dict) -> list[str]:
    out = [
        f"digits CNN, {r.get('metric')}, v={r.get('v')}, c={r.get('c')}: fp32 {_f(r.get('fp32_test_acc'))} %, "
        f"LUT with INT8 tables {_f(r.get('lut_int8_test_acc'))} % after LUTBoost (kept state: "
        f"{r.get('selected_stage', '?')}; {_f(r.get('gain_over_kmeans_pt'))} pt over the calibration alone); "
        f"the integer "
        f"engine gives {_f(r.get('engine_test_acc'))} % "
        f"({'bit-identical' if r.get('engine_bit_identical') else 'NOT bit-identical'} to the PyTorch INT8 mode)",
        f"{r.get('lut_layers')} LUT layers, {r.get('table_bytes'):,} table bytes; on the package-default design "
        f"{r.get('lut_cycles'):,} LUT-DLA cycles vs {r.get('dense_ws32_cycles'):,} for a 32x32 INT8 weight-stationary "
        f"array at the same {r.get('offchip_bytes_per_cycle', '?')} B/cycle link (the dense array is faster); power "
        f"efficiency {_f(r.get('power_eff_ratio_core_vs_int8'))}x (core) and {_f(r.get('power_eff_ratio_vs_int8'))}x "
        f"(system, with DRAM) an equal-area INT8 array's",
    ]
    if r.get("balanced_cycles") is not None:
        out.append(f"the DSE's balanced design on the same layers: {r['balanced_cycles']:,} cycles, "
                   f"{_f(r.get('balanced_tops_per_w_core'))} TOPS/W core, {_f(r.get('balanced_area_mm2'))} mm2")
    return out


def _per_metric(d: Any, fmt: str) -> str:
    if isinstance(d, dict):
        return ", ".join(f"{m} {format(v, fmt)}" for m, v in d.items() if v is not None)
    return _f(d, fmt)


def _h01(r: dict) -> list[str]:
    sc = r.get("scalar_rel_error", {})
    out = [f"layer {r.get('layer')} of the digits CNN (M={r.get('M')} rows, K={r.get('K')}, N={r.get('N')}): relative "
           f"output error at 1 bit per activation, vector quantization (v=4, c=16, k-means) "
           f"{_per_metric(r.get('vq_rel_error_1bit'), '.3f')}; scalar INT1 {_f(sc.get('INT1'), '.3f')}, "
           f"INT2 {_f(sc.get('INT2'), '.3f')}"]
    if r.get("no_training_int8_acc") is not None:
        out.append(f"k-means tables alone, no training, INT8 tables: test accuracy "
                   f"{_per_metric(r['no_training_int8_acc'], '.2f')} % (fp32 {_f(r.get('fp32_test_acc'))} %, "
                   f"{r.get('test_images')} test images)")
    cost = r.get("table_cost_v4_c16")
    if isinstance(cost, dict) and cost.get("ratio") is not None:
        out.append(f"tables cost {cost['ratio']:g}x the INT8 weights of that layer at v=4, c=16 "
                   f"({int(cost['table_bytes']):,} vs {int(cost['weight_bytes']):,} bytes)")
    return out


def _signed(x: float) -> str:
    """+0.22 / -0.15, and 0.00 for values that round to zero (never -0.00)."""
    return "0.00" if abs(x) < 0.005 else f"{x:+.2f}"


def _lutboost_rows(r: dict, method: str) -> list[dict]:
    return [s for s in r.get("summary", []) if s.get("method", "lutboost") == method]


def _h02(r: dict) -> list[str]:
    lb = _lutboost_rows(r, "lutboost")
    out = []
    for model in sorted({s["model"] for s in lb}):
        rows = [s for s in lb if s["model"] == model]
        out.append(f"{model}: LUTBoost mean drop (fp32 - LUT, INT8 tables, {rows[0].get('seeds')} seeds) "
                   + ", ".join(f"{s['metric']} {s['drop_mean']:.2f} pt" for s in rows))
    paired = r.get("paired_diff") or []
    if paired:
        out.append("LUTBoost - fair single-stage baseline at equal epochs, paired by seed (mean, 95 % t-interval): "
                   + "; ".join(f"{p['model']} {p['metric']} {_signed(p['mean_diff'])} pt [{_signed(p['ci95_low'])}, "
                               f"{_signed(p['ci95_high'])}]" for p in paired)
                   + f"; a detectable difference in {sum(bool(p['detectable']) for p in paired)} of {len(paired)} "
                   "cells")
    elif "lutboost_wins" in r:
        out.append(f"LUTBoost above the fair single-stage baseline at equal epochs in {r['lutboost_wins']} of "
                   f"{r.get('cells')} (model, metric) cells, tied in {r.get('lutboost_ties')}")
    return out


def _h03(r: dict) -> list[str]:
    out = []
    summ = r.get("summary", [])
    for model in sorted({s["model"] for s in summ}):
        rows = [s for s in summ if s["model"] == model]
        one = [s for s in rows if abs(s["bits"] - 1.0) < 1e-9 and s["v"] == 4]
        low = min(rows, key=lambda s: s["lut_mean"])
        out.append(f"{model} (fp32 {rows[0]['fp32_mean']:.2f} %): at 1 bit (v=4, c=16) "
                   + ", ".join(f"{s['metric']} {s['lut_mean']:.2f} %" for s in one)
                   + f"; lowest {low['lut_mean']:.2f} % at {low['bits']:.2f} bit ({low['metric']}, v={low['v']}, "
                   f"c={low['c']})")
    return out


def _h04(r: dict) -> list[str]:
    out = [f"ResNet-18 at {r.get('image_size')}x{r.get('image_size')}: {_f(r.get('resnet18_cycles'), ',')} cycles "
           f"({_f(r.get('resnet18_latency_ms'))} ms), lane utilisation {_f(r.get('resnet18_utilization'), '.1%')} "
           f"on the default design, {_f(r.get('balanced_resnet18_utilization'), '.1%')} on the balanced one; "
           f"cycles of a 32x32 INT8 weight-stationary array / the package default's, at the same "
           f"{r.get('lut_offchip_bytes_per_cycle', '?')} B/cycle link: {_f(r.get('dense_over_lut_cycles'))} "
           "(below 1: the dense array is faster)",
           f"double buffering the tables: {_f(r.get('double_buffer_speedup'))}x fewer cycles; LUT-Stationary reloads "
           f"tables {r.get('ls_table_reloads')} times vs {r.get('os_table_reloads')} for output-stationary; the "
           f"fast and per-cycle simulators agree: {r.get('engines_agree')}"]
    return out


def _h05(r: dict) -> list[str]:
    from ..codesign.baselines import PAPER_AREA_RANGE, PAPER_POWER_RANGE

    out = []
    for name, label in (("resnet18", "ResNet-18"), ("bert_base", "BERT-base")):
        b = _get(r, "ratios", name)
        if not b:
            continue
        out.append(f"{label}, the LUT-DLA points with a stored accuracy (the project's small CNNs' records at the "
                   "same metric, v, c: not measured on this model) "
                   f"against equal-area / equal-throughput dense arrays ({b.get('n_ratios')} ratios): power "
                   f"efficiency {_f(b.get('power_eff_ratio_core_min'))}-{_f(b.get('power_eff_ratio_core_max'))}x "
                   f"(core accounting), {_f(b.get('power_eff_ratio_system_min'))}-"
                   f"{_f(b.get('power_eff_ratio_system_max'))}x (system, with DRAM); area efficiency "
                   f"{_f(b.get('area_eff_ratio_min'))}-{_f(b.get('area_eff_ratio_max'))}x; inside the paper's power "
                   f"range (core) {b.get('power_inside_paper_range_core')} of {b.get('n_ratios')}")
        p = _get(r, "ratios_proxy_only", name)
        if p and p.get("n_ratios"):
            out.append(f"{label}, points whose accuracy is only the labelled proxy (not compared with the paper): "
                       f"power efficiency {_f(p.get('power_eff_ratio_core_min'))}-"
                       f"{_f(p.get('power_eff_ratio_core_max'))}x core, {_f(p.get('power_eff_ratio_system_min'))}-"
                       f"{_f(p.get('power_eff_ratio_system_max'))}x system")
    out.append(f"the paper reports {PAPER_POWER_RANGE[0]}-{PAPER_POWER_RANGE[1]}x power and {PAPER_AREA_RANGE[0]}-"
               f"{PAPER_AREA_RANGE[1]}x area efficiency for its own designs and accounting; "
               "docs/hardware-efficiency.md says where ours differ and why")
    return out


def _h06(r: dict) -> list[str]:
    out = []
    mini = r.get("minilm", [])
    for v in sorted({m["v"] for m in mini}):
        rows = [m for m in mini if m["v"] == v]
        out.append(f"MiniLM, all {rows[0].get('layers_converted')} encoder Linears, v={v} "
                   f"({rows[0].get('bits_per_act'):g} bit/activation), INT8 tables, on the project's templated "
                   f"held-out sentences (same templates as the calibration text): mean cosine to fp32 "
                   + ", ".join(f"{m['metric']} {m['quant_mean_cos']:.3f}" for m in rows))
    for h in r.get("heldout_source") or []:
        out.append(f"MiniLM on text from another source ({h.get('text')}, {h.get('n')} sentences; computed by "
                   f"`tools/minilm_heldout_source.py` into `data/reference_results/minilm_heldout_source.json`, "
                   f"not by this notebook), {h.get('metric')}, v={h.get('v')}: mean cosine {h['mean_cos']:.3f}, 5th "
                   f"percentile {h['p05_cos']:.3f}, recall@10 {h['recall10']:.2f}")
    vit = r.get("vit_summary", [])
    seeds = sorted({row["seed"] for row in r.get("vit", []) if "seed" in row})
    noise = next((row.get("fp32_act_noise") for row in r.get("vit", [])), None)
    for v in sorted({s["v"] for s in vit}):
        rows = [s for s in vit if s["v"] == v]
        out.append(f"tiny ViT on 8x8 digits (a toy, not the paper's transformers; seeds {seeds}), v={v}: drop "
                   + ", ".join(f"{s['metric']} {s['drop_pt']:.2f} pt" for s in rows)
                   + (f" (negative: the LUT model is above its fp32 teacher, which was trained with activation noise "
                      f"{noise:g})" if any(s["drop_pt"] < 0 for s in rows) and noise else ""))
    return out


def _h07(r: dict) -> list[str]:
    pts = [p for p in r.get("points", []) if p.get("bits_per_activation") is not None]
    if not pts:
        return []
    lo = min(pts, key=lambda p: p["bits_per_activation"])
    hi = max(pts, key=lambda p: p["bits_per_activation"])
    return [f"{r.get('workload')}, the explorer's default design from {hi['bits_per_activation']:g} to "
            f"{lo['bits_per_activation']:g} bits per activation: tables {hi['table_bytes']:,.0f} -> "
            f"{lo['table_bytes']:,.0f} bytes, power efficiency against an equal-area INT8 array "
            f"{hi['power_eff_ratio_core']:.2f}x -> {lo['power_eff_ratio_core']:.2f}x (core) and "
            f"{hi['power_eff_ratio']:.2f}x -> {lo['power_eff_ratio']:.2f}x (system); accuracy source: "
            f"{lo.get('accuracy_source')}"]


HEADLINES: dict[str, Callable[[dict], list[str]]] = {
    "00_overview": _h00, "01_vector_quantization": _h01, "02_lutboost": _h02, "03_accuracy_vs_bits": _h03,
    "04_simulate_accelerator": _h04, "05_design_space_exploration": _h05, "06_transformers": _h06,
    "07_interactive_explorer": _h07,
}


# ------------------------------------------------------------------------------------------ rendering
def _provenance_line(p: dict) -> str:
    m = p.get("machine", {})
    wall = p.get("wall_seconds")
    wall_s = "n/a" if wall is None else (f"{wall / 60:.0f} min" if wall >= 120 else f"{wall:.0f} s")
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    seeds = p.get("seeds") or []
    dirty = " (uncommitted changes)" if p.get("dirty") else ""
    return (f"FULL run: commit `{(p.get('commit') or 'unknown')[:10]}`{dirty}, {p.get('date_utc', '?')[:10]}, "
            f"`{p.get('command', '?')}`, {wall_s} on {m.get('cpu_count', '?')} x {m.get('cpu', '?')} ({gpus}), "
            f"seeds {seeds}")


def _reuse_note(r: dict) -> str:
    """For resumed runs: how many conversions came from the run cache and what all of them cost to compute."""
    if not r.get("reused_runs"):
        return ""
    total = r.get("run_seconds_total") or 0.0
    return (f"; {r['reused_runs']} of {r.get('runs')} conversions were reused from the run cache "
            "(`data/checkpoints/runs/`: computed earlier by the same functions with the same arguments), all "
            f"{r.get('runs')} took "
            f"{total / 60:.0f} min of compute when they ran")


def load_reference(directory: Path | None = None) -> dict[str, dict]:
    """{notebook: FULL results} for every data/reference_results/NN_name.json that carries provenance."""
    directory = directory or repo_root() / "data" / "reference_results"
    out = {}
    for nb in NOTEBOOKS:
        path = directory / f"{nb}.json"
        if path.exists():
            d = json.loads(path.read_text())
            if _get(d, "provenance", "mode") == "FULL":
                out[nb] = d
    return out


def render(reference: dict[str, dict] | None = None, figures: Path | None = None,
           image_prefix: str = "figures/") -> str:
    """The gallery's markdown (without the markers)."""
    reference = load_reference() if reference is None else reference
    figures = figures or repo_root() / "figures"
    lines = ["Every number and figure below was produced by the FULL run named under its heading and read from "
             "its results file `data/reference_results/NN_name.json` by `lutnb.nb.gallery` "
             "(`python tools/gallery.py` rewrites this block; a test fails when it is stale). Figure numbers are the "
             "paper's, but the paper's figure list was not available to us: each topic is **reconstructed** "
             "(docs/paper.md)."]
    for nb, title in NOTEBOOKS.items():
        lines += ["", f"### {title} (`notebooks/{nb}.ipynb`)", ""]
        if nb not in reference:
            lines.append(NOT_RUN.get(nb, "no FULL result committed yet: the numbers this notebook shows are SMOKE "
                                         "(CI sizes) until `data/reference_results/" + nb + ".json` exists."))
            continue
        r = reference[nb]
        lines.append(_provenance_line(r["provenance"]) + _reuse_note(r))
        lines.append("")
        lines += [f"- {h}" for h in HEADLINES[nb](r)]
        for stem, num, topic, owner in FIGURES:
            if owner != nb:
                continue
            if not (figures / f"{stem}.png").exists():
                lines += ["", f"*Fig. {num}, {topic}: `{stem}.png` is missing.*"]
                continue
            lines += ["", f"**Fig. {num}** (reconstructed topic: {topic}), `{stem}`:", "",
                      f"![{topic}]({image_prefix}{stem}.png)"]
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str | None:
    """The text between the gallery markers of a README, or None."""
    m = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    return None if m is None else m.group(1)


def update_readme(path: Path | None = None, block: str | None = None) -> bool:
    """Rewrite the README's gallery block; True if it changed."""
    path = path or repo_root() / "README.md"
    text = path.read_text()
    if readme_block(text) is None:
        raise ValueError(f"{path} has no gallery block: add the two lines {START} and {END} where it goes")
    new = re.sub(re.escape(START) + r"\n.*?" + re.escape(END), lambda _: f"{START}\n{block or render()}{END}",
                 text, flags=re.S)
    if new != text:
        path.write_text(new)
    return new != text


def orphan_figures(figures: Path | None = None, reference: dict[str, dict] | None = None) -> list[str]:
    """Committed figures (figures/*.png) without a FULL results file of the notebook that makes them."""
    figures = figures or repo_root() / "figures"
    reference = load_reference() if reference is None else reference
    owners = {stem: nb for stem, _, _, nb in FIGURES}
    out = []
    for p in sorted(figures.glob("*.png")):
        nb = owners.get(p.stem)
        if nb is None or nb not in reference:
            out.append(p.name)
    return out
