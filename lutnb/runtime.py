"""Process-wide helpers every stage may use: seeding, seeded DataLoaders, a model's device, the progress switch,
calling a model on a batch of any shape and picking the real tokens' rows out of it."""
from __future__ import annotations

import os
import random
import sys

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


# ------------------------------------------------------------------------------------- devices and syncs
_FORCE_SYNC_FREE = False


def sync_free(device: torch.device | str) -> bool:
    """True where the hot path must not read device values on the host (any accelerator; CPU when forced
    by `sync_free_paths`, which the tests use to run the accelerator code path on CPU)."""
    return _FORCE_SYNC_FREE or torch.device(device).type != "cpu"


class sync_free_paths:
    """Context manager: run the accelerator (sync-free) code paths on CPU too, e.g. to count host syncs."""

    def __enter__(self):
        global _FORCE_SYNC_FREE
        self._prev, _FORCE_SYNC_FREE = _FORCE_SYNC_FREE, True
        return self

    def __exit__(self, *exc):
        global _FORCE_SYNC_FREE
        _FORCE_SYNC_FREE = self._prev
        return False


# Tensor methods that copy a value to the host, so on an accelerator wait for every queued kernel.
# (`.cpu()`, `.to("cpu")`, `.item()`, `bool(t)` in an `if`, `float(t)`, `.tolist()`, `.nonzero()`, ...)
HOST_SYNC_FUNCTIONS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu",
                       "nonzero")


class HostSyncCounter(torch.overrides.TorchFunctionMode):
    """Count the calls that would make the host wait for an accelerator: ``with HostSyncCounter() as c: ...``
    then ``c.count`` (and ``c.calls``, a name -> count dict). Works on CPU (it counts the calls, whatever
    the device), so the sync budget of a training step is testable without a GPU.

    Calls made from ``ignore`` (path fragments of the calling code) are not counted: by default the
    optimizers' step counters and the DataLoader's sampler, whose tensors stay on the host on an accelerator
    too (reading them is no sync). ``.to("cpu")`` counts only from a non-CPU tensor; ``.cpu()`` always."""

    IGNORE = ("torch/optim/", "torch/utils/data/")

    def __init__(self, ignore: tuple = IGNORE):
        super().__init__()
        self.calls: dict[str, int] = {}
        self.ignore = tuple(ignore)

    @property
    def count(self) -> int:
        return sum(self.calls.values())

    def _from_ignored(self) -> bool:
        f = sys._getframe(2)
        for _ in range(8):
            if f is None:
                return False
            if any(part in f.f_code.co_filename.replace(os.sep, "/") for part in self.ignore):
                return True
            f = f.f_back
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        to_cpu = (name == "to" and isinstance(args[0], torch.Tensor) and args[0].device.type != "cpu"
                  and any(str(a) == "cpu" for a in (*args[1:], kwargs.get("device"))))
        if (name in HOST_SYNC_FUNCTIONS or to_cpu) and not self._from_ignored():
            self.calls[name] = self.calls.get(name, 0) + 1
        return func(*args, **kwargs)


def rng_state() -> dict:
    """Every random state a run depends on: torch CPU, CUDA (each device, where CUDA is initialised), NumPy's
    global generator and Python's ``random``; tensors and strings only (for a weights_only checkpoint)."""
    import json

    np_state = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
          "numpy_pos": int(np_state[2]), "python": json.dumps(random.getstate())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = list(torch.cuda.get_rng_state_all())
    return st


def set_rng_state(st: dict) -> None:
    """Restore a `rng_state` dict. A CUDA state is restored where CUDA is present with the same device count;
    a checkpoint written on a CPU-only machine (no "cuda" entry) leaves the CUDA generators as they are."""
    import json

    torch.set_rng_state(st["torch"])
    np.random.set_state(("MT19937", st["numpy_keys"].numpy().astype(np.uint32), st["numpy_pos"], 0, 0.0))
    py = json.loads(st["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    cuda = st.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); PyTorch's reproducibility notes:
# https://docs.pytorch.org/docs/stable/notes/randomness.html ("CUBLAS_WORKSPACE_CONFIG=:4096:8")
CUBLAS_WORKSPACE = ":4096:8"


class deterministic_mode:
    """``torch.use_deterministic_algorithms`` for the duration of a ``with`` block, then the previous setting.

    CPU: on, with ``warn_only=True`` (as lutnb always ran it: a user model with an op that has no
    deterministic CPU kernel warns instead of failing). CUDA: strict (``warn_only=False``) with
    ``CUBLAS_WORKSPACE_CONFIG`` set (if unset) before cuBLAS starts; an op without a deterministic CUDA
    kernel then raises and names itself: pass ``deterministic="warn"`` to run anyway. ``mode``: True, False or "warn".
    """

    def __init__(self, mode, device: torch.device | str = "cpu"):
        if mode not in (True, False, "warn"):
            raise ValueError(f"deterministic={mode!r}: use True, False or 'warn' (deterministic, warn where an op "
                             "has no deterministic kernel)")
        self.mode, self.device = mode, torch.device(device)

    def __enter__(self):
        self.prev = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        if self.mode:
            strict = self.mode is True and self.device.type == "cuda"
            if strict:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
            torch.use_deterministic_algorithms(True, warn_only=not strict)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.prev[0], warn_only=self.prev[1])
        return False
