"""Benchmark: one LUT layer on the integer engine vs the dense fp32 matmul of the same layer.

Layer: M=4096 rows, K=576, N=64, v=4, c=16 (the foundation issue's goal: LUT path no slower than dense,
i.e. ratio dense_ms / lut_ms >= 1.0). For every metric it times, interleaved in the same run, best of N:

  dense        torch  x @ W.T  (fp32, the same layer as a plain matmul)
  torch-fast   lutnb.deploy.engine.encode_rows (pure torch encode, LUTNB_NATIVE=0) + lookup_accumulate(impl="fast")
  native       lutnb.deploy.engine.layer_rows: fused encode + int32 look-up-accumulate, indices and accumulators
               returned (the compiled C kernel, lutnb.kernels.compiled, where it applies; numba otherwise)
  native-layer lutnb.deploy.engine.run_layer_native: the whole layer (im2col, fused kernel, dequantize); with the
               C kernel encode, look-up and dequantize run in one pass
  numba-layer  the same with LUTNB_CKERNEL=0 (numba kernels only), for comparison

At 2 threads on a 2-core machine, run with OMP_WAIT_POLICY=PASSIVE for stable numbers: with libgomp's default
active wait, torch's idle OpenMP workers keep spinning after the dense matmul and take a core from the C
kernel's threads (measured here: ratios scattered from 0.6 to 1.3 between runs, against 1.23-1.34 with PASSIVE,
where dense is 5-10 % slower).

It also checks that the native indices and accumulators equal the torch engine's (L2 against the broadcasting
L2 formula; see lutnb/kernels/numba_kernels.py). Usage:

    python benchmarks/bench_engine.py                   # 1 and 2 threads
    python benchmarks/bench_engine.py --threads 1 --repeat 30
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

M, K, N, V, C = 4096, 576, 64, 4, 16


def best_of(fns: dict, repeat: int, warmup: int = 2) -> dict:
    """Interleaved timing: each round runs every function once, in turn; returns the best ms of each."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], (time.perf_counter() - t0) * 1e3)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=20, help="rounds; the best of them is reported")
    ap.add_argument("--metrics", nargs="+", default=["l2", "l1", "chebyshev"])
    ap.add_argument("--no-torch", action="store_true", help="skip the (slow) pure torch LUT path")
    args = ap.parse_args(argv)

    from lutnb.deploy import engine
    from lutnb.deploy.export import random_layer
    from lutnb.kernels import dispatch, numba_kernels
    from lutnb.vq import quant
    from lutnb.vq.distances import broadcast_distance

    if not numba_kernels.enabled():
        print(f"native path unavailable: {numba_kernels.unavailable_reason()}", file=sys.stderr)
    else:
        t = dispatch.compile_all()
        print(f"native kernels compiled/loaded in {t:.2f} s (numba {numba_kernels.numba_module().__version__}, "
              f"threading layer {numba_kernels.numba_module().threading_layer() if t else '?'})")
        from lutnb.kernels import compiled as ckernel

        print(f"compiled C kernel: {ckernel.library_path() if ckernel.available() else ckernel.unavailable_reason()}"
              f" (simd level {ckernel.simd_level() if ckernel.available() else '-'}: 2 = AVX-512 encode + "
              "vpermb/vpdpbusd look-up)")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(M, K, generator=g)
    W = torch.randn(N, K, generator=g) / K ** 0.5
    print(f"layer M={M} K={K} N={N} v={V} c={C} S={-(-K // V)}; torch {torch.__version__}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'threads':>7} {'metric':>9} {'path':>12} {'ms':>8} {'dense/lut':>9}")
    rows_out = []
    for th in args.threads:
        torch.set_num_threads(th)
        for metric in args.metrics:
            layer = random_layer(K, N, V, C, metric=metric, seed=1)
            # centroids drawn from the data so the argmin is realistic
            layer.codebooks[:] = x[torch.randint(0, M, (layer.S * C,), generator=g)].reshape(-1)[
                : layer.codebooks.size].reshape(layer.codebooks.shape).numpy()
            layer.runtime_cache.clear()

            def dense():
                return x @ W.T

            def torch_fast(layer=layer):
                os.environ["LUTNB_NATIVE"] = "0"
                try:
                    idx = engine.encode_rows(x, layer)
                finally:
                    os.environ.pop("LUTNB_NATIVE", None)
                return idx, engine.lookup_accumulate(idx, layer, 32, "fast")

            def nat(layer=layer):
                return engine.layer_rows(layer, x, 32)

            def nat_layer(layer=layer):
                return engine.run_layer_native(layer, x, 32)

            def numba_layer(layer=layer):
                os.environ["LUTNB_CKERNEL"] = "0"
                try:
                    return engine.run_layer_native(layer, x, 32)
                finally:
                    os.environ.pop("LUTNB_CKERNEL", None)

            fns = {"dense": dense}
            if not args.no_torch:
                fns["torch-fast"] = torch_fast
            if numba_kernels.enabled():
                fns["native"] = nat
                fns["native-layer"] = nat_layer
                fns["numba-layer"] = numba_layer
                if not torch.equal(nat_layer(), numba_layer()):
                    print(f"MISMATCH compiled vs numba layer for {metric}", file=sys.stderr)
                    return 1
                # correctness on this very layer
                idx, acc = nat()
                sub = x.reshape(M, layer.S, V)
                os.environ["LUTNB_NATIVE"] = "0"  # the reference is the pure torch path
                try:
                    ref = (broadcast_distance(sub, torch.as_tensor(layer.codebooks), "l2").argmin(-1)
                           if metric == "l2" else engine.encode_rows(x, layer))
                finally:
                    os.environ.pop("LUTNB_NATIVE", None)
                ok = torch.equal(idx, ref) and torch.equal(
                    acc, quant.lookup_accumulate_reference(ref, layer.torch_tensors()["tq"], 32))
                if not ok:
                    print(f"MISMATCH native vs torch for {metric}", file=sys.stderr)
                    return 1
            best = best_of(fns, args.repeat)
            for k, ms in best.items():
                ratio = best["dense"] / ms
                print(f"{th:>7} {metric:>9} {k:>12} {ms:8.2f} {ratio:9.2f}")
                rows_out.append((th, metric, k, ms, ratio))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
