"""Calibration speed: lutnb.calibrate on the digits CNN vs scikit-learn KMeans per sub-space (same data, same run).

    python benchmarks/bench_calibrate.py [--threads 2] [--images 1024]

The baseline is what the throwaway prototype did (docs/prototype-notes.md: 11-90 s per model): one sklearn KMeans
(k-means++, n_init=1) per sub-space of every converted layer. Prints seconds and the speed-up.
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn baseline")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import lutnb
    from lutnb.vq.layers import lut_layers
    from lutnb.zoo.data import load_digits
    from lutnb.zoo.train import pretrained

    data = load_digits(seed=0)
    model = pretrained("digits_cnn", seed=0, progress=False)
    x = data.train.tensors[0][: args.images]
    batches = [x[i:i + 256] for i in range(0, len(x), 256)]
    print(f"digits CNN, {len(x)} calibration images, torch threads={torch.get_num_threads()}")
    for metric in ("l2", "l1", "chebyshev"):
        lm = lutnb.convert(model, v=4, c=16, metric=metric, skip=["conv1"])
        lutnb.calibrate(lm, batches[:1], max_rows=512)  # warm-up (JIT compile of the native kernels)
        t0 = time.perf_counter()
        stats = lutnb.calibrate(lm, batches)
        t_ours = time.perf_counter() - t0
        n_sub = sum(s["S"] for k, s in stats.items() if k[0] != "_")
        line = f"{metric:>9}: lutnb.calibrate {t_ours:6.2f} s ({n_sub} sub-spaces)"
        if not args.no_sklearn and metric == "l2":
            from sklearn.cluster import KMeans

            rows = {}
            def grab(mod, inputs, output, name, store=rows):
                store[name] = mod.rows_of(inputs[0])  # returns None: the output is left alone

            hooks = [m.register_forward_hook(lambda mod, i, o, n=n: grab(mod, i, o, n)) for n, m in lut_layers(lm)]
            lutnb.set_mode(lm, "exact")
            with torch.no_grad():
                lm(torch.cat(batches))
            for h in hooks:
                h.remove()
            t0 = time.perf_counter()
            for n, m in lut_layers(lm):
                r = rows[n]
                g = torch.Generator().manual_seed(0)
                r = r[torch.randperm(r.shape[0], generator=g)[:8192]]
                sub = m.split(r).numpy()
                for s in range(m.S):
                    KMeans(16, n_init=1, max_iter=25, random_state=0).fit(sub[:, s, :])
            t_sk = time.perf_counter() - t0
            line += f" | sklearn KMeans per sub-space {t_sk:6.2f} s | speed-up {t_sk / t_ours:5.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
