"""Worker for tests/test_ddp.py: LUTBoost on a tiny CNN, alone or as one rank of ``torchrun``.

    python tests/ddp_worker.py OUT [--stop-after STAGE] [--resume]
    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT ...

Writes OUT/model.pt (rank 0: the LUT model's state_dict) and OUT/report.json; checkpoints in OUT/ckpt.
"""
import json
import sys
from pathlib import Path

import torch
from test_boosting import Tiny, _data  # noqa: E402  (this script's folder is on sys.path)

from lutnb import boosting as B
from lutnb.boosting import distributed
from lutnb.files import save_checkpoint
from lutnb.zoo.train import fit


def data(n=100, seed=0):
    return _data(n, seed)


def config(freeze_bn: bool):
    # 100 rows at batch 32: three full batches and one of 4 (uneven over 2 ranks is not needed: 4 = 2 + 2)
    kw = {"batch_size": 32, "freeze_bn": freeze_bn}
    return B.LUTBoostConfig((
        B.CalibrateStage(batches=2, batch_size=32, max_rows=256, iters=5),
        B.TrainStage("centroids", epochs=1, lr=1e-2, train_weights=False, recon_weight=1.0, **kw),
        B.TrainStage("joint", epochs=2, lr=1e-3, recon_weight=1.0, distill_weight=1.0, dead_restart=True,
                     select_best=True, **kw),
        B.TrainStage("lut_qat", epochs=1, lr=1e-4, mode="quant", **kw),
    ))


def main(argv):
    out = Path(argv[0])
    stop = argv[argv.index("--stop-after") + 1] if "--stop-after" in argv else None
    torch.set_num_threads(1)
    ctx = distributed.init_from_env("gloo")
    torch.manual_seed(0)
    fp32 = Tiny()
    fit(fp32, data(seed=1), epochs=8, lr=2e-2, batch_size=32, progress=False)

    def cb(name, lut, report):
        if name == stop:
            raise KeyboardInterrupt(f"stopped after {name}")

    try:
        lut, report = B.lutboost(fp32, data(), data(48, seed=2), stages=config("--train-bn" not in argv),
                                 seed=0, test=data(60, seed=3), checkpoint_dir=out / "ckpt",
                                 resume="--resume" in argv, callback=cb, progress=False)
    except KeyboardInterrupt:
        return 3
    if ctx is None or ctx.is_main:
        save_checkpoint(lut.state_dict(), out / "model.pt")
        (out / "report.json").write_text(json.dumps(report.to_dict(), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
