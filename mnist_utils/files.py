"""Files written whole or not at all, JSON files read back (a damaged one set aside), their checksums, what else a
folder holds, and whether a host answers: what every module that writes a results file, a checkpoint or a report,
reads one, or fetches one, shares."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

try:
    import fcntl
except ImportError:  # Windows: folders are not locked
    fcntl = None

DESKTOP_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")  # what file browsers leave in a folder they showed


def held_besides(folder: Path, expected: Iterable[str] = ()) -> str:
    """What `folder` holds besides the `expected` names and what file browsers leave (DESKTOP_FILES), for an error
    message: "train.log", "train.log and 4 more" (the first by name); "" where it holds nothing else; where it
    cannot be listed, it says so."""
    skip = {*expected, *DESKTOP_FILES}
    try:
        others = sorted(p.name for p in folder.iterdir() if p.name not in skip)
    except OSError as error:  # a folder one may write in but not list: what it holds cannot be known, so not nothing
        return f"files that cannot be listed ({error.strerror})"
    return f"{others[0]} and {len(others) - 1} more" if len(others) > 1 else "".join(others)


def unwritable(folder: Path) -> str:
    """Why no file can be written in `folder`, or in the folders still to be made down to it: for an error message
    before any work, "" where one can. The check leaves nothing behind (a temporary file, deleted)."""
    existing = folder
    try:
        while not existing.exists() and not existing.is_symlink():  # the first that exists takes the ones to be made
            existing = existing.parent
    except OSError as error:  # a folder on the way that may not be looked into
        return f"cannot look into {existing.parent}: {error.strerror or error}"
    if not existing.exists():
        return f"{existing} is a link to a place that does not exist"
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        # /proc and its like answer "no such file" for a folder that exists but takes no files: say what that means
        why = "it takes no new files" if error.errno in (errno.ENOENT, errno.EOPNOTSUPP) else error.strerror or error
        return f"cannot write in {existing}: {why}"
    return ""


def cannot_write(path: Path) -> str:
    """Why the file at `path` cannot be written (made, with its folders, or replaced whole): "" where it can. For an
    error message before the work whose result it is to hold."""
    return f"{path} is a folder, not a file" if path.is_dir() else unwritable(path.parent)


def cannot_append(path: Path) -> str:
    """Why a line cannot be appended to the file at `path` (made where missing, with its folders): "" where it can.
    An existing file is opened to append and closed, which changes nothing in it."""
    if not path.exists():
        return unwritable(path.parent)
    try:
        open(path, "a").close()
    except OSError as error:
        return f"cannot append to {path}: {error.strerror or error}"
    return ""


def _write_synced(handle, data: bytes, path: Path) -> None:
    """Write `data` and wait until it is on disk: a rename that follows never publishes an empty or a partial file.
    An error (a full disk) names `path`, the file the data was for."""
    try:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as error:
        error.filename = error.filename or str(path)  # a write's error names no file: "[Errno 28] No space left ..."
        raise


def write_staged(path: Path, data: bytes) -> Path:
    """`data` in a new temporary file beside `path`, on disk, for the caller to rename into place. Its name is its
    own: two writers of the same path never take each other's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_synced(handle, data, path)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary data files
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees either the old file or the whole new one, never a part."""
    staged = write_staged(path, data)
    try:
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def append_whole(path: Path, text: str) -> None:
    """Append `text` to the file at `path` in one write, so that runs appending at once never interleave; where the
    write fails (a full disk), the file is cut back to what it held, and the error names it: no line is left half
    written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        held = handle.seek(0, os.SEEK_END)
        try:
            _write_synced(handle, text.encode(), path)
        except OSError:
            handle.truncate(held)
            raise


def _opened_to_lock(folder: Path) -> int | None:
    """`folder` opened for an flock, or None where none can be had: a system without flock (Windows), a folder
    that cannot be opened (one that does not exist, or that may be entered but not listed)."""
    if fcntl is None:
        return None
    try:
        return os.open(folder, os.O_RDONLY)
    except OSError:
        return None


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold `folder` against every other writer or reader that asks for it (an flock on the folder itself, so no
    lock file is left behind). Where it cannot be held, nothing is, and the work goes on as it would without the
    lock: a system without flock, a file system that refuses it (some network mounts), a folder that cannot be
    opened (`_opened_to_lock`)."""
    fd = _opened_to_lock(folder)
    if fd is None:  # outside a try: an error of the work done under it must not chain to anything here
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def sole_holder(folder: Path) -> Iterator[bool]:
    """Hold `folder` (made where missing) for as long as the block runs, as the one process working in it: True,
    or False at once where another holds it (the caller goes no further). True where it cannot be held at all, as
    `folder_lock` goes on without its lock."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = _opened_to_lock(folder)
    if fd is None:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:  # another holds it
            held = False
        except OSError:  # a file system that refuses flock
            held = True
        yield held
    finally:
        os.close(fd)  # closing releases the lock


def write_folder_atomic(folder: Path, files: dict[str, bytes]) -> None:
    """Put `files` in `folder` all at once: written into a temporary folder beside it, then swapped in by two
    renames, so a reader sees the old files or the new ones (or, for the instant between the renames, no
    folder), never a mix or a part. If the swap fails, the old files are put back."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                _write_synced(handle, data, folder / name)
        staging.chmod(0o755)  # mkdtemp makes it private; results are for everyone
        if not folder.exists():
            os.replace(staging, folder)
            return
        retired = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old."))
        os.replace(folder, retired / folder.name)
        try:
            os.replace(staging, folder)
        except BaseException:
            os.replace(retired / folder.name, folder)
            raise
        finally:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reachable(address: tuple[str, int], timeout: float) -> bool:
    """Can a TCP connection be opened within `timeout` seconds? Name lookups cannot hang us: a daemon thread."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def jsonable(value: Any) -> Any:
    """Plain JSON types for what notebooks record (tensors, numpy scalars, tuples, paths)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # tensors, numpy arrays and scalars
        return jsonable(value.tolist())  # a NaN among them as a float's: null, which JSON has
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return jsonable(asdict(value))
    return str(value)


CORRUPT_SUFFIX = ".corrupt"


def read_json(path: Path, what: str, fix: str, valid: Callable[[Any], str | None] = lambda data: None) -> Any:
    """The JSON in `path` (None if there is no such file). A file that is not a readable `what` (truncated,
    say, or something else: `valid` returns what is wrong, or None) would stop every later run that reads
    it: it is named on stderr with `fix`, set aside as <name>.corrupt for a look, and read as missing."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):  # NotADirectoryError: a file where a folder on its path should be
        return None
    except (ValueError, IsADirectoryError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = f"{type(error).__name__}: {error}"
    else:
        why = valid(data)
        if why is None:
            return data
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    try:
        os.replace(path, aside)
        where = f"set aside as {aside.name}"
    except OSError as error:
        where = f"could not set it aside ({error.strerror or error})"
    print(f"warning: {path} is not a readable {what} ({why}); {where}. {fix}", file=sys.stderr, flush=True)
    return None
