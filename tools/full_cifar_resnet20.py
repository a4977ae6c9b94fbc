"""FULL recipe: CIFAR-10 ResNet-20, fp32 training then LUTBoost (meant for a GPU; refused on a CPU unless
--allow-cpu).

    python tools/full_cifar_resnet20.py                 # download CIFAR-10 (checksummed), train, convert (L2)
    python tools/full_cifar_resnet20.py --metric l2 l1 chebyshev --v 4 --c 16 --fp32-epochs 200
    python tools/full_cifar_resnet20.py --smoke          # a generated archive in CIFAR's format, 1 epoch each
    torchrun --nproc_per_node 8 tools/full_cifar_resnet20.py --metric l1   # LUTBoost on 8 GPUs (DDP)

The recipe lives in `lutnb.experiments.cifar` (notebook 08 runs the same code). The fp32 model is trained
once per (seed, epochs) and saved in data/checkpoints/; every metric's run (in this process, or in another
process or machine started later with another --metric) loads it. Each metric writes its own results file,
results/full_cifar_resnet20_<metric>_v<v>_c<c>_seed<seed>.json; LUTBoost resumes from its stage
checkpoints with --resume. Under torchrun rank 0 trains the fp32 model (the others wait) and writes results.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="folder holding cifar-10-python.tar.gz (default data/raw)")
    ap.add_argument("--metric", nargs="+", default=["l2"], choices=["l2", "l1", "chebyshev"],
                    help="one or more metrics; the fp32 model is trained once and shared")
    ap.add_argument("--v", type=int, default=4)
    ap.add_argument("--c", type=int, default=16)
    ap.add_argument("--v-shortcut", type=int, default=None, help="v for the 1x1 shortcut convs")
    ap.add_argument("--fp32-epochs", type=int, default=200)
    ap.add_argument("--lut-epoch-scale", type=float, default=5.0)
    ap.add_argument("--batch-size", type=int, default=128, help="global batch size (split over torchrun ranks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="default: cuda (this rank's GPU under torchrun) if present")
    ap.add_argument("--amp", default=None, choices=["bf16"], help="bfloat16 autocast in LUTBoost's training")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="resume LUTBoost from its last stage checkpoint")
    ap.add_argument("--allow-cpu", action="store_true", help="run the FULL recipe even without a GPU (days)")
    ap.add_argument("--smoke", action="store_true", help="generated tiny archive, 1 epoch per stage")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = _args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lutnb.boosting import distributed
    from lutnb.experiments.cifar import check_full_device, load_data, resnet20_experiment, results_name
    from lutnb.files import data_dir
    from lutnb.nb.results import write_results

    ctx = distributed.init_from_env()
    device = distributed.device_for(ctx, args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    check_full_device(not args.smoke, device, args.allow_cpu)
    main_rank = ctx is None or ctx.is_main
    source = "fake" if args.smoke else "real"
    if main_rank:  # rank 0 downloads (checksummed) first; the others then read its copy
        data, tmp = load_data(source, seed=args.seed, root=args.data_root)
    distributed.barrier()
    if not main_rank:
        data, tmp = load_data(source, seed=args.seed, root=args.data_root)
    ckdir = None  # data/checkpoints; a generated (smoke) archive's checkpoints die with it, except under torchrun,
    if tmp is not None:  # where the ranks must share one folder to share the fp32 model
        ckdir = os.path.join(tmp.name, "checkpoints") if ctx is None else str(data_dir() / "checkpoints" / "smoke")
    if main_rank:
        print(data, f"device {device}", f"processes {ctx.world if ctx else 1}", flush=True)
    try:
        for metric in args.metric:
            out = resnet20_experiment(
                data, metric=metric, v=args.v, c=args.c, v_shortcut=args.v_shortcut,
                fp32_epochs=1 if args.smoke else args.fp32_epochs,
                lut_epoch_scale=0.01 if args.smoke else args.lut_epoch_scale,
                batch_size=args.batch_size, seed=args.seed, device=device,
                checkpoint_dir=ckdir,
                resume=args.resume, progress=main_rank and not args.smoke, amp=args.amp)
            out.update(smoke=args.smoke, processes=ctx.world if ctx else 1)
            if main_rank:
                if not args.smoke:
                    write_results(results_name(metric, args.v, args.c, args.seed), out)
                print(f"{metric}: done in {out['seconds']:.0f} s: fp32 {out['fp32_acc']:.2f} % -> LUT INT8 "
                      f"{out['lut_acc_int8']:.2f} %", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "0")
    sys.exit(main())
