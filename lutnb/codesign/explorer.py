"""Interactive design-point explorer: ipywidgets pickers wired to `lutnb.codesign.dse.explore_point`.

`Explorer()` builds the widgets; every change calls `Explorer.update()`, which recomputes the design point
and refreshes the readout. The callbacks are plain methods, so tests drive them headlessly by setting a
widget's `.value` and reading `Explorer.result` / `Explorer.html.value`.
"""
from __future__ import annotations

import html as _html

from . import dse

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


def defaults() -> dict:
    return {field: default for field, *_, default in CONTROLS}


def compute(**params) -> dict:
    """The explorer's model: `dse.explore_point` on the given parameters (missing ones take defaults)."""
    values = defaults()
    unknown = set(params) - set(values)
    if unknown:
        raise ValueError(f"unknown explorer parameters {sorted(unknown)}; known: {sorted(values)}")
    values.update(params)
    return dse.explore_point(**values)


def render(result: dict) -> str:
    """An HTML table of a result (or its error)."""
    if "error" in result:
        return f"<p style='color:#b00'><b>invalid design:</b> {_html.escape(str(result['error']))}</p>"
    rows = []
    for key, label, fmt in ROWS:
        val = result.get(key)
        text = "n/a" if val is None else fmt.format(val)
        rows.append(f"<tr><td>{label}</td><td style='text-align:right'><b>{_html.escape(text)}</b></td></tr>")
    return "<table>" + "".join(rows) + "</table>"


class Explorer:
    """Widgets + callbacks. `display(Explorer().widget)` in JupyterLab; tests set `.controls[name].value`."""

    def __init__(self, **initial):
        import ipywidgets as w

        values = defaults()
        values.update(initial)
        self.controls = {}
        for field, label, kind, opts, _ in CONTROLS:
            style = {"description_width": "170px"}
            if kind == "dropdown":
                ctrl = w.Dropdown(options=list(opts), value=values[field], description=label, style=style)
            else:
                lo, hi, step = opts
                ctrl = w.IntSlider(value=values[field], min=lo, max=hi, step=step, description=label, style=style,
                                   continuous_update=False)
            ctrl.observe(self._on_change, names="value")
            self.controls[field] = ctrl
        self.html = w.HTML()
        self.calls = 0
        self.result: dict = {}
        self.widget = w.HBox([w.VBox(list(self.controls.values())), self.html])
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
