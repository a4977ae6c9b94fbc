"""FULL recipe: CIFAR-10 ResNet-20, fp32 training then LUTBoost (meant for a GPU; hours on a CPU).

    python tools/full_cifar_resnet20.py                 # download CIFAR-10 (checksummed), train, convert
    python tools/full_cifar_resnet20.py --metric l2 --v 4 --c 16 --fp32-epochs 200 --lut-epoch-scale 5
    python tools/full_cifar_resnet20.py --smoke          # a tiny fake CIFAR archive, 1 epoch each (CI check)

fp32: SGD (momentum 0.9, Nesterov) lr 0.1, weight decay 5e-4, cosine schedule, batch 128, random crop
(pad 4) + horizontal flip; the standard ResNet-20 recipe (about 91-92 % test accuracy at 200 epochs).
LUTBoost: the default schedule of `lutnb.boosting` with every training stage's epochs multiplied by
``--lut-epoch-scale``, first conv kept float, INT8 tables; 1x1 shortcut convs use the same v unless
``--v-shortcut`` says otherwise. Results go to results/full_cifar_resnet20.json, checkpoints to
data/checkpoints/ (the LUTBoost run resumes with ``--resume``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset


class Augmented(Dataset):
    """CIFAR training augmentation on a (N, 3, 32, 32) tensor dataset: random crop (pad 4) + flip."""

    def __init__(self, base, pad: int = 4, seed: int = 0):
        self.x, self.y = base.tensors
        self.pad = pad
        self.g = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = torch.nn.functional.pad(self.x[i], (self.pad,) * 4)
        dy, dx = torch.randint(0, 2 * self.pad + 1, (2,), generator=self.g).tolist()
        x = x[:, dy:dy + 32, dx:dx + 32]
        if torch.rand((), generator=self.g) < 0.5:
            x = x.flip(-1)
        return x, self.y[i]


def _to_device(ds, device):
    from torch.utils.data import TensorDataset

    return TensorDataset(*(t.to(device) for t in ds.tensors)) if device.type != "cpu" else ds


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
    ap.add_argument("--smoke", action="store_true", help="fake tiny CIFAR archive, 1 epoch per stage")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lutnb import boosting
    from lutnb.data import load_cifar10, make_fake_cifar_archive
    from lutnb.models import resnet20
    from lutnb.paths import data_dir
    from lutnb.results import write_results
    from lutnb.train import evaluate, fit, load_checkpoint, save_checkpoint, seed_everything

    device = torch.device(args.device)
    t0 = time.perf_counter()
    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory(prefix="lutnb-cifar-smoke-")
        root = Path(tmp.name)
        sha = make_fake_cifar_archive(root / "cifar-10-python.tar.gz", n_per_batch=40, seed=args.seed)
        data = load_cifar10(root, download=True, seed=args.seed, sha256=sha, url="file:///nonexistent")
        fp32_epochs, scale, ckdir = 1, 0.01, root / "checkpoints"
    else:
        data = load_cifar10(args.data_root, download=True, seed=args.seed)
        fp32_epochs, scale, ckdir = args.fp32_epochs, args.lut_epoch_scale, data_dir() / "checkpoints"
    print(data, f"device {device}", flush=True)
    train_aug = Augmented(data.train, seed=args.seed)
    val, test = _to_device(data.val, device), _to_device(data.test, device)

    fp32_path = ckdir / f"resnet20-cifar10-seed{args.seed}-ep{fp32_epochs}.pt"
    seed_everything(args.seed)
    model = resnet20(data.num_classes).to(device)
    if fp32_path.exists() and not args.smoke:
        model.load_state_dict(load_checkpoint(fp32_path, map_location=device))
        print(f"loaded fp32 model {fp32_path}")
    else:
        fit(model, train_aug, val, epochs=fp32_epochs, lr=0.1, batch_size=args.batch_size, weight_decay=5e-4,
            optimizer="sgd", schedule="cosine", seed=args.seed, progress=not args.smoke)
        save_checkpoint(model.state_dict(), fp32_path)
    fp32_acc = evaluate(model, test)
    print(f"fp32 test accuracy {fp32_acc:.2f} % ({time.perf_counter() - t0:.0f} s)", flush=True)

    cfg = boosting.LUTBoostConfig().scaled(scale)
    cfg = boosting.LUTBoostConfig((cfg.stages[0],
                                   *(dataclasses.replace(s, batch_size=args.batch_size) for s in cfg.stages[1:])))
    overrides = {"*downsample.0": {"v": args.v_shortcut}} if args.v_shortcut else None
    lut, report = boosting.lutboost(
        model, data.train if args.smoke else _to_device(data.train, device), val, v=args.v, c=args.c,
        metric=args.metric, skip=("conv1",), stages=cfg, seed=args.seed, test=test, overrides=overrides,
        checkpoint_dir=ckdir / f"lutboost-resnet20-{args.metric}-v{args.v}-c{args.c}-seed{args.seed}",
        resume=args.resume, progress=not args.smoke)
    print(report, flush=True)
    out = {"smoke": args.smoke, "device": str(device), "metric": args.metric, "v": args.v, "c": args.c,
           "seed": args.seed, "fp32_epochs": fp32_epochs, "lut_epochs": report.total_epochs,
           "fp32_acc": fp32_acc, "lut_acc_int8": report.final_acc, "report": report.to_dict(),
           "seconds": time.perf_counter() - t0}
    if not args.smoke:
        write_results("full_cifar_resnet20", out)
    if tmp is not None:
        tmp.cleanup()
    print(f"done in {out['seconds']:.0f} s: fp32 {fp32_acc:.2f} % -> LUT INT8 {report.final_acc:.2f} %")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "0")
    sys.exit(main())
