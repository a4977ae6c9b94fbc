"""lutnb.kernels.numba_kernels equals the torch reference bit for bit: indices and integer accumulators.

Every test runs twice: with the compiled C kernel (lutnb.kernels.compiled, used where it applies: INT8 tables, v <= 4
or Chebyshev) and with LUTNB_CKERNEL=0 (numba kernels only)."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from lutnb.deploy import engine  # noqa: E402
from lutnb.deploy.export import random_layer  # noqa: E402
from lutnb.kernels import dispatch, numba_kernels
from lutnb.vq import quant
from lutnb.vq.distances import METRICS, broadcast_distance, encode  # noqa: E402


@pytest.fixture(params=["compiled", "numba"], autouse=True)
def kernel(request, monkeypatch):
    if request.param == "numba":
        monkeypatch.setenv("LUTNB_CKERNEL", "0")
    else:
        monkeypatch.delenv("LUTNB_CKERNEL", raising=False)
    return request.param


@pytest.fixture
def torch_only(monkeypatch):
    """Context in which lutnb.vq.distances.encode takes the pure torch path."""
    def _ref(fn, *a, **k):
        with monkeypatch.context() as m:
            m.setenv("LUTNB_NATIVE", "0")
            return fn(*a, **k)
    return _ref


def ref_encode(x, cb, metric, torch_only):
    """The torch reference: encode for L1/Chebyshev; argmin of the broadcast sum((x - c)^2) for L2."""
    if metric == "l2":
        return broadcast_distance(x, cb, "l2").argmin(-1)
    return torch_only(encode, x, cb, metric)


def padded(rows, S, v):
    return torch.nn.functional.pad(rows, (0, S * v - rows.shape[1])).reshape(rows.shape[0], S, v)


def test_enabled_and_switch(monkeypatch):
    monkeypatch.delenv("LUTNB_NATIVE", raising=False)
    assert numba_kernels.enabled() and numba_kernels.unavailable_reason() is None
    monkeypatch.setenv("LUTNB_NATIVE", "0")
    assert not numba_kernels.enabled() and "LUTNB_NATIVE" in numba_kernels.unavailable_reason()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", range(6))
def test_fused_equals_torch_random_shapes(metric, seed, torch_only):
    g = torch.Generator().manual_seed(seed)
    r = np.random.default_rng(seed)
    M = int(r.integers(1, 300))
    v = int(r.choice([1, 2, 3, 4, 4, 5, 7, 8, 9, 12, 16, 17]))
    K = int(r.integers(1, 90))  # often not a multiple of v
    c = int(r.integers(1, 20))
    N = int(r.integers(1, 40))
    S = math.ceil(K / v)
    bits = int(r.integers(4, 17))
    qmax = 2 ** (bits - 1) - 1
    rows = torch.randn(M, K, generator=g) * float(r.choice([1e-3, 1.0, 1e3]))
    cb = torch.randn(S, c, v, generator=g)
    tq = torch.randint(-qmax, qmax + 1, (S, c, N), generator=g)
    want = ref_encode(padded(rows, S, v), cb, metric, torch_only)
    for acc_bits in (None, 8, 12, 32, 40):
        idx, acc = dispatch.fused_lut_gemm(rows, cb, tq, metric, acc_bits)
        assert idx.dtype == torch.int64 and acc.dtype == torch.int64
        assert torch.equal(idx, want)
        assert torch.equal(acc, quant.lookup_accumulate_reference(want, tq, acc_bits))
    assert torch.equal(dispatch.encode(padded(rows, S, v), cb, metric), want)
    assert torch.equal(numba_kernels.native_lookup_accumulate(want, tq, 10),
                       quant.lookup_accumulate_reference(want, tq, 10))


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_summation_order_matches_torch_for_every_v(metric, torch_only):
    # wide dynamic range makes float32 sums depend on the order; the native order must be torch's
    g = torch.Generator().manual_seed(7)
    for v in range(1, 34):
        x = torch.rand(200, 3, v, generator=g) * torch.exp(torch.randn(200, 3, v, generator=g) * 5)
        cb = torch.rand(3, 16, v, generator=g) * torch.exp(torch.randn(3, 16, v, generator=g) * 5)
        d = broadcast_distance(x, cb, metric)
        assert torch.equal(dispatch.encode(x, cb, metric), d.argmin(-1)), v


def test_torch_sum_width_found():
    assert numba_kernels.torch_sum_width() in (2, 4, 8, 16, 32)


@pytest.mark.parametrize("metric", METRICS)
def test_ties_take_lowest_index(metric, torch_only):
    g = torch.Generator().manual_seed(3)
    S, v = 5, 4
    base = torch.randint(-3, 4, (S, 3, v), generator=g).float()
    cb = torch.cat([base, base, base[:, :2]], 1)  # every centroid appears at least twice
    x = torch.randint(-3, 4, (500, S, v), generator=g).float()
    want = torch_only(encode, x, cb, metric)
    got = dispatch.encode(x, cb, metric)
    assert torch.equal(got, want)
    assert int(got.max()) < 3  # a duplicate never wins over its first copy


@pytest.mark.parametrize("metric", METRICS)
def test_nan_and_inf_follow_torch_argmin(metric, torch_only):
    x = torch.randn(64, 2, 4)
    cb = torch.randn(2, 6, 4)
    x[0, 0, 1] = float("nan")
    x[1, 1, :] = float("inf")
    cb[0, 3, 2] = float("nan")
    cb[1, 0, :] = float("inf")
    want = broadcast_distance(x, cb, metric).argmin(-1)
    assert torch.equal(dispatch.encode(x, cb, metric), want)
    if metric != "l2":
        assert torch.equal(torch_only(encode, x, cb, metric), want)


@pytest.mark.parametrize("metric", ["l1", "chebyshev"])
def test_encode_dispatch_is_bit_identical(metric, torch_only):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(1000, 7, 4, generator=g)
    cb = torch.randn(7, 16, 4, generator=g)
    assert torch.equal(encode(x, cb, metric), torch_only(encode, x, cb, metric))
    xt = torch.randn(7, 300, 4, generator=g).transpose(0, 1)  # non-contiguous, as calibration passes it
    assert torch.equal(encode(xt, cb, metric), torch_only(encode, xt, cb, metric))


def test_l2_dispatch_differs_from_matmul_expansion_only_at_near_ties(torch_only):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4000, 16, 4, generator=g)
    cb = torch.randn(16, 16, 4, generator=g)
    nat = encode(x, cb, "l2")
    tor = torch_only(encode, x, cb, "l2")
    d = broadcast_distance(x.double(), cb.double(), "l2")
    pick = lambda i: d.gather(-1, i.unsqueeze(-1))[..., 0]  # noqa: E731
    diff = nat != tor
    # where they differ, both choices are within float32 rounding of each other (in exact arithmetic)
    gap = (pick(nat) - pick(tor)).abs()
    assert bool((gap[diff] <= 1e-5 * (1 + pick(tor)[diff])).all())
    assert diff.float().mean() < 1e-3


def test_float64_and_non_cpu_untouched(torch_only):
    x = torch.randn(50, 3, 4, dtype=torch.float64)
    cb = torch.randn(3, 8, 4, dtype=torch.float64)
    assert torch.equal(encode(x, cb, "l1"), torch_only(encode, x, cb, "l1"))


@pytest.mark.parametrize("acc_bits", [8, 9, 16, 31, 32, 33, 48, None])
def test_acc_bits_wrap_cases(acc_bits):
    g = torch.Generator().manual_seed(2)
    S, c, N = 300, 4, 6
    tq = torch.full((S, c, N), 32767)  # sums up to 9.8e6: overflow for narrow accumulators
    tq[:, 1] = -32767
    tq[:, 2] = torch.randint(-32767, 32768, (S, N), generator=g)
    idx = torch.randint(0, c, (70, S), generator=g)
    want = quant.lookup_accumulate_reference(idx, tq, acc_bits)
    assert torch.equal(numba_kernels.native_lookup_accumulate(idx, tq, acc_bits), want)


def test_int64_accumulator_path():
    # S * max|Tq| >= 2**31: int64 accumulators; a wrap to 40 bits must still equal quant.wrap
    S, c, N = 70000, 2, 3
    tq = torch.full((S, c, N), 32767)
    idx = torch.zeros(3, S, dtype=torch.long)
    for acc_bits in (None, 32, 40):
        assert torch.equal(numba_kernels.native_lookup_accumulate(idx, tq, acc_bits),
                           quant.lookup_accumulate_reference(idx, tq, acc_bits))


def test_empty_inputs():
    tq = torch.ones(3, 4, 5, dtype=torch.long)
    idx, acc = dispatch.fused_lut_gemm(torch.zeros(0, 10), torch.randn(3, 4, 4), tq)
    assert idx.shape == (0, 3) and acc.shape == (0, 5)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("acc_bits", [None, 12, 32])
def test_run_layer_native_equals_engine(metric, acc_bits):
    layer = random_layer(K=37, N=11, v=4, c=16, metric=metric, seed=4)
    x = torch.randn(5, 9, 37)
    s1, s2 = engine.EngineStats(), engine.EngineStats()
    want = engine.run_layer(layer, x, acc_bits, "fast", s1)
    got = engine.run_layer_native(layer, x, acc_bits, s2)
    assert torch.equal(got, want)
    assert (s1.rows, s1.lookups, s1.overflows) == (s2.rows, s2.lookups, s2.overflows)


def test_bad_inputs():
    with pytest.raises(ValueError, match="K="):
        dispatch.fused_lut_gemm(torch.zeros(3, 20), torch.randn(3, 4, 4), torch.ones(3, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="acc_bits"):
        dispatch.fused_lut_gemm(torch.zeros(3, 12), torch.randn(3, 4, 4), torch.ones(3, 4, 5, dtype=torch.long),
                              "l2", 3)
    with pytest.raises(IndexError):
        numba_kernels.native_lookup_accumulate(torch.full((2, 3), 4), torch.ones(3, 4, 5, dtype=torch.long))


def test_native_kernels_leave_torch_thread_count_alone():
    """Launching numba's OpenMP layer reset torch's (shared) OpenMP pool to every core: a process at 1 thread
    went on at 2, and later results changed with the order tests ran in (found through a LUTBoost test)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, torch; torch.set_num_threads(1)\n"
            "import lutnb.experiments.zoo  # noqa: F401 (the whole package, as a user's script has it)\n"
            "from test_kernels_compiled import random_layer\n"
            "from lutnb.deploy import engine\n"
            "layer = random_layer(24, 9, 4, 16, metric='l2', seed=4, table_bits=12)  # 12-bit: the numba kernel\n"
            "engine.run_layer(layer, torch.randn(33, 24), 32, impl='native')\n"
            "print(torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent)
    assert out.stdout.strip().splitlines()[-1] == "1"
