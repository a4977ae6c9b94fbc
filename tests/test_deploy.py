import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lutnb
from lutnb.deploy import engine
from lutnb.deploy.export import export_tables, load_tables, random_layer, read_hex, save_tables, write_hex
from lutnb.vq.quant import lookup_accumulate, lookup_accumulate_reference, quantize_tables, wrap

try:
    import numba  # noqa: F401

    NATIVE = True
except ImportError:  # the fused kernel is optional
    NATIVE = False


def _model(kind, cin, cout, k, stride, padding, dilation, hidden):
    if kind == "conv":
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation),
                             nn.ReLU(), nn.Conv2d(cout, hidden, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(hidden, 3))
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, 3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["conv", "mlp"]), cin=st.integers(1, 6), cout=st.integers(1, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       hidden=st.integers(1, 9), v=st.integers(1, 5), c=st.sampled_from([2, 4, 16]),
       metric=st.sampled_from(["l2", "l1", "chebyshev"]), bits=st.integers(4, 16),
       layout=st.sampled_from(["channel", "patch"]), acc_bits=st.sampled_from([None, 12, 16, 32]),
       seed=st.integers(0, 1000))
def test_integer_engine_equals_quantized_lut_mode(kind, cin, cout, k, stride, padding, dilation, hidden, v, c,
                                                  metric, bits, layout, acc_bits, seed):
    torch.manual_seed(seed)
    model = _model(kind, cin, cout, k, stride, padding, dilation, hidden)
    x = torch.randn(3, cin, 7, 7) if kind == "conv" else torch.randn(11, cin)
    lm = lutnb.convert(model, v=v, c=c, metric=metric, table_bits=bits, layout=layout)
    lutnb.calibrate(lm, [x])
    lutnb.set_mode(lm, "quant", acc_bits=acc_bits)
    lm.eval()
    with torch.no_grad():
        want = lm(x)
    fast = engine.IntegerEngine(lm, acc_bits=acc_bits)(x)
    ref = engine.IntegerEngine(lm, acc_bits=acc_bits, impl="reference")(x)
    assert torch.equal(fast, want)
    assert torch.equal(ref, want)
    if NATIVE:
        assert torch.equal(engine.IntegerEngine(lm, acc_bits=acc_bits, impl="native")(x), want)


def test_engine_through_npz_file_and_overflow_counter(tmp_path):
    torch.manual_seed(0)
    model = _model("conv", 3, 8, 3, 1, 1, 1, 16)
    x = torch.randn(4, 3, 8, 8)
    lm = lutnb.convert(model, v=4, c=16, metric="chebyshev")
    lutnb.calibrate(lm, [x])
    lutnb.set_mode(lm, "quant")
    lm.eval()
    path = save_tables(export_tables(lm), tmp_path / "tables.npz")
    loaded = load_tables(path)
    eng = engine.IntegerEngine(lm, exported=loaded, count_overflows=True)
    with torch.no_grad():
        assert torch.equal(eng(x), lm(x))
    assert eng.stats.overflows == 0 and eng.stats.rows > 0
    narrow = engine.IntegerEngine(lm, exported=loaded, acc_bits=8, count_overflows=True)
    narrow(x)
    assert narrow.stats.overflows > 0  # an 8-bit accumulator wraps


def test_npz_round_trip_is_exact(tmp_path):
    layer = random_layer(K=37, N=9, v=4, c=16, metric="l1", table_bits=12, seed=1, name="a.b")
    from lutnb.deploy.export import ExportedModel

    path = save_tables(ExportedModel({"a.b": layer}), tmp_path / "t")
    assert path.suffix == ".npz"
    back = load_tables(path)["a.b"]
    assert back.meta() == layer.meta()
    for f in ("codebooks", "table_q", "scale", "bias"):
        assert np.array_equal(getattr(back, f), getattr(layer, f)), f
    assert back.table_q.dtype == np.int16 and back.S == 10 and back.K_padded == 40


def test_load_refuses_foreign_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a lutnb tables file"):
        load_tables(tmp_path / "x.npz")


def test_hex_files_round_trip(tmp_path):
    layer = random_layer(K=8, N=3, v=4, c=4, table_bits=6, seed=2, name="fc")
    from lutnb.deploy.export import ExportedModel

    files = write_hex(ExportedModel({"fc": layer}), tmp_path)
    names = {p.name for p in files}
    assert names == {"fc.table.hex", "fc.codebook.hex", "fc.json"}
    text = (tmp_path / "fc.table.hex").read_text().split()
    assert len(text) == 2 * 4 * 3 and all(len(t) == 2 for t in text)  # ceil(6/4) = 2 hex digits
    assert np.array_equal(read_hex(tmp_path / "fc.table.hex", 6), layer.table_q.reshape(-1))
    cb = read_hex(tmp_path / "fc.codebook.hex", 8)
    assert cb.shape == (2 * 4 * 4,) and np.abs(cb).max() == 127


@pytest.mark.parametrize("acc_bits", [None, 8, 10, 32])
def test_fast_lookup_equals_reference(acc_bits):
    g = torch.Generator().manual_seed(0)
    tq = torch.randint(-127, 128, (30, 16, 7), generator=g)
    idx = torch.randint(0, 16, (50, 30), generator=g)
    assert torch.equal(lookup_accumulate(idx, tq, acc_bits), lookup_accumulate_reference(idx, tq, acc_bits))


def test_float64_path_for_large_sums():
    # S * qmax >= 2**24 forces the float64 flat table; sums stay exact
    g = torch.Generator().manual_seed(0)
    tq = torch.randint(-32767, 32768, (600, 4, 3), generator=g)
    idx = torch.randint(0, 4, (9, 600), generator=g)
    assert torch.equal(lookup_accumulate(idx, tq), lookup_accumulate_reference(idx, tq))


def test_wrap_is_twos_complement():
    x = torch.tensor([127, 128, -129, 255, 256, -1])
    assert wrap(x, 8).tolist() == [127, -128, 127, -1, 0, -1]


def test_quantization_scheme():
    t = torch.tensor([[[0.5, 0.0], [-1.0, 0.0]]])  # (S=1, c=2, N=2)
    tq, scale = quantize_tables(t, 8)
    assert scale.tolist() == pytest.approx([1 / 127, 1.0])
    assert tq[0, :, 0].tolist() == [64, -127] and tq[0, :, 1].tolist() == [0, 0]


def test_security_torch_load_uses_weights_only():
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for p in list((root / "lutnb").rglob("*.py")) + list((root / "benchmarks").rglob("*.py")):
        for call in re.findall(r"torch\.load\(([^)]*)\)", p.read_text()):
            if "weights_only=True" not in call:
                offenders.append(f"{p.name}: torch.load({call})")
    assert not offenders, offenders
