"""Files written whole, folders held, and whether a host answers (mnist_utils/files.py), and a full disk told in
one line. Local sockets only: no network."""
import errno
import io
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from mnist_utils import files
from mnist_utils.config import PROJECT_ROOT
from mnist_utils.files import append_whole, reachable, write_atomic, write_folder_atomic


def test_a_file_written_atomically_replaces_the_old_one_and_is_readable_by_others(tmp_path):
    target = tmp_path / "deeper" / "results.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and [p.name for p in target.parent.iterdir()] == ["results.json"]
    # mkstemp makes 0600 files; a results file or a checkpoint is an ordinary data file that others may read
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_host_that_accepts_a_connection_is_reachable_and_a_closed_port_is_not():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert reachable(listener.getsockname(), timeout=5.0), "it waits up to its timeout for the answer"
    with socket.socket() as closed:  # a port nothing listens on: the connection is refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not reachable(("127.0.0.1", port), timeout=5.0), "a refused connection is no answer"


def test_a_host_that_does_not_answer_in_time_is_unreachable_without_waiting_for_the_lookup(monkeypatch):
    # a name lookup ignores the socket's timeout: the probe runs in a thread that reachable stops waiting for
    answered = threading.Event()

    def hangs(address, timeout):
        answered.wait(10)
        raise OSError("too late")

    monkeypatch.setattr(files.socket, "create_connection", hangs)
    started = time.monotonic()
    try:
        assert not reachable(("mirror.example", 443), timeout=0.2)
        assert time.monotonic() - started < 2
    finally:
        answered.set()


def test_what_a_folder_holds_besides_the_expected_files_is_its_first_by_name_and_how_many_more(tmp_path):
    assert files.held_besides(tmp_path) == ""
    for name in ("metrics.json", ".DS_Store", "b.txt", "a.txt", "c.txt"):
        (tmp_path / name).write_text("")
    assert files.held_besides(tmp_path, ["metrics.json"]) == "a.txt and 2 more", "a file browser's is no one's"
    assert files.held_besides(tmp_path, ["metrics.json", "a.txt", "c.txt"]) == "b.txt"


def test_unwritable_says_why_no_file_can_be_written_and_leaves_nothing(tmp_path, monkeypatch):
    from mnist_utils.files import unwritable
    assert unwritable(tmp_path / "to" / "be" / "made") == "" and list(tmp_path.iterdir()) == []  # made by the writer
    (tmp_path / "a-file").write_text("")
    assert unwritable(tmp_path / "a-file" / "sub") == f"{tmp_path / 'a-file'} is a file, not a folder"

    def refused(**_):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("mnist_utils.files.tempfile.TemporaryFile", refused)  # root may write where others may not
    assert unwritable(tmp_path / "new") == f"cannot write in {tmp_path}: Permission denied"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unwritable_names_a_link_to_nowhere_and_a_folder_that_takes_no_files(tmp_path, monkeypatch):
    from mnist_utils.files import unwritable
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    assert unwritable(tmp_path / "gone" / "sub") == f"{tmp_path / 'gone'} is a link to a place that does not exist"

    def procfs(**_):  # what /proc answers for a file made in it
        raise FileNotFoundError(2, "No such file or directory")
    monkeypatch.setattr("mnist_utils.files.tempfile.TemporaryFile", procfs)
    assert unwritable(tmp_path) == f"cannot write in {tmp_path}: it takes no new files"


def test_cannot_append_tries_an_existing_file_itself_and_changes_nothing(tmp_path, monkeypatch):
    from mnist_utils.files import cannot_append
    log = tmp_path / "log.jsonl"
    assert cannot_append(log) == "" and not log.exists(), "a missing file: its folder is asked, nothing is made"
    log.write_text('{"a": 1}\n')
    assert cannot_append(log) == "" and log.read_text() == '{"a": 1}\n'

    def refused(*_, **__):  # an immutable or read-only file (root may write where its mode says no)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(files, "open", refused, raising=False)
    assert cannot_append(log) == f"cannot append to {log}: Permission denied"


def test_a_folder_that_cannot_be_held_is_worked_in_without_the_lock(tmp_path, monkeypatch):
    import fcntl

    from mnist_utils.files import folder_lock
    ran = []
    with folder_lock(tmp_path / "missing"):
        ran.append("a folder that cannot be opened")
    with pytest.raises(KeyError) as raised, folder_lock(tmp_path / "missing"):
        raise KeyError("the work's own error")
    assert raised.value.__context__ is None, "not chained to the folder's"

    def no_locks(fd, operation):  # what a file system without flock answers (some network mounts)
        raise OSError(37, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with folder_lock(tmp_path):
        ran.append("a folder that cannot be locked")
    assert ran == ["a folder that cannot be opened", "a folder that cannot be locked"]


def test_a_folder_that_cannot_be_listed_is_not_taken_for_an_empty_one(tmp_path, monkeypatch):
    from mnist_utils.files import held_besides
    (tmp_path / "train.log").write_text("")
    assert held_besides(tmp_path) == "train.log" and held_besides(tmp_path, ["train.log"]) == ""

    def refused(self):  # a folder one may write in but not list (as root, modes do not refuse it)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(type(tmp_path), "iterdir", refused)
    assert held_besides(tmp_path, ["train.log"]) == "files that cannot be listed (Permission denied)"



def disk_full(fd):
    """os.fsync on a full disk: its error names no file, as a write's own does not."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_write_a_full_disk_refuses_names_its_file_leaves_nothing_and_the_command_says_so_in_one_line(
        tmp_path, monkeypatch, capsys):
    from mnist_utils import cli, commands
    monkeypatch.setattr(files.os, "fsync", disk_full)
    writes = [(lambda: write_atomic(tmp_path / "a.json", b"{}"), tmp_path / "a.json"),
              (lambda: write_folder_atomic(tmp_path / "run", {"b.json": b"{}"}), tmp_path / "run" / "b.json")]
    for write, wanted in writes:
        with pytest.raises(OSError) as refused:
            write()
        assert refused.value.filename == str(wanted) and list(tmp_path.iterdir()) == []
    said = f"error: {tmp_path / 'a.json'} could not be written (No space left on device): free some space there and " \
           "run again\n"
    with pytest.raises(SystemExit) as ended:
        commands.run_command(lambda: write_atomic(tmp_path / "a.json", b"{}"))
    assert ended.value.code == 1 and capsys.readouterr().err == said
    monkeypatch.setattr(cli, "checked_settings", lambda device: None)
    monkeypatch.setattr(cli, "run_predict", lambda args: write_atomic(tmp_path / "a.json", b"{}"))
    assert cli.main(["predict", "x.png"]) == 1 and capsys.readouterr().err == said

    def refused():
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(PermissionError):  # any other error stays itself, traceback and all
        commands.run_command(refused)


def test_a_line_a_full_disk_refuses_is_not_left_half_written(tmp_path, monkeypatch):
    log = tmp_path / "performance_log.jsonl"
    append_whole(log, '{"run": 1}\n')
    monkeypatch.setattr(files.os, "fsync", disk_full)  # the line is in the file, not yet on the disk: refused there
    with pytest.raises(OSError) as refused:
        append_whole(log, '{"run": 2}\n')
    assert refused.value.filename == str(log) and log.read_text() == '{"run": 1}\n'


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full, the device every write to fails")
def test_output_sent_to_a_full_disk_ends_the_command_in_one_line(step3_checkpoint, mnist, make_picture, tmp_path):
    image = tmp_path / "digit.png"
    image.write_bytes(make_picture(mnist.test.images[0]))
    with open("/dev/full", "w") as full:  # every write to it: ENOSPC
        done = subprocess.run([sys.executable, "-m", "mnist_utils", "predict", "--model", str(step3_checkpoint),
                               str(image)], stdout=full, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == ("error: the output could not be written (No space left on device): "
                                           "send it where there is room")


def test_a_train_log_line_a_full_disk_refuses_ends_the_run_naming_the_log(tmp_path):
    from mnist_utils.trainer import _logger

    class FullDisk(io.TextIOBase):
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    log = _logger(tmp_path / "train.log")
    log_file = log.handlers[1]
    log_file.stream.close()
    log_file.stream = FullDisk()  # logging printed its own traceback for this line and every one after it
    with pytest.raises(OSError) as refused:
        log.info("epoch 1/15: train loss 0.1")
    assert refused.value.filename == str(tmp_path / "train.log")
    log_file.close()


def test_a_json_file_below_a_file_reads_as_missing_and_a_damaged_one_is_set_aside(tmp_path, capsys):
    (tmp_path / "reports").write_text("")  # a file where a folder on the path should be: nothing in it to read
    assert files.read_json(tmp_path / "reports" / "runs.json", "runs file", "Run again.") is None
    (tmp_path / "runs.json").write_text("{")
    assert files.read_json(tmp_path / "runs.json", "runs file", "Run again.") is None
    assert (tmp_path / "runs.json.corrupt").read_text() == "{"
    assert f"warning: {tmp_path / 'runs.json'} is not a readable runs file" in capsys.readouterr().err


def test_a_folder_has_one_sole_holder_at_a_time(tmp_path):
    with files.sole_holder(tmp_path / "made") as first:
        with files.sole_holder(tmp_path / "made") as second:
            assert (first, second) == (True, False)
    with files.sole_holder(tmp_path / "made") as again:
        assert again, "released when the first block ended"
