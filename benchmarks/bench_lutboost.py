"""Benchmark LUTBoost: (1) the full default run on the digits CNN (wall seconds, target <= 60 s on 2 cores),
(2) one VQ training step vs one fp32 step of the same model and batch (ratio, target <= 2x), (3) host syncs per
training step of the joint stage on ResNet-20 (counted with lutnb.runtime.HostSyncCounter: the CPU path, and the
accelerator path, which a GPU runs, forced on this CPU; target 0 per step).

    python benchmarks/bench_lutboost.py [--threads 1] [--metric l1] [--skip-full] [--steps 30] [--syncs-only]

Timings on a shared machine are noisy: the fp32 baseline is timed in the same run, before and after the
VQ steps, and the ratio uses the faster fp32 measurement. Which encode path is active (native fast path
or torch broadcasting) is printed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _step_ms(model, x, y, n: int, extra=None) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def one():
        loss = F.cross_entropy(model(x), y)
        if extra is not None:
            loss = loss + extra(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    best = float("inf")
    for _ in range(3):  # best of three blocks: robust to other processes on the machine
        t = time.perf_counter()
        for _ in range(n):
            one()
        best = min(best, (time.perf_counter() - t) / n * 1e3)
    return best


def encode_path() -> str:
    try:
        from lutnb.kernels import numba_kernels as native
    except ImportError:
        return "torch broadcasting (no lutnb.kernels.numba_kernels)"
    if native.enabled():
        from lutnb.kernels import compiled as ckernel

        if ckernel.available():
            return ("compiled C kernel (lutnb.kernels.compiled: encode, float table look-up and its backward; "
                    "LUTNB_CKERNEL=0 for numba, LUTNB_NATIVE=0 for pure torch)")
        return f"native numba kernel (C kernel off: {ckernel.unavailable_reason()}; LUTNB_NATIVE=0 turns it off)"
    return f"torch broadcasting (native off: {native.unavailable_reason()})"


def print_host_syncs() -> None:
    """Host syncs per joint-stage step of a calibrated ResNet-20 (random CIFAR-shaped data, batch 8): two
    epochs of 2 and 4 steps, so the per-step count is (syncs(4) - syncs(2)) / 2 and the rest is per epoch."""
    import lutnb
    from lutnb import boosting as B
    from lutnb.boosting.steps import epoch_host_syncs
    from lutnb.runtime import sync_free_paths
    from lutnb.zoo.models import resnet20

    os.environ["LUTNB_NATIVE"] = "0"  # the torch path an accelerator runs
    torch.manual_seed(0)
    fp32 = resnet20(10).eval()
    g = torch.Generator().manual_seed(0)
    data = {n: torch.utils.data.TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,)))
            for n in (16, 32)}
    lut = lutnb.convert(fp32, 4, 16, "l1", skip=("conv1",))
    lutnb.calibrate(lut, [data[16].tensors[0]], iters=2)
    n_layers = sum(1 for _ in lutnb.vq.lut_layers(lut))
    st = B.TrainStage("joint", epochs=1, lr=1e-3, recon_weight=1.0, distill_weight=1.0, dead_restart=True,
                      batch_size=8)
    for label, forced in (("CPU path", False), ("accelerator path", True)):
        with sync_free_paths() if forced else contextlib.nullcontext():
            a, b = (epoch_host_syncs(copy.deepcopy(lut), fp32, st, data[n]) for n in (16, 32))
        per_step = (b["syncs"] - a["syncs"]) / (b["steps"] - a["steps"])
        print(f"host syncs, ResNet-20 joint step ({n_layers} LUT layers), {label}: {per_step:g} per step, "
              f"{a['syncs'] - per_step * a['steps']:g} per epoch; calls in 4 steps: {b['calls']}")
    del os.environ["LUTNB_NATIVE"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LUTNB_THREADS", "1")))
    ap.add_argument("--metric", default="l1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--skip-full", action="store_true", help="only the step benchmark")
    ap.add_argument("--syncs-only", action="store_true", help="only the host-sync count")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import lutnb
    from lutnb.boosting import LUTBoostConfig, lutboost
    from lutnb.vq.layers import reconstruction_loss, set_mode
    from lutnb.zoo.data import load_digits
    from lutnb.zoo.train import pretrained

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores; "
          f"encode: {encode_path()}")
    print_host_syncs()
    if args.syncs_only:
        return 0
    data = load_digits(args.seed)
    model = pretrained("digits_cnn", args.seed, progress=False)

    if not args.skip_full:
        t = time.perf_counter()
        _, rep = lutboost(model, data.train, data.val, metric=args.metric, seed=args.seed, test=data.test,
                          progress=False)
        wall = time.perf_counter() - t
        print(rep)
        print(f"FULL LUTBoost digits CNN ({args.metric}, {LUTBoostConfig().total_epochs} epochs): "
              f"{wall:.1f} s wall (target <= 60 s on 2 cores)")

    x, y = data.train.tensors[0][: args.batch_size], data.train.tensors[1][: args.batch_size]
    fp_a = _step_ms(copy.deepcopy(model), x, y, args.steps)
    rows = []
    for metric in ("l2", "l1", "chebyshev"):
        lut = lutnb.convert(model, 4, 16, metric, skip=["conv1"])
        lutnb.calibrate(lut, [x], iters=5)
        for label, mode, kw, extra in (
                ("lut STE (joint stage)", "lut", {"backward": "exact", "track_recon": True}, reconstruction_loss),
                ("quant STE (lut_qat)", "quant", {"backward": "exact", "track_recon": False}, None),
                ("lut soft backward", "lut", {"backward": "soft", "track_recon": False}, None)):
            set_mode(lut, mode, **kw)
            rows.append((metric, label, _step_ms(lut, x, y, args.steps, extra)))
    fp_b = _step_ms(copy.deepcopy(model), x, y, args.steps)
    fp = min(fp_a, fp_b)
    print(f"\nfp32 step (batch {args.batch_size}): {fp_a:.2f} ms before, {fp_b:.2f} ms after -> {fp:.2f} ms")
    print(f"{'metric':<10} {'step':<24} {'ms':>8} {'x fp32':>7}")
    for metric, label, ms in rows:
        print(f"{metric:<10} {label:<24} {ms:>8.2f} {ms / fp:>7.2f}")
    worst = max(ms for _, label, ms in rows if label.startswith("lut STE")) / fp
    print(f"VQ/fp32 step ratio (LUTBoost joint step, worst metric): {worst:.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
