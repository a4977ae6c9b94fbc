"""Digits CNN test accuracy under the two encodes of the integer engine (float32 vs int8, lutnb.deploy.q8).

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
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
