"""Test accuracy under the two encodes of the integer engine (float32 vs int8, lutnb.deploy.q8).

Default mode: the digits CNN, calibration only. ``--zoo``: the LUTBoost zoo (docs/lutboost-zoo.md), each model
after the default LUTBoost recipe (`lutnb.lutboost`: v=4, c=16, INT8 tables, skip="auto"),
scored on its test split with the reference integer engine (float32 encode) and with
``lutnb.compile(..., encode="int8")``:

    python tools/q8_accuracy.py --zoo --metrics l2 --seeds 0 [--datasets digits mnist1d_large] \
        --out data/reference_results/q8_accuracy_zoo.json

The int8 encode is the nearest centroid in squared L2 on the integer grid for every layer, whatever metric the
layer was trained with, so L1 and Chebyshev models change metric under it (measure them with --metrics).

The trained fp32 digits CNN (`lutnb.zoo.train.pretrained("digits_cnn", seed)`, trained and cached on first use),
all layers converted (v=4, c=16, L2, INT8 tables), codebooks by k-means on the training images (calibrate,
defaults), no retraining. Accuracy on the 450 test images of each seed's split for: fp32, the integer engine
with the exact float32 encode (the default), and lutnb.compile(..., encode="int8") (equal bit for bit to
IntegerEngine(..., impl="reference", encode="int8")).

    python tools/q8_accuracy.py --seeds 0 1 2 [--out results/q8_accuracy.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="results/q8_accuracy.json")
    ap.add_argument("--zoo", action="store_true", help="the LUTBoost zoo after LUTBoost (see the module doc)")
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d_large"])
    ap.add_argument("--archs", nargs="+", default=None, help="zoo architectures (default: all)")
    ap.add_argument("--metrics", nargs="+", default=["l2"])
    args = ap.parse_args(argv)
    if args.zoo:
        return zoo_main(args)
    import lutnb
    from lutnb.deploy.engine import IntegerEngine
    from lutnb.zoo.data import load_digits
    from lutnb.zoo.train import pretrained

    rows = []
    for seed in args.seeds:
        data = load_digits(seed)
        model = pretrained("digits_cnn", seed=seed, progress=False)
        xtr = data.train.tensors[0]
        xte, yte = data.test.tensors
        torch.manual_seed(seed)
        lm = lutnb.convert(model, v=4, c=16, metric="l2")
        lutnb.calibrate(lm, [xtr])
        lm.eval()

        def acc(m, xte=xte, yte=yte):
            with torch.no_grad():
                return float((m(xte).argmax(1) == yte).float().mean() * 100)

        r = {"seed": seed, "fp32": acc(model), "engine_float32_encode": acc(IntegerEngine(lm)),
             "compiled_int8_encode": acc(lutnb.compile(lm, encode="int8")),
             "compiled_float32_encode": acc(lutnb.compile(lm))}
        rows.append(r)
        print(json.dumps(r))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python tools/q8_accuracy.py " + " ".join(map(str, ["--seeds", *args.seeds])),
                               "rows": rows}, indent=1))
    return 0


def zoo_main(args) -> int:
    """--zoo: resumable (records already in --out are kept), one record per (dataset, arch, metric, seed)."""
    import time

    import lutnb
    from lutnb.boosting.runner import lutboost
    from lutnb.deploy.engine import IntegerEngine
    from lutnb.experiments.zoo import zoo_pretrained
    from lutnb.files import atomic_write_bytes
    from lutnb.zoo.archs import ARCHS
    from lutnb.zoo.data import get_dataset

    out = Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else {"rows": []}
    have = {(r["dataset"], r["arch"], r["metric"], r["seed"]) for r in done["rows"]}
    done["command"] = "python tools/q8_accuracy.py --zoo " + " ".join(
        ["--datasets", *args.datasets, "--metrics", *args.metrics, "--seeds", *map(str, args.seeds)]
        + (["--archs", *args.archs] if args.archs else []))

    def acc(m, loader_x, loader_y):
        with torch.no_grad():
            pred = torch.cat([m(loader_x[i:i + 512]).argmax(1) for i in range(0, len(loader_x), 512)])
        return float((pred == loader_y).float().mean() * 100)

    for ds in args.datasets:
        for seed in args.seeds:
            data = get_dataset(ds, seed=seed)
            xte, yte = data.test.tensors
            for arch in args.archs or list(ARCHS):
                model = zoo_pretrained(ds, arch, seed, data)
                for metric in args.metrics:
                    if (ds, arch, metric, seed) in have:
                        continue
                    tic = time.perf_counter()
                    lm, rep = lutboost(model, data.train, data.val, v=4, c=16, metric=metric, seed=seed,
                                       test=data.test, progress=False)
                    lm.eval()
                    r = {"dataset": ds, "arch": arch, "metric": metric, "seed": seed, "n_test": len(yte),
                         "fp32": acc(model, xte, yte), "lutboost_report": rep.final_acc,
                         "engine_float32_encode": acc(IntegerEngine(lm, impl="reference"), xte, yte),
                         "compiled_int8_encode": acc(lutnb.compile(lm, encode="int8"), xte, yte),
                         "seconds": time.perf_counter() - tic}
                    done["rows"].append(r)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(out, json.dumps(done, indent=1).encode())
                    print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
