"""LUT layers and LUTBoost on a CUDA GPU: equal to the CPU where they must be, no host syncs per step, strict
deterministic mode, bf16, batched augmentation. The whole module is skipped where no GPU is present."""
import copy
import sys
import warnings
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU on this machine (torch.cuda.is_available() is False)", allow_module_level=True)

import lutnb  # noqa: E402
from lutnb import boosting as B  # noqa: E402
from lutnb import runtime  # noqa: E402
from lutnb.boosting import steps  # noqa: E402
from lutnb.vq import distances as d  # noqa: E402
from lutnb.zoo.data import crop_flip_draws, random_crop_flip, random_crop_flip_reference  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_boosting import _cfg, _data  # noqa: E402

CUDA = torch.device("cuda")


def _to(ds, dev):
    return torch.utils.data.TensorDataset(*(t.to(dev) for t in ds.tensors))


@pytest.mark.parametrize("metric", ["l2", "l1", "chebyshev"])
def test_encode_and_distances_match_cpu(metric):
    g = torch.Generator().manual_seed(0)
    x, cb = torch.randn(5000, 9, 4, generator=g), torch.randn(9, 16, 4, generator=g)
    dc = d.pairwise_distance(x, cb, metric)
    dg = d.pairwise_distance(x.to(CUDA), cb.to(CUDA), metric).cpu()
    assert torch.allclose(dc, dg, atol=1e-4, rtol=1e-5)
    ic, ig = d.encode(x, cb, metric), d.encode(x.to(CUDA), cb.to(CUDA), metric).cpu()
    assert (ic == ig).float().mean() > 0.999  # float near-ties may differ between devices


def test_lut_layer_forward_matches_cpu(trained):
    lut = lutnb.convert(trained, 4, 16, "l2", skip=("conv1",))
    lutnb.calibrate(lut, [_data()[:64][0]])
    x = _data(32, seed=5).tensors[0]
    for mode in ("lut", "quant"):
        lutnb.vq.set_mode(lut, mode)
        with torch.no_grad():
            yc = lut(x)
            yg = copy.deepcopy(lut).to(CUDA)(x.to(CUDA)).cpu()
        assert torch.allclose(yc, yg, atol=1e-3), mode


def test_training_step_has_no_host_sync(trained):
    lut = lutnb.convert(trained, 4, 16, "l2", skip=("conv1",)).to(CUDA)
    lutnb.calibrate(lut, [_data()[:64][0].to(CUDA)])
    st = B.TrainStage("joint", epochs=1, lr=1e-3, recon_weight=1.0, distill_weight=1.0, dead_restart=True,
                      batch_size=16)
    teacher = copy.deepcopy(trained).to(CUDA)
    few = steps.epoch_host_syncs(copy.deepcopy(lut), teacher, st, _to(_data(32), CUDA))
    many = steps.epoch_host_syncs(copy.deepcopy(lut), teacher, st, _to(_data(64), CUDA))
    assert many["syncs"] == few["syncs"], (few, many)

    def cuda_sync_warnings(n):  # CUDA's own count: torch warns at every synchronizing call
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                steps.epoch_host_syncs(copy.deepcopy(lut), teacher, st, _to(_data(n), CUDA))
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(x.message) for x in w)

    assert cuda_sync_warnings(64) == cuda_sync_warnings(32)  # 4 steps sync as often as 2: never per step


def test_lutboost_on_cuda_strict_deterministic_and_resumable(trained, tmp_path):
    kw = dict(stages=_cfg(), seed=0, progress=False, test=_to(_data(60, seed=2), CUDA), deterministic=True)
    model = copy.deepcopy(trained).to(CUDA)
    train, val = _to(_data(), CUDA), _to(_data(48, seed=1), CUDA)
    a, rep_a = B.lutboost(model, train, val, **kw)
    b, _ = B.lutboost(model, train, val, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    def stop(name, *_):
        if name == "joint":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        B.lutboost(model, train, val, checkpoint_dir=tmp_path, callback=stop, **kw)
    c, rep_c = B.lutboost(model, train, val, checkpoint_dir=tmp_path, resume=True, **kw)
    assert rep_c.resumed_from is not None
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert rep_c.final_acc == rep_a.final_acc


def test_bf16_autocast_on_cuda(trained):
    model = copy.deepcopy(trained).to(CUDA)
    kw = dict(stages=_cfg(), seed=0, progress=False, test=_to(_data(60, seed=2), CUDA))
    _, r32 = B.lutboost(model, _to(_data(), CUDA), _to(_data(48, seed=1), CUDA), **kw)
    _, r16 = B.lutboost(model, _to(_data(), CUDA), _to(_data(48, seed=1), CUDA), amp="bf16", **kw)
    assert abs(r32.final_acc - r16.final_acc) <= 2.0


def test_chunk_budget_reads_free_memory():
    d.reset_chunk_budget()
    free = torch.cuda.mem_get_info()[0]
    assert d.chunk_budget(CUDA) == min(max(free // 8, 32 * 2**20), 4 * 2**30)


def test_batched_augmentation_on_cuda_matches_reference():
    x = torch.randn(16, 3, 32, 32, device=CUDA)
    draws = crop_flip_draws(16, 4, torch.Generator(device=CUDA).manual_seed(0))
    assert draws[0].is_cuda
    assert torch.equal(random_crop_flip(x, 4, draws=draws).cpu(), random_crop_flip_reference(x.cpu(), 4,
                                                                                           [t.cpu() for t in draws]))


def test_rng_state_has_cuda():
    torch.cuda.init()
    st = runtime.rng_state()
    assert len(st["cuda"]) == torch.cuda.device_count()
    a = torch.rand(3, device=CUDA)
    runtime.set_rng_state(st)
    assert torch.equal(torch.rand(3, device=CUDA), a)
