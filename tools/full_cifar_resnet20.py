"""FULL recipe: CIFAR-10 ResNet-20, fp32 training then LUTBoost (meant for a GPU; hours on a CPU).

    python tools/full_cifar_resnet20.py                 # download CIFAR-10 (checksummed), train, convert
    python tools/full_cifar_resnet20.py --metric l2 --v 4 --c 16 --fp32-epochs 200 --lut-epoch-scale 5
    python tools/full_cifar_resnet20.py --smoke          # a generated archive in CIFAR's format, 1 epoch each

The recipe lives in `lutnb.experiments.cifar` (notebook 08 runs the same code). Results go to
results/full_cifar_resnet20.json, checkpoints to data/checkpoints/ (LUTBoost resumes with ``--resume``).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="folder holding cifar-10-python.tar.gz (default data/raw)")
    ap.add_argument("--metric", default="l2", choices=["l2", "l1", "chebyshev"])
    ap.add_argument("--v", type=int, default=4)
    ap.add_argument("--c", type=int, default=16)
    ap.add_argument("--v-shortcut", type=int, default=None, help="v for the 1x1 shortcut convs")
    ap.add_argument("--fp32-epochs", type=int, default=200)
    ap.add_argument("--lut-epoch-scale", type=float, default=5.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="resume LUTBoost from its last stage checkpoint")
    ap.add_argument("--smoke", action="store_true", help="generated tiny archive, 1 epoch per stage")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lutnb.experiments.cifar import load_data, resnet20_experiment
    from lutnb.nb.results import write_results

    data, tmp = load_data("fake" if args.smoke else "real", seed=args.seed, root=args.data_root)
    print(data, f"device {args.device}", flush=True)
    try:
        out = resnet20_experiment(
            data, metric=args.metric, v=args.v, c=args.c, v_shortcut=args.v_shortcut,
            fp32_epochs=1 if args.smoke else args.fp32_epochs,
            lut_epoch_scale=0.01 if args.smoke else args.lut_epoch_scale,
            batch_size=args.batch_size, seed=args.seed, device=args.device,
            checkpoint_dir=(os.path.join(tmp.name, "checkpoints") if tmp is not None else None),
            resume=args.resume, progress=not args.smoke)
    finally:
        if tmp is not None:
            tmp.cleanup()
    out["smoke"] = args.smoke
    if not args.smoke:
        write_results("full_cifar_resnet20", out)
    print(f"done in {out['seconds']:.0f} s: fp32 {out['fp32_acc']:.2f} % -> LUT INT8 {out['lut_acc_int8']:.2f} %")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "0")
    sys.exit(main())
