"""Data sets as fixed, seeded train/val/test splits of ``TensorDataset`` (float32 inputs, int64 labels).

* ``digits``  - scikit-learn's 8x8 handwritten digits (ships with scikit-learn, no network).
* ``mnist1d`` - the procedurally generated MNIST-1D (``mnist1d`` package, no network).
* ``cifar10`` - CIFAR-10 (python pickle format), a checksummed download into ``data/raw``.

Every split is a pure function of ``seed`` (default 0): same seed, same samples in the same order.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import random
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import (
    TensorDataset,
)

from ..files import data_dir


@dataclass(frozen=True)
class DataSplits:
    """Train/val/test ``TensorDataset``s plus what a model needs to know about them."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, ...]
    name: str

    def __repr__(self) -> str:
        n = (len(self.train), len(self.val), len(self.test))
        return (f"DataSplits(name={self.name!r}, train/val/test={n[0]}/{n[1]}/{n[2]}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.from_numpy(np.array(x, dtype=np.float32, copy=True)),  # own, writable copy
                         torch.from_numpy(np.array(y, dtype=np.int64, copy=True)))


def _stratified_split(y: np.ndarray, n_take: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``y`` into (rest, take) with ``len(take) == n_take``, class-stratified."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, take = train_test_split(idx, test_size=n_take, random_state=seed, stratify=y)
    return rest, take


# ----------------------------------------------------------------------------------------------- digits
DIGITS_SIZES = (1097, 250, 450)  # train / val / test (1,797 images in all)


def load_digits(seed: int = 0) -> DataSplits:
    """scikit-learn digits, (1, 8, 8) images: /16 to [0, 1], then standardized with the train mean/std.

    Stratified split 1,097 / 250 / 450 drawn with ``seed``. The mean/std are scalars (some corner pixels
    are always 0, so per-pixel std would divide by zero).
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = d.images.astype(np.float32)[:, None] / 16.0
    y = d.target.astype(np.int64)
    n_train, n_val, n_test = DIGITS_SIZES
    trval, test = _stratified_split(y, n_test, seed)
    tr_rel, va_rel = _stratified_split(y[trval], n_val, seed)
    train, val = trval[tr_rel], trval[va_rel]
    mean, std = float(x[train].mean()), float(x[train].std())
    x = (x - mean) / std
    return DataSplits(_tensors(x[train], y[train]), _tensors(x[val], y[val]), _tensors(x[test], y[test]),
                      num_classes=10, input_shape=(1, 8, 8), name="digits")


# ---------------------------------------------------------------------------------------------- mnist1d
MNIST1D_VAL = 500


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The standard MNIST-1D (generator seed 42, 4000/1000), generated once per process (~1.5 s)."""
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:  # make_dataset reseeds the global numpy / random generators: put them back afterwards
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (d["x"].astype(np.float32), d["y"].astype(np.int64),
              d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))
    for a in arrays:
        a.setflags(write=False)
    return arrays


def load_mnist1d(seed: int = 0, val_size: int = MNIST1D_VAL) -> DataSplits:
    """MNIST-1D, inputs (1, 40): the package's fixed 4000/1000 train/test split (its own generator seed 42,
    already standardized by the package); ``seed`` only picks the stratified ``val_size`` carved from train.
    """
    x, y, x_test, y_test = _mnist1d_arrays()
    if not 0 < val_size < len(y):
        raise ValueError(f"val_size={val_size} must be in 1..{len(y) - 1} (train has {len(y)} samples)")
    train, val = _stratified_split(y, val_size, seed)
    x, x_test = x[:, None, :], x_test[:, None, :]
    return DataSplits(_tensors(x[train], y[train]), _tensors(x[val], y[val]), _tensors(x_test, y_test),
                      num_classes=10, input_shape=(1, 40), name="mnist1d")


MNIST1D_LARGE = (10_000, 2_000, 5_000)  # train / val / test: one test sample is 0.02 pt


@functools.lru_cache(maxsize=2)
def _mnist1d_large_arrays(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-1D samples from the package's generator (its default arguments and seed 42), standardized
    by the package; ~0.2 ms per sample, generated once per process."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = n, 0.5
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    for a in (x, y):
        a.setflags(write=False)
    return x, y


def load_mnist1d_large(seed: int = 0, sizes: tuple[int, int, int] = MNIST1D_LARGE) -> DataSplits:
    """MNIST-1D generated large enough to judge small accuracy differences: ``sizes`` = (train, val, test),
    default 10,000 / 2,000 / 5,000 (one test sample = 0.02 pt). The samples are fixed (generator seed 42);
    ``seed`` draws the stratified split. Inputs (1, 40)."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 3 or min(sizes) < 10:
        raise ValueError(f"sizes={sizes!r} must be (train, val, test), each >= 10")
    x, y = _mnist1d_large_arrays(sum(sizes))
    trval, test = _stratified_split(y, sizes[2], seed)
    tr_rel, va_rel = _stratified_split(y[trval], sizes[1], seed)
    train, val = trval[tr_rel], trval[va_rel]
    x = x[:, None, :]
    return DataSplits(_tensors(x[train], y[train]), _tensors(x[val], y[val]), _tensors(x[test], y[test]),
                      num_classes=10, input_shape=(1, 40), name="mnist1d_large")


# ---------------------------------------------------------------------------------------------- cifar10
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


# SHA-256 of the official archive (170,498,071 bytes). Not published by the data set's authors; it is the
# value Keras pins in keras/datasets/cifar10.py and that independent reports agree on, and it goes with the
# authors' documented md5 below. Override with ``sha256=`` (e.g. for a mirror or the test fixture).
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # the md5 on https://www.cs.toronto.edu/~kriz/cifar.html


CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"


CIFAR10_FOLDER = "cifar-10-batches-py"


CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)


CIFAR10_STD = (0.2470, 0.2435, 0.2616)


_MARKER = ".lutnb_source_sha256"  # written inside the extracted folder: which verified archive it came from


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _raw_dir(root: str | os.PathLike | None) -> Path:
    if root is None:

        root = data_dir() / "raw"
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


def download_cifar10(root: str | os.PathLike | None = None, url: str = CIFAR10_URL,
                     sha256: str = CIFAR10_SHA256, timeout: float = 60.0) -> Path:
    """Download the CIFAR-10 archive into ``root`` (default ``data/raw``) and verify its SHA-256.

    Atomic: bytes go to a temporary file in ``root``, are hashed while streaming, and only a verified
    file is renamed to ``cifar-10-python.tar.gz``. On any failure nothing is left behind. An archive
    already present is re-verified and reused. ``url`` may be ``file://`` (tests).
    """
    root = _raw_dir(root)
    target = root / CIFAR10_ARCHIVE
    if target.exists():
        got = sha256_file(target)
        if got != sha256:
            raise ValueError(f"{target} has SHA-256 {got}, expected {sha256}: the file is corrupt or a "
                             f"different archive; delete it and download again")
        return target
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".download-", suffix=".part")
    try:
        h = hashlib.sha256()
        req = urllib.request.Request(url, headers={"User-Agent": "lutnb"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != sha256:
            raise ValueError(f"checksum mismatch for {url}: SHA-256 {h.hexdigest()}, expected {sha256}; "
                             f"the download was discarded (retry, or check the URL / the sha256= argument)")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _inside(base: Path, candidate: Path) -> bool:
    base, candidate = os.path.realpath(base), os.path.realpath(candidate)
    return os.path.commonpath([base, candidate]) == base


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Extract a tar archive into ``dest``, refusing any member that would land outside it.

    Refused: absolute names, names with ``..`` escaping ``dest``, symlinks / hard links whose target
    resolves outside ``dest``, and device files / FIFOs. Everything is checked before anything is written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            where = dest / m.name
            if os.path.isabs(m.name) or m.name.startswith(("/", "\\")) or not _inside(dest, where):
                raise ValueError(f"unsafe path in tar archive {archive}: member {m.name!r} would be written "
                                 f"outside {dest}; refusing to extract")
            if m.issym() or m.islnk():
                link_base = where.parent if m.issym() else dest
                if os.path.isabs(m.linkname) or not _inside(dest, link_base / m.linkname):
                    raise ValueError(f"unsafe link in tar archive {archive}: {m.name!r} -> {m.linkname!r} "
                                     f"points outside {dest}; refusing to extract")
            elif not (m.isfile() or m.isdir()):
                raise ValueError(f"unsupported member type in tar archive {archive}: {m.name!r} is a device "
                                 f"file or FIFO; refusing to extract")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)  # noqa: S202 - members checked above


def _ensure_cifar_folder(root: Path, download: bool, url: str, sha256: str) -> Path:
    """The extracted ``cifar-10-batches-py`` folder, made from a verified archive if needed."""
    folder = root / CIFAR10_FOLDER
    marker = folder / _MARKER
    if marker.exists() and marker.read_text().strip() == sha256 and all(
            (folder / f).exists() for f in CIFAR10_FILES):
        return folder
    archive = root / CIFAR10_ARCHIVE
    if not archive.exists() and not download:
        raise FileNotFoundError(
            f"CIFAR-10 not found: expected the archive {archive}. Download {CIFAR10_URL} "
            f"(SHA-256 {CIFAR10_SHA256}) and put it there unchanged (it is verified and extracted on first "
            f"use), or call load_cifar10(download=True)")
    archive = download_cifar10(root, url=url, sha256=sha256)  # verifies an existing archive too
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        safe_extract(archive, tmp)
        got = tmp / CIFAR10_FOLDER
        missing = [f for f in CIFAR10_FILES if not (got / f).is_file()]
        if missing:
            raise ValueError(f"{archive} is not a CIFAR-10 python archive: "
                             f"missing {CIFAR10_FOLDER}/{missing}")
        (got / _MARKER).write_text(sha256 + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(got, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")  # noqa: S301 - only files from a checksum-verified archive
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(d[b"labels"], dtype=np.int64)
    return x, y


def load_cifar10(root: str | os.PathLike | None = None, download: bool = True, seed: int = 0,
                 val_fraction: float = 0.1, url: str = CIFAR10_URL,
                 sha256: str = CIFAR10_SHA256) -> DataSplits:
    """CIFAR-10 as (3, 32, 32) float32 normalized with the standard per-channel mean/std.

    Reads ``root`` (default ``data/raw``); downloads and verifies the archive if missing and ``download``.
    A stratified ``val_fraction`` of the 50,000 training images (5,000) becomes val, drawn with ``seed``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} must be strictly between 0 and 1 (e.g. 0.1)")
    folder = _ensure_cifar_folder(_raw_dir(root), download, url, sha256)
    parts = [_read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(folder / "test_batch")
    mean = np.asarray(CIFAR10_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CIFAR10_STD, dtype=np.float32)[:, None, None]

    def norm(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / 255.0 - mean) / std

    n_val = max(int(round(val_fraction * len(y))), len(np.unique(y)))
    train, val = _stratified_split(y, n_val, seed)
    return DataSplits(_tensors(norm(x[train]), y[train]), _tensors(norm(x[val]), y[val]),
                      _tensors(norm(x_test), y_test), num_classes=10, input_shape=(3, 32, 32), name="cifar10")


def make_fake_cifar_archive(path: str | os.PathLike, n_per_batch: int = 10, seed: int = 0) -> str:
    """Write a tiny archive in the exact CIFAR-10 python format; return its SHA-256.

    Contains ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and ``batches.meta`` with random
    uint8 images and labels cycling through the 10 classes. Deterministic in ``seed`` (fixed mtimes).
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def add(tar: tarfile.TarFile, name: str, obj: dict) -> None:
        data = pickle.dumps(obj, protocol=2)
        info = tarfile.TarInfo(f"{CIFAR10_FOLDER}/{name}")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))

    def batch(label: str, offset: int) -> dict:
        labels = [int((offset + i) % 10) for i in range(n_per_batch)]
        return {b"batch_label": label.encode(), b"labels": labels,
                b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
                b"filenames": [f"fake_{offset + i}.png".encode() for i in range(n_per_batch)]}

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(1, 6):
            add(tar, f"data_batch_{i}", batch(f"training batch {i} of 5", i * n_per_batch))
        add(tar, "test_batch", batch("testing batch 1 of 1", 0))
        add(tar, "batches.meta", {b"num_cases_per_batch": n_per_batch, b"num_vis": 3072,
                                  b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
    import gzip

    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return sha256_file(path)


# --------------------------------------------------------------------------------------------- registry
DATASETS: dict[str, Callable[..., DataSplits]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "mnist1d_large": load_mnist1d_large,
    "cifar10": load_cifar10,
}


def get_dataset(name: str, **kw) -> DataSplits:
    """Load a data set by name (``digits``, ``mnist1d``, ``mnist1d_large``, ``cifar10``); ``kw`` go to its loader."""
    try:
        fn = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}") from None
    return fn(**kw)


# ------------------------------------------------------------------------------------------ augmentation
def crop_flip_draws(batch: int, pad: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of `random_crop_flip` for a batch: offsets (B, 2) in [0, 2*pad] (dy, dx) and
    flips (B,) bool, from ``generator`` on its own device (one draw per batch, not per sample)."""
    dev = generator.device
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=dev)
    flips = torch.rand(batch, generator=generator, device=dev) < 0.5
    return offsets, flips


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None,
                     draws: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """CIFAR augmentation on a whole batch (B, C, H, W), on x's device: zero-pad by ``pad``, crop H x W at a
    random offset, flip horizontally with probability 1/2, each sample its own draw. One gather, no loop
    over samples, no host sync. ``draws`` (from `crop_flip_draws`) fixes the randomness (for tests)."""
    B, C, H, W = x.shape
    if draws is None:
        if generator is None:
            raise ValueError("random_crop_flip needs generator= (a torch.Generator on x's device) or draws=")
        draws = crop_flip_draws(B, pad, generator)
    offsets, flips = (t.to(x.device) for t in draws)
    xp = torch.nn.functional.pad(x, (pad,) * 4)
    ar_h, ar_w = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
    rows = offsets[:, :1] + ar_h  # (B, H)
    cols = offsets[:, 1:] + torch.where(flips.unsqueeze(1), W - 1 - ar_w, ar_w)  # (B, W), reversed when flipped
    b = torch.arange(B, device=x.device).view(B, 1, 1, 1)
    c = torch.arange(C, device=x.device).view(1, C, 1, 1)
    return xp[b, c, rows.view(B, 1, H, 1), cols.view(B, 1, 1, W)]


def random_crop_flip_reference(x: torch.Tensor, pad: int, draws: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Slow, obvious `random_crop_flip`: one sample at a time, for tests."""
    offsets, flips = draws
    out = []
    H, W = x.shape[2:]
    for i in range(x.shape[0]):
        xi = torch.nn.functional.pad(x[i], (pad,) * 4)
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        xi = xi[:, dy:dy + H, dx:dx + W]
        out.append(xi.flip(-1) if bool(flips[i]) else xi)
    return torch.stack(out)


class BatchCropFlip:
    """A ``batch_transform`` for `lutnb.zoo.train.fit`: `random_crop_flip` with its own generator on the
    training device (seeded once; the whole run's augmentation is one random stream)."""

    def __init__(self, pad: int = 4, seed: int = 0, device: torch.device | str = "cpu"):
        self.pad = pad
        self.generator = torch.Generator(device=torch.device(device)).manual_seed(int(seed))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return random_crop_flip(x, self.pad, self.generator)
