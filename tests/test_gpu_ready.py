"""The accelerator code paths, checked on CPU: host syncs per training step (counted), the sync-free path
equal to the CPU path, device-sized distance chunks (fake free memory), bf16 autocast within a stated
tolerance, the CUDA RNG in the resume state (fake CUDA), strict deterministic mode, batched augmentation."""
import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from test_boosting import Tiny, _cfg, _data

import lutnb
from lutnb import boosting as B
from lutnb import runtime
from lutnb.boosting import steps
from lutnb.vq import distances as d
from lutnb.vq.checks import nan_rows
from lutnb.zoo.data import BatchCropFlip, crop_flip_draws, random_crop_flip, random_crop_flip_reference
from lutnb.zoo.train import fit


@pytest.fixture(scope="module")
def calibrated(trained):
    lut = lutnb.convert(trained, 4, 16, "l2", skip=("conv1",))
    lutnb.calibrate(lut, [_data()[:64][0]])
    return lut


JOINT = B.TrainStage("joint", epochs=1, lr=1e-3, recon_weight=1.0, distill_weight=1.0, dead_restart=True,
                     batch_size=16)


def test_training_step_has_no_host_sync_on_the_accelerator_path(calibrated, trained, monkeypatch):
    monkeypatch.setenv("LUTNB_NATIVE", "0")  # the torch path an accelerator runs (no numba/C on CPU arrays)
    counts = {}
    for n in (32, 64):  # 2 and 4 steps
        with runtime.sync_free_paths():
            counts[n] = steps.epoch_host_syncs(copy.deepcopy(calibrated), trained, JOINT, _data(n))
        cpu = steps.epoch_host_syncs(copy.deepcopy(calibrated), trained, JOINT, _data(n))
        assert cpu["syncs"] > counts[n]["syncs"]  # the CPU path reads values freely (free there)
    assert counts[32]["steps"] == 2 and counts[64]["steps"] == 4
    # twice the steps, the same syncs: none per step; the rest are once per epoch (the loss sums, the
    # non-finite count) or once per layer (its calibrated flag, read once and cached)
    assert counts[64]["syncs"] == counts[32]["syncs"] <= 2 + 2 * 2


def test_host_sync_counter_counts_reads_and_ignores_host_tensors():
    x = torch.ones(3)
    with runtime.HostSyncCounter() as c:
        bool(x.any()), x.sum().item(), float(x.sum()), x.cpu(), x.to("cpu"), x.tolist()
        torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    assert c.calls == {"__bool__": 1, "item": 1, "__float__": 1, "cpu": 1, "tolist": 1}


def test_sync_free_path_gives_the_cpu_result(trained):
    kw = dict(stages=_cfg(), seed=0, progress=False, test=_data(30, seed=2))
    lut_a, rep_a = B.lutboost(trained, _data(), _data(48, seed=1), **kw)
    with runtime.sync_free_paths():
        lut_b, rep_b = B.lutboost(trained, _data(), _data(48, seed=1), **kw)
    a, b = lut_a.state_dict(), lut_b.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rep_a.to_dict()["stages"][2]["history"][0]["loss"] == rep_b.to_dict()["stages"][2]["history"][0]["loss"]


def test_nan_rows_same_on_both_paths():
    rows = torch.randn(6, 5)
    rows[2, 1] = float("nan")
    rows[4, 0] = float("inf")
    y = torch.randn(6, 3)
    with runtime.sync_free_paths():
        fast = nan_rows(y, rows)
    assert torch.equal(torch.isnan(fast), torch.isnan(nan_rows(y, rows)))
    assert torch.isnan(fast[[2, 4]]).all() and not torch.isnan(fast[[0, 1, 3, 5]]).any()


def test_nonfinite_loss_raises_at_epoch_end_on_the_accelerator_path(calibrated, trained):
    bad = B.TrainStage("joint", epochs=1, lr=1e-3, batch_size=16)
    x, y = _data(32).tensors
    x = x.clone()
    x[3] = float("nan")
    with runtime.sync_free_paths(), pytest.raises(FloatingPointError, match="non-finite in 1 step"):
        steps.epoch_host_syncs(copy.deepcopy(calibrated), trained, bad, torch.utils.data.TensorDataset(x, y))


def test_chunk_budget_from_fake_device_memory(monkeypatch):
    d.reset_chunk_budget()
    gib = 2**30
    free = {"cuda:0": 80 * gib, "cuda:1": 1 * gib, "cuda:2": 100 * 2**20}
    monkeypatch.setattr(d, "_free_bytes", lambda dev: free.get(str(dev)))
    assert d.chunk_budget("cpu") == 32 * 2**20
    assert d.chunk_budget("cuda:0") == 4 * gib  # an eighth of 80 GiB, capped
    assert d.chunk_budget("cuda:1") == gib // 8
    assert d.chunk_budget("cuda:2") == 32 * 2**20  # never below the CPU budget
    assert d.chunk_budget("mps") == 256 * 2**20  # no free-memory query: a fixed budget
    free["cuda:0"] = 1  # cached: measured once per device
    assert d.chunk_budget("cuda:0") == 4 * gib
    # ResNet-20's first stage at batch 128 (L1, v=4, c=16, S=36): 37 chunks on CPU, one on a large GPU
    M, S = 128 * 32 * 32, 36
    assert -(-M // d.rows_per_chunk(S, 16, 4, 4, "cpu")) == 37
    assert -(-M // d.rows_per_chunk(S, 16, 4, 4, "cuda:0")) == 1
    d.reset_chunk_budget()


def test_distances_equal_whatever_the_chunk(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x, cb = torch.randn(300, 3, 4, generator=g), torch.randn(3, 8, 4, generator=g)
    want = {m: d.pairwise_distance(x, cb, m) for m in ("l1", "chebyshev")}
    monkeypatch.setattr(d, "chunk_budget", lambda device="cpu": 4 * 3 * 8 * 4 * 7)  # 7 rows per chunk
    for m, w in want.items():
        assert torch.equal(d.pairwise_distance(x, cb, m), w)


def test_bf16_autocast_matches_float32_within_tolerance(trained):
    """Tolerance (bf16 has an 8-bit mantissa): every epoch's loss within 5 % relative, final INT8 test
    accuracy within 2 pt, the float weights within 1e-2 absolute (measured: 1.3 %, 0 pt, 2e-3). Codebooks are
    not compared entry by entry: a centroid that is restarted or loses a tie moves far (measured: 1.2)."""
    kw = dict(stages=_cfg(), seed=0, progress=False, test=_data(60, seed=2))
    lut32, rep32 = B.lutboost(trained, _data(), _data(48, seed=1), **kw)
    lut16, rep16 = B.lutboost(trained, _data(), _data(48, seed=1), amp="bf16", **kw)
    for s32, s16 in zip(rep32.stages, rep16.stages):
        for h32, h16 in zip(s32.history, s16.history):
            assert h16["loss"] == pytest.approx(h32["loss"], rel=0.05)
    assert abs(rep32.final_acc - rep16.final_acc) <= 2.0
    a, b = lut32.state_dict(), lut16.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # bf16 really ran
    for k in a:
        if k.endswith("weight") or k.endswith("bias"):
            assert float((a[k] - b[k]).abs().max()) <= 1e-2, k
    with pytest.raises(ValueError, match="amp='fp16'"):
        B.lutboost(trained, _data(), None, amp="fp16", progress=False)


def test_lut_layer_accepts_autocast_inputs(calibrated):
    x = torch.randn(4, 1, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = calibrated(x)
    assert torch.isfinite(y).all()
    with pytest.raises(TypeError, match="cast the input"):
        calibrated.conv2(torch.randn(4, 8, 6, 6).bfloat16())  # outside autocast: the dtype check stands


def test_gather_cross_entropy_equals_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (7,), generator=g)
    a = F.cross_entropy(logits, y)
    (ga,) = torch.autograd.grad(a, logits)
    b = steps.cross_entropy_gather(logits, y)
    (gb,) = torch.autograd.grad(b, logits)
    assert float(a.detach()) == pytest.approx(float(b.detach()), abs=1e-6) and torch.allclose(ga, gb, atol=1e-7)


def test_rng_state_round_trips_cuda_generators_fake(monkeypatch):
    store = {"cuda": [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [t.clone() for t in store["cuda"]])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: store.update(cuda=list(states)))
    st = runtime.rng_state()
    assert [t.tolist() for t in st["cuda"]] == [[1, 2], [3, 4]]
    a = torch.rand(3)
    store["cuda"] = [torch.zeros(2, dtype=torch.uint8)] * 2
    runtime.set_rng_state(st)
    assert torch.equal(torch.rand(3), a) and [t.tolist() for t in store["cuda"]] == [[1, 2], [3, 4]]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # another machine: CUDA state left alone
    store["cuda"] = [torch.zeros(2, dtype=torch.uint8)]
    runtime.set_rng_state(st)
    assert store["cuda"][0].tolist() == [0, 0]


def test_deterministic_mode_strict_on_cuda_warn_on_cpu(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with runtime.deterministic_mode(True, "cpu"):
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    import os

    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with runtime.deterministic_mode(True, "cuda"):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    with runtime.deterministic_mode("warn", "cuda"):
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    after = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    assert after == before
    with pytest.raises(ValueError, match="deterministic='yes'"):
        runtime.deterministic_mode("yes")


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_batched_crop_flip_equals_per_sample_reference(pad):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 3, 8, 6, generator=g)
    draws = crop_flip_draws(9, pad, torch.Generator().manual_seed(5))
    assert draws[1].any() and (~draws[1]).any()  # both flipped and unflipped samples
    assert torch.equal(random_crop_flip(x, pad, draws=draws), random_crop_flip_reference(x, pad, draws))
    # the generator route draws the same numbers
    assert torch.equal(random_crop_flip(x, pad, torch.Generator().manual_seed(5)),
                       random_crop_flip_reference(x, pad, draws))
    with pytest.raises(ValueError, match="generator="):
        random_crop_flip(x, pad)


def test_fit_applies_batch_transform_deterministically():
    def run():
        torch.manual_seed(0)
        m = Tiny()
        seen = []
        aug = BatchCropFlip(pad=1, seed=7)
        fit(m, _data(64), epochs=1, lr=1e-2, batch_size=32, progress=False,
            batch_transform=lambda x: seen.append(aug(x)) or seen[-1])
        return m.state_dict(), seen

    (a, sa), (b, sb) = run(), run()
    assert len(sa) == 2 and all(torch.equal(p, q) for p, q in zip(sa, sb))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_full_recipe_refused_on_cpu_unless_allowed():
    from lutnb.experiments.cifar import FullOnCPUError, check_full_device

    with pytest.raises(FullOnCPUError, match="ALLOW_CPU = True.*--allow-cpu"):
        check_full_device(True, "cpu")
    check_full_device(True, "cpu", allow_cpu=True)
    check_full_device(False, "cpu")  # SMOKE runs anywhere
    check_full_device(True, "cuda")


def test_fp32_model_trained_once_and_shared_one_results_file_per_metric(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from lutnb.experiments import cifar

    calls = []
    monkeypatch.setattr(cifar, "fit", lambda model, *a, **k: calls.append(k["batch_transform"]))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    ds = torch.utils.data.TensorDataset(x, y)
    data = SimpleNamespace(train=ds, val=ds, test=ds, num_classes=10)
    m1, s1 = cifar.train_fp32(data, fp32_epochs=3, seed=1, device="cpu", checkpoint_dir=tmp_path, progress=False)
    m2, s2 = cifar.train_fp32(data, fp32_epochs=3, seed=1, device="cpu", checkpoint_dir=tmp_path, progress=False)
    assert len(calls) == 1 and isinstance(calls[0], BatchCropFlip)  # trained once, with batched augmentation
    assert s1 > 0 and s2 == 0.0
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert cifar.fp32_checkpoint(tmp_path, 1, 3, 8).exists()
    assert [cifar.results_name(m, 4, 16, 0) for m in ("l2", "l1")] == ["full_cifar_resnet20_l2_v4_c16_seed0",
                                                                       "full_cifar_resnet20_l1_v4_c16_seed0"]


def test_fit_sync_free_path_gives_the_cpu_result():
    def run(forced):
        torch.manual_seed(0)
        m = Tiny()
        with runtime.sync_free_paths() if forced else contextlib.nullcontext():
            hist = fit(m, _data(64), _data(32, seed=1), epochs=2, lr=1e-2, batch_size=16, progress=False)
        return m.state_dict(), hist

    (a, ha), (b, hb) = run(False), run(True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]
    assert [h["val_acc"] for h in ha] == [h["val_acc"] for h in hb]
