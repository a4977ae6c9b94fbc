"""Interactive design-point explorer: ipywidgets pickers wired to `lutnb.codesign.dse.explore_point`.

`Explorer()` builds the widgets; every change calls `Explorer.update()`, which recomputes the design point
and refreshes the readout. `compute` gives `dse.explore_point`'s answer (tested equal) in tens of milliseconds:
the equal-area baseline is found from a cached table of array areas (the area of an n x n array does not depend
on the workload) and only the matched array is evaluated on the workload (cached too); `explore_point` itself
evaluates all 127 candidate arrays on the workload on every call (about 1.3 s). The callbacks are plain
methods, so tests drive them headlessly by setting a widget's `.value` and reading `Explorer.result` and
`Explorer.html.value`.
"""
from __future__ import annotations

import html as _html
import math
from functools import lru_cache

from ..hw import SystolicConfig
from . import cost, dse
from .workloads import get_workload

# (field, label, kind, options or (min, max, step), default)
CONTROLS = (
    ("workload", "workload", "dropdown", ("digits_cnn", "resnet20", "resnet18", "bert_base", "minilm"), "digits_cnn"),
    ("metric", "metric", "dropdown", ("l2", "l1", "chebyshev"), "l1"),
    ("v", "v (sub-vector)", "dropdown", (1, 2, 3, 4, 6, 8, 9), 4),
    ("c", "c (centroids)", "dropdown", (4, 8, 16, 32, 64), 16),
    ("table_bits", "table bits", "int", (4, 16, 1), 8),
    ("ccus", "CCUs", "dropdown", (1, 2, 4, 8, 16, 32, 64), 16),
    ("lanes", "look-up lanes", "dropdown", (1, 2, 4, 8, 16, 32, 64), 16),
    ("table_tile", "table tile Tn", "dropdown", (16, 32, 64, 128, 256), 64),
    ("buffer_kb", "table buffer KB", "dropdown", (4, 8, 16, 32, 64, 128), 32),
    ("acc_buffer_kb", "accumulator buffer KB", "dropdown", (16, 32, 64, 128, 256), 64),
    ("offchip_bytes_per_cycle", "off-chip B/cycle", "dropdown", (4, 8, 16, 32, 64), 16),
    ("clock_mhz", "clock MHz", "dropdown", (200, 500, 800, 1000), 500),
    ("baseline", "baseline", "dropdown", ("int8", "int4", "fp16"), "int8"),
)
ROWS = (
    ("bits_per_activation", "bits per activation", "{:.3f}"),
    ("table_bytes", "table bytes", "{:,.0f}"),
    ("cycles", "cycles", "{:,.0f}"),
    ("latency_ms", "latency (ms)", "{:.4f}"),
    ("area_mm2", "area (mm²)", "{:.3f}"),
    ("power_w", "power (W)", "{:.4f}"),
    ("tops", "TOPS (dense-equivalent)", "{:.4f}"),
    ("tops_per_w", "TOPS/W", "{:.3f}"),
    ("tops_per_mm2", "TOPS/mm²", "{:.3f}"),
    ("baseline", "baseline", "{}"),
    ("power_eff_ratio", "power efficiency vs baseline", "{:.2f}x"),
    ("area_eff_ratio", "area efficiency vs baseline", "{:.2f}x"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_source", "accuracy source", "{}"),
)


CONTROL_WIDTH = "420px"   # 170 px label + a 250 px picker or slider


def defaults() -> dict:
    return {field: default for field, *_, default in CONTROLS}


def warm(workloads=None) -> None:
    """Fill the caches a first change would otherwise fill: workload shapes (a model's forward pass, ~1 s for
    ResNet-18) and the baseline area tables for every baseline and clock the pickers offer."""
    opts = {field: options for field, _, _, options, _ in CONTROLS}
    for name in workloads or opts["workload"]:
        get_workload(name)
    for precision in opts["baseline"]:
        for clock in opts["clock_mhz"]:
            baseline_areas(precision, float(clock), 45.0)


def compute(**params) -> dict:
    """The explorer's model: `dse.explore_point` on the given parameters (missing ones take defaults), fast."""
    values = defaults()
    unknown = set(params) - set(values)
    if unknown:
        raise ValueError(f"unknown explorer parameters {sorted(unknown)}; known: {sorted(values)}")
    values.update(params)
    return explore_point_cached(**values)


# the candidate arrays and SRAM size `dse.matched_baseline` tries by default (n x n, n = 4, 6, ..., 256)
SIZES = tuple(range(4, 257, 2))
BASELINE_SRAM_KB = 64


@lru_cache(maxsize=64)
def baseline_areas(precision: str, clock_mhz: float, node_nm: float) -> tuple:
    """Area (mm^2) of each candidate n x n baseline array: the array `dse.evaluate_baseline` builds (WS, three
    SRAMs of BASELINE_SRAM_KB), whose area does not depend on the workload (tested equal to explore_point)."""
    tech = cost.Tech(node_nm=node_nm)
    cost.check_precision(precision)
    out = []
    for n in SIZES:
        cfg = SystolicConfig(rows=n, cols=n, dataflow="ws", ifmap_sram_kb=BASELINE_SRAM_KB,
                             filter_sram_kb=BASELINE_SRAM_KB, ofmap_sram_kb=BASELINE_SRAM_KB, clock_mhz=clock_mhz)
        out.append(sum(cost.dense_area(cfg, precision, tech).values()))
    return tuple(out)


_SUMMARIES: dict = {}


def matched_baseline_cached(workload, precision: str, target_area: float, clock_mhz: float, tech: cost.Tech,
                            offchip_bytes_per_cycle: float) -> dict:
    """`dse.matched_baseline(..., by="area")`: the first array whose area is closest to the target in log ratio.
    The areas do not depend on the workload (one cached table per precision, clock and node); the matched
    array's summary is cached per (workload, precision, n, clock, node, link)."""
    areas = baseline_areas(precision, float(clock_mhz), float(tech.node_nm))
    gaps = [abs(math.log(a / target_area)) for a in areas]
    n = SIZES[gaps.index(min(gaps))]
    key = (workload, precision, n, float(clock_mhz), float(tech.node_nm), float(offchip_bytes_per_cycle))
    if key not in _SUMMARIES:
        _SUMMARIES[key] = dse.evaluate_baseline(workload, precision, n, n, clock_mhz, BASELINE_SRAM_KB, tech,
                                                offchip_bytes_per_cycle)[0]
    return _SUMMARIES[key]


def explore_point_cached(**params) -> dict:
    """`dse.explore_point` (analytic engine) with the baseline matching cached; same keys, same numbers."""
    return dse.explore_point(**params, engine="analytic", matcher=matched_baseline_cached)


def render(result: dict) -> str:
    """An HTML table of a result (or its error)."""
    if "error" in result:
        return (f"<p style='color:#b00; overflow-wrap:anywhere; margin:0'><b>invalid design:</b> "
                f"{_html.escape(str(result['error']))}</p>")
    rows = []
    for key, label, fmt in ROWS:
        val = result.get(key)
        text = "n/a" if val is None else fmt.format(val)
        rows.append(f"<tr><td>{label}</td><td style='text-align:right'><b>{_html.escape(text)}</b></td></tr>")
    return "<table>" + "".join(rows) + "</table>"


class Explorer:
    """Widgets + callbacks. `display(Explorer().widget)` in JupyterLab; tests set `.controls[name].value`."""

    def __init__(self, prefetch: bool = True, **initial):
        """`initial`: starting widget values; `prefetch`: fill the caches now (a few seconds) so that every
        later change, a first look at another workload, baseline or clock included, stays fast."""
        import ipywidgets as w

        if prefetch:
            warm()
        values = defaults()
        values.update(initial)
        self.controls = {}
        for field, label, kind, opts, _ in CONTROLS:
            style = {"description_width": "170px"}
            layout = w.Layout(width=CONTROL_WIDTH)   # the slider gets the same readable width as the pickers
            if kind == "dropdown":
                ctrl = w.Dropdown(options=list(opts), value=values[field], description=label, style=style,
                                  layout=layout)
            else:
                lo, hi, step = opts
                ctrl = w.IntSlider(value=values[field], min=lo, max=hi, step=step, description=label, style=style,
                                   continuous_update=False, layout=layout)
            ctrl.observe(self._on_change, names="value")
            self.controls[field] = ctrl
        # the readout takes the remaining width and wraps; the control column never shrinks (an error line
        # used to squeeze it to ~50 px)
        self.html = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="260px", max_width="640px"))
        self.calls = 0
        self.result: dict = {}
        column = w.VBox(list(self.controls.values()), layout=w.Layout(flex="0 0 auto", min_width=CONTROL_WIDTH))
        self.widget = w.HBox([column, self.html], layout=w.Layout(align_items="flex-start"))
        self.update()

    def values(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def _on_change(self, change) -> None:
        self.update()

    def update(self) -> dict:
        """Recompute from the current widget values and refresh the readout."""
        self.calls += 1
        self.result = compute(**self.values())
        self.html.value = render(self.result)
        return self.result
