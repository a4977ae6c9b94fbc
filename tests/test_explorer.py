"""The interactive explorer's callbacks, driven headlessly by changing widget values."""
import pytest

pytest.importorskip("ipywidgets")

from lutnb.codesign.explorer import Explorer, compute, render  # noqa: E402

# DSE caches stay out of the real results/ folder; toy proxy records stand in for notebook 01's
pytestmark = pytest.mark.usefixtures("seeded_results")


@pytest.fixture(scope="module")
def ex(seeded_results):
    return Explorer()


def test_initial_readout(ex):
    r = ex.result
    assert r["bits_per_activation"] == pytest.approx(1.0)  # v=4, c=16
    assert r["cycles"] > 0 and r["area_mm2"] > 0 and r["power_w"] > 0
    assert "TOPS/W" in ex.html.value and "accuracy source" in ex.html.value


def test_changing_c_updates_bits_and_table_bytes(ex):
    before = dict(ex.result)
    calls = ex.calls
    ex.controls["c"].value = 64
    assert ex.calls == calls + 1
    assert ex.result["bits_per_activation"] == pytest.approx(1.5)  # log2(64)/4
    assert ex.result["table_bytes"] == pytest.approx(4 * before["table_bytes"])  # tables grow linearly in c
    assert f"{ex.result['table_bytes']:,.0f}" in ex.html.value
    ex.controls["c"].value = 16


def test_more_lanes_cost_area_and_fewer_or_equal_cycles(ex):
    base = dict(ex.result)
    ex.controls["lanes"].value = 64
    assert ex.result["area_mm2"] > base["area_mm2"]
    assert ex.result["cycles"] <= base["cycles"]
    ex.controls["lanes"].value = 16


def test_table_bits_change_table_bytes(ex):
    base = dict(ex.result)
    ex.controls["table_bits"].value = 4
    assert ex.result["table_bytes"] == pytest.approx(base["table_bytes"] / 2)
    ex.controls["table_bits"].value = 8


def test_baseline_and_metric_pickers(ex):
    ex.controls["baseline"].value = "fp16"
    vs_fp16 = ex.result["power_eff_ratio"]
    ex.controls["baseline"].value = "int8"
    vs_int8 = ex.result["power_eff_ratio"]
    assert vs_fp16 > vs_int8  # FP16 MACs cost more energy than INT8 ones
    ex.controls["metric"].value = "l2"
    # the seeded proxy table covers (l2, v=4, c=16): the readout must find it and label it a proxy
    assert ex.result["accuracy"] is not None and ex.result["accuracy_source"].startswith("proxy")
    ex.controls["metric"].value = "l1"


def test_invalid_design_is_reported_not_raised():
    html = render({"error": "lanes=0: use lanes >= 1"})
    assert "invalid design" in html and "lanes=0" in html
    with pytest.raises(ValueError, match="unknown explorer parameters"):
        compute(nonsense=1)


@pytest.mark.parametrize("params", [
    {},
    {"v": 2, "c": 64},
    {"workload": "resnet18", "baseline": "fp16", "clock_mhz": 800},
    {"workload": "bert_base", "lanes": 64, "baseline": "int4"},
    {"v": 9, "c": 4, "table_bits": 4},
    {"ccus": 64, "lanes": 1},
])
def test_fast_readout_equals_explore_point(params):
    """The cached baseline matching gives dse.explore_point's answer exactly (the slow, obvious reference)."""
    from lutnb.codesign import dse
    from lutnb.codesign.explorer import defaults

    assert compute(**params) == dse.explore_point(**{**defaults(), **params})


def test_layout_keeps_the_control_column_and_a_readable_slider(ex):
    from lutnb.codesign.explorer import CONTROL_WIDTH

    column, readout = ex.widget.children
    assert column.layout.min_width == CONTROL_WIDTH and column.layout.flex == "0 0 auto"
    assert ex.controls["table_bits"].layout.width == CONTROL_WIDTH
    assert readout.layout.flex == "1 1 auto"
    assert "overflow-wrap:anywhere" in render({"error": "x" * 400})
