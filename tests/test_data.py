"""lutnb.zoo.data: fixed seeded splits, the CIFAR-10 reader on a tiny fixture, safe download and extraction."""
import io
import tarfile

import numpy as np
import pytest
import torch

from lutnb import runtime
from lutnb.zoo import data


def test_digits_splits_are_fixed_and_standardized():
    a, b = data.load_digits(seed=0), data.load_digits(seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (1097, 250, 450)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10 and a.name == "digits"
    x, y = a.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (1, 8, 8)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[1], data.load_digits(seed=1).test.tensors[1])
    assert set(y.tolist()) == set(range(10))


def test_mnist1d_splits_and_global_rng_untouched():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    s = data.load_mnist1d(seed=0)
    assert np.random.rand() == expected  # make_dataset reseeds numpy; we restore it
    assert (len(s.train), len(s.val), len(s.test)) == (3500, 500, 1000)
    assert s.input_shape == (1, 40) and s.train.tensors[0].shape[1:] == (1, 40)
    s1 = data.load_mnist1d(seed=1)
    assert torch.equal(s.test.tensors[0], s1.test.tensors[0])  # test set is the package's fixed split
    assert not torch.equal(s.val.tensors[1], s1.val.tensors[1])
    s.train.tensors[0][0, 0, 0] = 99.0  # datasets own their memory: the cache is not corrupted
    assert data.load_mnist1d(seed=0).train.tensors[0][0, 0, 0] != 99.0


def test_loaders_deterministic_order():
    ds = data.load_digits().train
    first = [y for _, y in runtime.loaders(ds, 100, shuffle=True, seed=3)]
    again = [y for _, y in runtime.loaders(ds, 100, shuffle=True, seed=3)]
    other = [y for _, y in runtime.loaders(ds, 100, shuffle=True, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert sum(len(y) for y in first) == len(ds)
    seq = torch.cat([y for _, y in runtime.loaders(ds, 100, shuffle=False)])
    assert torch.equal(seq, ds.tensors[1])


def test_get_dataset_unknown_name_lists_valid():
    with pytest.raises(ValueError, match="digits.*mnist1d"):
        data.get_dataset("imagenet")
    assert data.get_dataset("digits").name == "digits"


@pytest.fixture
def fake_cifar(tmp_path):
    archive = tmp_path / "src" / "cifar-10-python.tar.gz"
    sha = data.make_fake_cifar_archive(archive, n_per_batch=10, seed=0)
    return archive, sha


def test_fake_cifar_round_trip(fake_cifar, tmp_path):
    archive, sha = fake_cifar
    assert sha == data.sha256_file(archive) and len(sha) == 64
    again = data.make_fake_cifar_archive(tmp_path / "again.tar.gz", n_per_batch=10, seed=0)
    assert again == sha  # deterministic bytes
    root = tmp_path / "raw"
    s = data.load_cifar10(root=root, url=archive.as_uri(), sha256=sha, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (40, 10, 10)
    assert s.input_shape == (3, 32, 32) and s.train.tensors[0].shape[1:] == (3, 32, 32)
    assert (root / data.CIFAR10_ARCHIVE).exists() and (root / data.CIFAR10_FOLDER / "test_batch").exists()
    # the pixels are the archive's, normalized with the standard mean/std
    with tarfile.open(archive) as tar:
        import pickle

        raw = pickle.load(tar.extractfile(f"{data.CIFAR10_FOLDER}/test_batch"), encoding="bytes")
    img = raw[b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255.0
    mean = np.array(data.CIFAR10_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(data.CIFAR10_STD, dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(s.test.tensors[0][0].numpy(), (img - mean) / std, rtol=1e-5, atol=1e-5)
    assert s.test.tensors[1].tolist() == raw[b"labels"]
    # second load: no download needed (offline), same data
    s2 = data.load_cifar10(root=root, download=False, sha256=sha)
    assert torch.equal(s.train.tensors[0], s2.train.tensors[0])


def test_cifar_wrong_checksum_leaves_nothing(fake_cifar, tmp_path):
    archive, _ = fake_cifar
    root = tmp_path / "raw"
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.download_cifar10(root, url=archive.as_uri(), sha256="0" * 64)
    assert list(root.iterdir()) == []
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_cifar10(root=root, url=archive.as_uri(), sha256="0" * 64)
    assert list(root.iterdir()) == []


def test_cifar_missing_without_download_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        data.load_cifar10(root=tmp_path, download=False)


def _tar_with(path, member: tarfile.TarInfo, payload: bytes = b"x"):
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(payload) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_safe_extract_refuses_escape(tmp_path, kind):
    bad = tmp_path / "bad.tar.gz"
    if kind == "dotdot":
        m = tarfile.TarInfo("../evil.txt")
    elif kind == "absolute":
        m = tarfile.TarInfo(str(tmp_path / "abs_evil.txt"))
    else:
        m = tarfile.TarInfo("cifar-10-batches-py/link")
        m.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        m.linkname = "../../../etc/passwd"
    _tar_with(bad, m)
    dest = tmp_path / "out"
    with pytest.raises(ValueError, match="unsafe"):
        data.safe_extract(bad, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "abs_evil.txt").exists()
    assert list(dest.iterdir()) == []


def test_load_cifar_refuses_malicious_archive(tmp_path):
    bad = tmp_path / "src" / "cifar-10-python.tar.gz"
    bad.parent.mkdir()
    _tar_with(bad, tarfile.TarInfo("../evil.txt"))
    root = tmp_path / "raw"
    with pytest.raises(ValueError, match="unsafe path"):
        data.load_cifar10(root=root, url=bad.as_uri(), sha256=data.sha256_file(bad))
    assert not (tmp_path / "evil.txt").exists() and not (root.parent / "evil.txt").exists()
    assert not (root / data.CIFAR10_FOLDER).exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".extract-")]


def test_iterating_a_loader_leaves_the_global_rng_alone():
    """Evaluating (iterating a loader) must not change training elsewhere through torch's global RNG."""
    import torch
    from torch.utils.data import TensorDataset

    from lutnb.runtime import loaders

    ds = TensorDataset(torch.arange(10.0)[:, None], torch.arange(10))
    for shuffle in (False, True):
        torch.manual_seed(0)
        want = torch.rand(3)
        torch.manual_seed(0)
        for _ in loaders(ds, 4, shuffle=shuffle):
            pass
        assert torch.equal(torch.rand(3), want)


def test_cifar_source_resolution():
    import pytest

    from lutnb.experiments.cifar import cifar_source

    assert cifar_source("auto", full=True) == "real" and cifar_source("auto", full=False) == "fake"
    assert cifar_source("real", full=False) == "real"
    with pytest.raises(ValueError, match="use 'auto', 'real' or 'fake'"):
        cifar_source("cifar", full=True)
