"""lutnb.kernels.compiled (the compiled fused encode + int8 look-up) equals the torch reference bit for bit.

Both builds of the C source are checked: the SIMD one (AVX-512 where this CPU has it) and the portable one
(-DLUTNB_PORTABLE, plain loops), on random shapes with ties, NaN, inf, K not a multiple of v, c > 16, M not
a multiple of the row block, and every accumulator wrap."""
import numpy as np
import pytest
import torch

from lutnb.deploy import engine
from lutnb.deploy.export import random_layer
from lutnb.kernels import compiled as ckernel
from lutnb.vq import quant
from lutnb.vq.distances import broadcast_distance

pytest.importorskip("numba")
if ckernel.load() is None:  # pragma: no cover - only without a C compiler
    pytest.skip(f"C kernel unavailable: {ckernel.unavailable_reason()}", allow_module_level=True)

BUILDS = ["simd", "portable"]


def lib_for(build):
    return ckernel.load(portable=build == "portable")


def reference_idx(rows, cb, metric):
    """Torch: argmin over centroids of the broadcast distance of the zero-padded rows (lowest index on ties)."""
    S, c, v = cb.shape
    x = torch.nn.functional.pad(torch.from_numpy(rows), (0, S * v - rows.shape[1])).reshape(-1, S, v)
    return broadcast_distance(x, torch.from_numpy(cb), metric).argmin(-1)


def random_case(seed):
    r = np.random.default_rng(seed)
    metric = ["l2", "l1", "chebyshev"][seed % 3]
    v = int(r.integers(1, 5)) if metric != "chebyshev" else int(r.choice([1, 3, 4, 9, 17]))
    c = int(r.choice([2, 3, 8, 16, 16, 17, 32]))
    M, S, N = int(r.integers(1, 200)), int(r.integers(1, 40)), int(r.integers(1, 20))
    K = S * v - int(r.integers(0, v))
    rows = r.standard_normal((M, K)).astype(np.float32)
    cb = r.standard_normal((S, c, v)).astype(np.float32)
    if seed % 4 == 0:  # integer-valued data: many exact ties
        rows, cb = np.round(rows), np.round(cb)
    if seed % 5 == 0:  # NaN and inf in the inputs and one centroid at inf (inf - inf = NaN distances)
        rows[r.random(rows.shape) < 0.03] = np.nan
        rows[r.random(rows.shape) < 0.03] = -np.inf
        cb[0, 1] = np.inf
    tq = r.integers(-127, 128, (S, c, N)).astype(np.int8)
    return metric, rows, cb, tq


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("seed", range(30))
def test_fused_equals_reference(build, seed):
    lib = lib_for(build)
    metric, rows, cb, tq = random_case(seed)
    want = reference_idx(rows, cb, metric)
    assert np.array_equal(ckernel.encode(rows, cb, metric, lib=lib), want.numpy())
    for acc_bits in (None, 32, 16, 9):
        wrap_bits = acc_bits if acc_bits is not None and acc_bits < 32 else 0
        idx, acc = ckernel.fused(rows, cb, tq, metric, wrap_bits, lib=lib)
        assert np.array_equal(idx, want.numpy())
        ref = quant.lookup_accumulate_reference(want, torch.from_numpy(tq.astype(np.int64)), acc_bits)
        assert np.array_equal(acc, ref.numpy())
    # dequantized output in the same pass equals quant.dequantize
    scale = np.random.default_rng(seed).random(tq.shape[2]).astype(np.float32) + 1e-3
    bias = np.random.default_rng(seed + 1).standard_normal(tq.shape[2]).astype(np.float32)
    for b in (bias, None):
        _, y = ckernel.fused(rows, cb, tq, metric, 12, lib=lib, scale=scale, bias=b, need_idx=False)
        want_y = quant.dequantize(quant.lookup_accumulate_reference(want, torch.from_numpy(tq.astype(np.int64)), 12),
                                  torch.from_numpy(scale), None if b is None else torch.from_numpy(b))
        assert torch.equal(torch.from_numpy(y), want_y)


def test_simd_level_and_builds_differ():
    simd, port = ckernel.load(), ckernel.load(portable=True)
    assert ckernel.simd_level(port) == 0
    assert ckernel.simd_level(simd) in (0, 1, 2)
    assert ckernel.library_path(False) != ckernel.library_path(True)


def test_pack_t4_layout():
    r = np.random.default_rng(0)
    tq = r.integers(-127, 128, (6, 13, 7)).astype(np.int8)
    t4 = ckernel.pack_t4(tq)
    assert t4.shape == (2, 8, 64)
    for s in range(6):
        for j in range(13):
            for n in range(7):
                assert t4[s // 4, n, 16 * (s % 4) + j] == tq[s, j, n]
    assert not t4[1, :, 32:].any() and not t4[:, 7].any() and not t4[:, :, 13:16].any()
    with pytest.raises(ValueError, match="c <= 16"):
        ckernel.pack_t4(np.zeros((1, 17, 1), np.int8))


def test_empty_inputs():
    cb = np.zeros((3, 4, 2), np.float32)
    tq = np.ones((3, 4, 5), np.int8)
    idx, acc = ckernel.fused(np.zeros((0, 6), np.float32), cb, tq, "l2", 0)
    assert idx.shape == (0, 3) and acc.shape == (0, 5)
    _, y = ckernel.fused(np.zeros((0, 6), np.float32), cb, tq, "l2", 0, scale=np.ones(5, np.float32))
    assert y.shape == (0, 5)


def test_threads_split_rows_identically():
    metric, rows, cb, tq = random_case(7)
    rows = np.tile(rows, (20, 1))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ckernel.fused(rows, cb, tq, metric, 0)
        torch.set_num_threads(2)
        two = ckernel.fused(rows, cb, tq, metric, 0)
    finally:
        torch.set_num_threads(old)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


def test_missing_compiler_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTNB_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(RuntimeError, match="no C compiler.*install gcc or set CC"):
        ckernel.build()


def test_switch_off_falls_back_to_numba(monkeypatch):
    layer = random_layer(40, 12, 4, 16, metric="l1", seed=3)
    x = torch.randn(70, 40)
    fast = engine.run_layer(layer, x, 16, impl="fast")
    assert torch.equal(engine.run_layer(layer, x, 16, impl="native"), fast)  # compiled kernel
    monkeypatch.setenv("LUTNB_CKERNEL", "0")
    assert not ckernel.enabled() and "LUTNB_CKERNEL=0" in ckernel.unavailable_reason()
    layer.runtime_cache.clear()
    assert torch.equal(engine.run_layer(layer, x, 16, impl="native"), fast)  # numba kernel


def test_wide_tables_use_numba_and_agree():
    """16-bit tables do not fit the int8 kernel: layer_output declines and the engine still agrees."""
    layer = random_layer(24, 9, 4, 16, metric="l2", seed=4, table_bits=12)
    x = torch.randn(33, 24)
    assert engine.layer_output(layer, x, 32) is None
    assert torch.equal(engine.run_layer(layer, x, 32, impl="native"), engine.run_layer(layer, x, 32, impl="fast"))


@pytest.mark.parametrize("build", BUILDS)
def test_lookup_table_sum_and_scatter_equal_torch(build):
    lib = lib_for(build)
    r = np.random.default_rng(5)
    for _ in range(15):
        S, c, N, M = (int(x) for x in (r.integers(1, 40), r.integers(2, 33), r.integers(1, 140), r.integers(0, 300)))
        idx = r.integers(0, c, (M, S))
        tq = r.integers(-127, 128, (S, c, N)).astype(np.int8)
        ti = torch.from_numpy(idx)
        want = quant.lookup_accumulate_reference(ti, torch.from_numpy(tq.astype(np.int64)), 12)
        assert np.array_equal(ckernel.lookup(idx, tq, 12, lib=lib), want.numpy())
        T, b, dy = torch.randn(S, c, N), torch.randn(N), torch.randn(M, N)
        ref = T[torch.arange(S), ti].sum(1) + b if M else torch.zeros(0, N)
        assert torch.allclose(ckernel.table_sum(ti, T, b, lib=lib), ref, atol=1e-4)
        flat = (ti + torch.arange(S) * c).reshape(-1)
        G = torch.zeros(S * c, N).index_add_(0, flat, dy.repeat_interleave(S, 0)).reshape(S, c, N)
        assert torch.allclose(ckernel.table_scatter(ti, dy, S, c, lib=lib), G, atol=1e-4)
    with pytest.raises(IndexError, match="indices must be in"):
        ckernel.lookup(np.full((2, 3), 9), np.zeros((3, 4, 2), np.int8), 0, lib=lib)


@pytest.mark.parametrize("metric", ["l2", "chebyshev"])
def test_ste_training_step_same_with_and_without_compiled_kernel(metric, monkeypatch):
    """The compiled table look-up in the STE path gives the torch path's outputs and gradients (to rounding)."""
    import lutnb
    from lutnb.vq.layers import reconstruction_loss

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 5 * 5, 6))
    x = torch.randn(4, 3, 5, 5)
    lut = lutnb.convert(model, 4, 16, metric)
    lutnb.calibrate(lut, [x], iters=3)
    grads = []
    for env in ("1", "0"):
        monkeypatch.setenv("LUTNB_CKERNEL", env)
        m = __import__("copy").deepcopy(lut)
        lutnb.set_mode(m, "lut", backward="exact", track_recon=True)
        out = m(x)
        (out.square().mean() + reconstruction_loss(m)).backward()
        grads.append((out.detach(), [p.grad.clone() for p in m.parameters()]))
    (o1, g1), (o0, g0) = grads
    assert torch.allclose(o1, o0, atol=1e-5)
    for a, b in zip(g1, g0):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
