"""Process-wide helpers every stage may use: seeding, seeded DataLoaders, a model's device, the progress switch,
calling a model on a batch of any shape and picking the real tokens' rows out of it."""
from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def progress_disabled(progress: bool) -> bool:
    """True when progress bars should stay off: progress=False, or TQDM_DISABLE set."""
    return (not progress) or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


# ---------------------------------------------------------------------------------------------- loaders
def loaders(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
            drop_last: bool = False) -> DataLoader:
    """A DataLoader with a seeded generator: the same ``seed`` gives the same batch order every time.

    A ``TensorDataset`` is indexed a whole batch at a time (no per-sample collate: much faster on CPU).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    g = torch.Generator().manual_seed(int(seed))
    # the loader gets the generator too: a DataLoader iterator draws its base seed from it, so iterating
    # (e.g. evaluating the test split after every epoch) never consumes torch's global random state
    if isinstance(dataset, TensorDataset):
        base = RandomSampler(dataset, generator=g) if shuffle else SequentialSampler(dataset)
        return DataLoader(dataset, sampler=BatchSampler(base, batch_size, drop_last), batch_size=None, generator=g)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=drop_last)


# --------------------------------------------------------------------------------------- model batches
def run_model(model: nn.Module, batch):
    """Call a model on a batch that is a dict of kwargs, an (x, y) pair or a tensor."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def row_mask(batch) -> torch.Tensor | None:
    """The batch's attention mask as booleans (a dict batch with 'attention_mask'), else None."""
    if isinstance(batch, dict) and "attention_mask" in batch:
        return batch["attention_mask"].bool()
    return None


def token_rows(x: torch.Tensor, mask: torch.Tensor | None, detach: bool = True) -> torch.Tensor:
    """(B, T, K) activations -> (n, K) rows of real tokens (all rows without a mask)."""
    r = (x.detach() if detach else x).reshape(-1, x.shape[-1])
    if mask is not None and x.dim() == 3 and mask.numel() == r.shape[0]:
        r = r[mask.reshape(-1)]
    return r
