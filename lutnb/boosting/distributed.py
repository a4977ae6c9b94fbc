"""LUTBoost on several processes (torch.distributed, DistributedDataParallel), launched with ``torchrun``.

What each rank does, so that W processes reproduce one process's run:

- every rank runs the same pipeline with the same seed: calibration, BatchNorm re-estimation, distance
  scales, evaluation and checkpoints see the full data sets (cheap next to training) and agree bit for bit;
- in a training stage each rank sees a contiguous slice of every *global* batch (the single-process loader's
  batch, in the same order; per-rank batch = global batch / W), its loss scaled by ``W * n_rank / n_batch``
  so that DDP's gradient average is the gradient of the global batch mean, also for an uneven last batch;
- dead-centroid counts, the loss sums and the rows seen are summed over ranks before they are used; after
  every epoch rank 0's parameters and buffers are broadcast (BatchNorm running statistics then agree);
- rank 0 writes the checkpoints; every rank resumes from them.

What differs from one process: the gradient sum runs in another order (float rounding), and BatchNorm layers
in training mode normalise with their rank's slice of the batch (per-rank statistics, as DDP does without
SyncBatchNorm, which PyTorch provides on CUDA only). Stages with ``freeze_bn=True`` (or frozen weights)
avoid the second difference.
tests/test_ddp.py states the resulting tolerance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group: ``rank`` of ``world`` processes."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistContext | None:
    """The context of an initialised process group of more than one process, else None (one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return DistContext(dist.get_rank(), dist.get_world_size())


def init_from_env(backend: str | None = None) -> DistContext | None:
    """Join the group ``torchrun`` describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment); NCCL
    with one GPU per process (LOCAL_RANK) where CUDA is present, gloo on CPUs. None when not launched so."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return None
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return current()


def device_for(ctx: DistContext | None, fallback: str | torch.device = "cpu") -> torch.device:
    """This rank's device: cuda:LOCAL_RANK under NCCL, else ``fallback``."""
    if ctx is not None and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(fallback)


def shard(x: torch.Tensor, y: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor, float]:
    """This rank's contiguous slice of a global batch, and the loss scale ``W * n_rank / n_batch``."""
    n = y.shape[0]
    if n < ctx.world:
        raise ValueError(f"a training batch of {n} rows cannot be split over {ctx.world} processes: every "
                         f"rank needs at least one row; use a batch_size (and a data set size modulo it) of at "
                         f"least {ctx.world}, or fewer processes")
    xs, ys = torch.tensor_split(x, ctx.world)[ctx.rank], torch.tensor_split(y, ctx.world)[ctx.rank]
    return xs, ys, ctx.world * ys.shape[0] / n


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over every rank (in place, returned)."""
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_state(model: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's model."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src)


class WithLosses(nn.Module):
    """``model`` whose forward also returns the extra losses its layers kept (``losses(model)``, or None): DDP
    then finds the parameters those losses reach (the LUT codebooks through the reconstruction loss) from the
    forward's outputs, as it must."""

    def __init__(self, model: nn.Module, losses):
        super().__init__()
        self.model, self.losses = model, losses

    def forward(self, x):
        out = self.model(x)
        return out, (self.losses(self.model) if self.losses is not None else None)


def wrap(model: nn.Module, losses=None) -> nn.Module:
    """``model`` (with `WithLosses`) in DistributedDataParallel for one stage; the parameters that learn in
    it are set before. Its forward returns (output, extra loss or None)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    p = next(model.parameters())
    ids = [p.device.index] if p.device.type == "cuda" else None
    # unused parameters: a stage may train codebooks that one batch's loss does not reach
    return DDP(WithLosses(model, losses), device_ids=ids, find_unused_parameters=True)


def barrier() -> None:
    if current() is not None:
        dist.barrier()
