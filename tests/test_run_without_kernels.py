"""The runner's pieces that need no kernel (mnist_utils/run.py): the hooks that time and watch a notebook's
cells, a series that goes on when a notebook's run raises, and the run's last line with its exit status."""
from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mnist_utils import run
from mnist_utils.config import PROJECT_ROOT, UNBUDGETED_TIMEOUT
from conftest import default_stop_signals

RAN = {"status": "ok", "seconds": 1.0, "cpu_seconds": None, "profile": "smoke", "finished": "2026-12-05T10:00:00+00:00",
       "error": None}  # a notebook's runs.json entry, for a run that executes none


def test_the_notebook_hooks_count_cells_from_1_and_never_give_a_cell_a_timeout_of_0() -> None:
    told = []
    hooks = run._NotebookHooks(60, 0, lambda cell, cells: told.append((cell, cells)))
    hooks.client = SimpleNamespace(nb=SimpleNamespace(cells=[None] * 4))
    hooks.start()  # the kernel is up: the notebook's 60 s start now
    hooks.before_cell(cell="third", cell_index=2)
    assert told == [(3, 4)] and (hooks.cell, hooks.index) == ("third", 2)
    assert 58 <= hooks.time_left("third") <= 60
    hooks.deadline = time.monotonic() - 5
    assert hooks.time_left("third") == 1, "nbclient reads a timeout of 0 as no timeout at all"
    # out of time: the next cell does not start, rather than run with the 1 s minimum
    with pytest.raises(TimeoutError, match="out of time before this cell started"):
        hooks.before_cell(cell="fourth", cell_index=3)


def test_a_notebook_whose_run_raises_is_an_error_in_one_line_and_the_series_goes_on(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    def execute(path, *args, **kwargs):  # e.g. a full disk while its outputs are written
        if path.stem == "01_a":
            raise OSError("No space left on device\nwhile writing 01_a.html")
        return RAN

    monkeypatch.setattr(run, "execute_notebook", execute)
    paths = [tmp_path / "nb" / f"{stem}.ipynb" for stem in ("01_a", "02_b")]
    entries = run.run_notebooks(paths, tmp_path / "reports", "smoke", timeout=60, at_once=1, reads={})
    assert entries["01_a"]["status"] == "error" and entries["01_a"]["error"] == "OSError: No space left on device"
    assert entries["02_b"]["status"] == "ok"


def test_the_last_line_counts_a_timeout_as_failed_and_so_does_the_exit_status(tmp_path: Path, capsys) -> None:
    entries = {"01_a": {"status": "ok"}, "02_b": {"status": "timeout"}, "03_c": {"status": "interrupted"}}
    assert run._summarize(entries, 3, "smoke", tmp_path, run.Stop(), time.monotonic()) == 1
    line = capsys.readouterr().out
    assert line.startswith("1/3 notebooks ok in ") and "; failed: 02_b; interrupted: 03_c →" in line


@pytest.mark.parametrize("side_by_side, shown", [(2, ", up to 2 side by side"), (1, "")])
def test_the_last_line_gives_the_series_recorded_time_how_many_ran_side_by_side_and_how_busy_the_cpus_were(
        tmp_path: Path, capsys, side_by_side: int, shown: str) -> None:
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "series.json").write_text(json.dumps({
        "notebooks": ["01_a"], "ok": 1, "side_by_side": side_by_side, "seconds": 600.0, "notebook_seconds": 600.0,
        "profile": "smoke", "cpu_seconds": 600.0, "cpus": 2}))
    assert run._summarize({"01_a": {"status": "ok"}}, 1, "smoke", tmp_path, run.Stop(), time.monotonic()) == 0
    # one at a time says nothing of side by side; the CPU time is the index's own figure
    assert capsys.readouterr().out == (f"1/1 notebooks ok in 10m00s (smoke profile{shown}; 10.0 CPU-minutes, 50% of 2 "
                                       f"CPUs over the run) → {tmp_path / 'smoke' / 'index.html'}\n")


def test_a_full_run_names_a_notebook_without_a_budget_before_it_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    """It runs, but the runner says what it lacks: the budget its timeout and the series' verdict come from."""
    (tmp_path / "nb").mkdir()
    for stem in ("00_eda", "99_new"):  # one with a budget, one without
        (tmp_path / "nb" / f"{stem}.ipynb").write_text("{}")
    monkeypatch.setattr(run, "run_notebooks", lambda paths, *args, **kwargs: {})  # nothing executed
    monkeypatch.setattr(run, "_summarize", lambda *args: 0)
    arguments = ["--notebooks", str(tmp_path / "nb"), "--reports", str(tmp_path / "r"), "--at-once", "1"]
    assert run.main([*arguments, "--profile", "full"]) == 0
    assert capsys.readouterr().err == ("note: no budget for 99_new in config.NOTEBOOK_PLANS: the index shows each "
                                       f"one's time without one, and the runner stops each after "
                                       f"{UNBUDGETED_TIMEOUT / 60:g} minutes\n")
    assert run.main([*arguments, "--profile", "smoke"]) == 0 and capsys.readouterr().err == "", "budgets: full only"
    assert run.main([*arguments, "--profile", "full", "--timeout", "60"]) == 0 and capsys.readouterr().err == "", \
        "a timeout given: the budget would set none"


def notebooks_folder(tmp_path: Path) -> Path:
    """A folder with one notebook that no test here runs."""
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "01_a.ipynb").write_text("{}")
    return tmp_path / "nb"


@pytest.mark.parametrize("reports", ["a-file", "a-file/below"])
def test_reports_that_cannot_be_written_are_one_line_before_any_notebook_starts(tmp_path: Path, capsys,
                                                                                 reports: str) -> None:
    (tmp_path / "a-file").write_text("")
    arguments = ["--notebooks", str(notebooks_folder(tmp_path)), "--reports", str(tmp_path / reports)]
    assert run.main([*arguments, "--profile", "smoke"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"error: the reports cannot be written: {tmp_path / 'a-file'} is a file, not a folder. "
                                 "Give --reports (or MNIST_REPORTS_DIR) a folder that can be\n")


def test_a_second_run_into_the_same_reports_is_refused_and_a_run_into_others_is_not(tmp_path: Path, monkeypatch,
                                                                                   capsys) -> None:
    # The second run's start would discard the first's pending results, and its end the first's.
    monkeypatch.setattr(run, "execute_notebook", lambda *args, **kwargs: RAN)
    paths = [notebooks_folder(tmp_path) / "01_a.ipynb"]
    with run.sole_holder(tmp_path / "reports" / "smoke" / ".pending") as alone:  # the first run
        assert alone
        with pytest.raises(run.UsageError, match="another run of the notebooks is writing to .*reports.smoke: wait"):
            run.run_notebooks(paths, tmp_path / "reports", "smoke", timeout=60, at_once=1, reads={})
        assert run.main(["01", "--notebooks", str(paths[0].parent), "--reports", str(tmp_path / "reports"),
                         "--profile", "smoke"]) == 2
        assert "error: another run of the notebooks is writing to" in capsys.readouterr().err
        assert run.run_notebooks(paths, tmp_path / "elsewhere", "smoke", timeout=60, at_once=1, reads={})["01_a"]
    assert run.run_notebooks(paths, tmp_path / "reports", "smoke", timeout=60, at_once=1, reads={})["01_a"], "ended"


def test_a_full_disk_during_a_run_ends_it_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    runs = tmp_path / "r" / "smoke" / "runs.json"
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(runs))
    monkeypatch.setattr(run, "run_notebooks", full_disk)
    assert run.main(["--notebooks", str(notebooks_folder(tmp_path)), "--reports", str(tmp_path / "r"),
                     "--profile", "smoke"]) == 1
    assert capsys.readouterr().err == (f"error: {runs} could not be written (No space left on device): free some "
                                       "space there and run again\n")


def test_a_kernel_reads_the_data_where_the_runner_does_though_it_runs_in_notebooks(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA_ROOT", "data-here")  # relative to where the command ran, not to notebooks/
    assert run.kernel_env("smoke", "reports")["MNIST_DATA_ROOT"] == str(tmp_path / "data-here")


def test_a_notebook_named_by_a_path_elsewhere_is_refused_not_run_from_the_folder(tmp_path: Path) -> None:
    folder = notebooks_folder(tmp_path)
    assert run.find_notebooks(folder, [str(folder / "01_a.ipynb")]) == [folder / "01_a.ipynb"]
    copy = tmp_path / "copy" / "01_a.ipynb"
    with pytest.raises(ValueError, match=re.escape(f"{copy} is not in {folder}, whose notebooks run: name one of "
                                                   f"those, or give the notebooks' folder (--notebooks {copy.parent})")):
        run.find_notebooks(folder, [str(copy)])


def test_a_stop_signal_ignored_stays_ignored_so_that_nohup_outlives_the_terminal() -> None:
    # SIGHUP as `nohup make notebooks` leaves it, SIGTERM as a terminal's job has it
    previous = {signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL)}
    try:
        with run.Stop() as stop:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stop._handle, "the others stop the run"
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_after_a_hangup_a_run_writes_to_its_closed_terminal_no_more() -> None:
    # What the run says after the signal (its notebooks' last lines, the summary) must not end it before they are
    # recorded: a write to a terminal that has gone fails (EIO).
    script = ("import os, signal, sys, time\nfrom mnist_utils.stopping import Stop\nwith Stop() as stop:\n"
              "    os.kill(os.getpid(), signal.SIGHUP)\n    time.sleep(0.1)\n    print('the summary', flush=True)\n"
              "print(stop.name, file=sys.stderr)\n")
    terminal, its_end = pty.openpty()
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=its_end, stderr=subprocess.PIPE, text=True,
                              cwd=PROJECT_ROOT, preexec_fn=default_stop_signals)
    os.close(its_end)
    os.close(terminal)  # the terminal closes: its window, or the ssh session
    _, err = runner.communicate(timeout=120)
    assert (runner.returncode, err) == (0, "SIGHUP\n")
