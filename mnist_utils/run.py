"""Run the notebooks headless and publish them: ``python -m mnist_utils.run [SELECTOR ...]``.

Each notebook runs top to bottom in a fresh kernel, in its own folder, under one profile and one time limit. Its
executed copy and an HTML rendering land in the profile's reports folder even when it fails (reports/ for the full
profile, reports/smoke/ for the smoke one, so a quick check never replaces a full run's outputs), ``runs.json``
keeps how each notebook's last run went, and ``index.html`` links everything together with the headline numbers
and targets that the notebooks' ``Report`` wrote to ``results/``; ``series.json`` records the whole run's wall time.

Notebooks run side by side, one per usable CPU, each as soon as the notebooks whose results it reads have
finished (series.py says which starts when). Their kernels are separate processes, so each has its own random
generators, and a notebook's thread count is fixed by its configs: side by side changes no accuracy or loss, only
the times, which share the machine. One run at a time writes to a reports folder.

Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal) stops the whole run within seconds: the running notebooks'
kernels are shut down, those notebooks are recorded as interrupted, no other notebook starts, and the exit status
is 130 (143 for SIGTERM, 129 for SIGHUP). A notebook's new executed copy, HTML and results replace the previous
run's only when it finishes: while it runs, its Report and the models it saves write to a pending folder, so an
interrupted (or killed) run leaves the last finished run's outputs as they were.

    python -m mnist_utils.run                     # every notebooks/NN_*.ipynb
    python -m mnist_utils.run 00 3 --profile smoke  # → reports/smoke/
    python -m mnist_utils.run 01_step1_skeleton --timeout 900 --reports /tmp/reports
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import nbformat
import zmq
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from traitlets.config import Config

from .commands import CommandParser, UsageError, command_status, user_path
from .config import (LANES_FILE_ENV, NOTEBOOK_GLOB, NOTEBOOKS_DIR, PENDING_ENV, PROFILES, READS_RESULTS_OF,
                     SMOKE_TIMEOUT, START_ORDER, TIMEOUT_HEADROOM, budget_minutes, find_notebooks, first_line,
                     get_profile, kernel_env, notebook_timeout, reports_dir as profile_reports_dir, reports_root,
                     usable_cpus)
from .files import sole_holder, unwritable, write_atomic
from .index import (cpu_busy, fmt_duration, progress_suffix, read_runs, read_series, record_run, record_series,
                    results_by_stem, write_index)
from .publish import discard, publish_run
from .results import unfinished
from .series import (check_at_once, default_at_once, inputs_to_run, longest_chain, most_side_by_side, ready_to_start,
                     waits_for)
from .stopping import Interrupted, Stop, execute_until_stopped

PROJECT_KERNEL = "mnist-notebooks"  # registered by `make setup` (ipykernel install --sys-prefix)
FALLBACK_KERNEL = "python3"  # the running interpreter's ipykernel
YIELDING_NICE = 10  # a notebook off the series' longest chain: about a tenth of a core beside one on it
HEARTBEAT_SECONDS = 60  # a line for each running notebook this often: a series runs minutes without an end

# nbclient logs its own line for every timeout or dead kernel; the runner reports those itself,
# and stray log lines would break the one-line-per-notebook progress output.
_NBCLIENT_LOG = logging.getLogger("mnist_utils.run.nbclient")
_NBCLIENT_LOG.setLevel(logging.CRITICAL)

# Encrypt the kernel's local TCP sockets where pyzmq can (CurveZMQ); without it ipykernel prints a
# plain-text warning to our stderr at every kernel start.
_KERNEL_CONFIG = Config({"KernelManager": {"transport_encryption": "auto"}}) if zmq.has("curve") else Config()


# ----------------------------------------------------------------------------- running one notebook


def project_kernel() -> str:
    """`mnist-notebooks` when that kernelspec is installed, else this interpreter's `python3`."""
    return PROJECT_KERNEL if PROJECT_KERNEL in KernelSpecManager().find_kernel_specs() else FALLBACK_KERNEL


def _cell_label(cell: Any, index: int | None) -> str:
    """How a reader finds the cell in the HTML: its [n] prompt, else its position."""
    if cell is not None and cell.get("execution_count"):
        return f"cell [{cell['execution_count']}]"
    return f"cell {index + 1}" if index is not None else "kernel start"


def _mark_failure(cell: Any, ename: str, message: str) -> None:
    """Show a failure nbclient doesn't record (timeout, dead kernel) as an error output under its cell."""
    if cell is not None and cell.get("cell_type") == "code":
        cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=message,
                                                   traceback=[f"{ename}: {message}"]))


def _failure(exc: Exception, cell: Any, index: int | None, timeout: float) -> tuple[str, str]:
    """(status, error) for a notebook run that `exc` ended in `cell` (the `index`th): interrupted by a stop signal,
    an error in a cell, out of time, a dead kernel, or anything else (an unreadable notebook, a kernel that will not
    start). A timeout and a dead kernel are shown under their cell too, as nbclient shows a cell's error."""
    where = _cell_label(cell, index)
    if isinstance(exc, Interrupted):
        return "interrupted", f"stopped by {exc} ({where})"
    if isinstance(exc, CellExecutionError):  # nbclient already put the traceback under the cell
        return "error", f"{exc.ename}: {first_line(exc.evalue)} ({where})"
    if isinstance(exc, TimeoutError):  # nbclient's CellTimeoutError is one too
        error = f"notebook exceeded its {timeout:g} s limit ({where})"
        _mark_failure(cell, "TimeoutError", error)
        return "timeout", error
    if isinstance(exc, DeadKernelError):
        _mark_failure(cell, "DeadKernelError", f"kernel died ({where}); out of memory, or a crash in native code?")
        return "error", f"kernel died ({where})"
    return "error", f"{type(exc).__name__}: {first_line(exc)}"


def _kernel_process(kernel_manager: Any) -> Any:
    """The kernel's process (a Popen), or None before it starts or without a local provisioner."""
    return getattr(getattr(kernel_manager, "provisioner", None), "process", None)


def _lower_priority(kernel_manager: Any, nice: int) -> None:
    """Lower the kernel's priority before it runs a cell. A kernel starts in a session of its own, and Linux
    shares the CPU fairly between sessions' groups (autogroup) whatever a process's own niceness: so the
    group's niceness is set too (/proc/<pid>/autogroup), else the kernel would keep an equal share beside a
    notebook on the longest chain. A process's niceness is a thread's, and the threads a cell starts (torch's,
    lanes) inherit it from the kernel's main thread, and the kernel its niceness from the runner's (`nice make
    notebooks`): `nice` is added to it."""
    process = _kernel_process(kernel_manager)
    if process is None or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):  # a priority is a speed-up, not a requirement
        os.setpriority(os.PRIO_PROCESS, process.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    with contextlib.suppress(OSError):  # no such file: a kernel without autogroup scheduling, or not Linux
        Path(f"/proc/{process.pid}/autogroup").write_text(str(nice))


def kernel_cpu_seconds(kernel_manager: Any) -> float | None:
    """CPU seconds the kernel's process has computed so far, all its threads (torch's, lanes) together: user
    and system time from /proc (Linux); None elsewhere, or when the kernel is gone."""
    process = _kernel_process(kernel_manager)
    if process is None:
        return None
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


class _NotebookHooks:
    """nbclient's hooks for one notebook's run: its deadline (from the kernel's start), the cell it is at, its
    kernel's priority and CPU time. `client` is set once the client is built, since the client takes the hooks."""

    def __init__(self, timeout: float, nice: int, on_cell: Callable[[int, int], None] | None) -> None:
        self.timeout, self.nice, self.on_cell = timeout, nice, on_cell
        self.deadline, self.cell, self.index, self.cpu, self.client = math.inf, None, None, None, None

    def start(self, **_: Any) -> None:  # kernel is up: the notebook's time starts now
        self.deadline = time.monotonic() + self.timeout
        if self.nice:
            _lower_priority(self.client.km, self.nice)

    def before_cell(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.cell, self.index = cell, cell_index
        if self.on_cell is not None:
            self.on_cell(cell_index + 1, len(self.client.nb.cells))
        # Out of time: stop here, rather than hand each remaining cell time_left's 1 s minimum.
        if time.monotonic() >= self.deadline:
            raise TimeoutError("out of time before this cell started")

    def after_cell(self, **_: Any) -> None:  # the kernel's CPU time, read while it lives: after each cell's reply
        self.cpu = kernel_cpu_seconds(self.client.km)

    def time_left(self, cell: Any) -> int:
        # The limit is for the whole notebook: each cell may use only what the ones before it left.
        # At least 1 s, because nbclient reads 0 as "no timeout".
        return max(1, math.ceil(self.deadline - time.monotonic()))


def _notebook_client(nb: Any, path: Path, timeout: float, hooks: _NotebookHooks) -> NotebookClient:
    """A client that runs `nb` in its folder with the project's kernel, timed and watched by `hooks`."""
    return NotebookClient(
        nb, kernel_name=project_kernel(),
        timeout=max(1, math.ceil(timeout)), timeout_func=hooks.time_left,  # `timeout` covers non-cell waits
        resources={"metadata": {"path": str(path.parent)}},
        on_notebook_start=hooks.start, on_cell_execute=hooks.before_cell, on_cell_executed=hooks.after_cell,
        coalesce_streams=True,  # a progress bar's carriage-return updates collapse to its last line
        shutdown_kernel="immediate",  # results are saved as cells run; a stuck kernel must not hold us up
        log=_NBCLIENT_LOG, config=_KERNEL_CONFIG)


def execute_notebook(path: Path | str, reports_dir: Path | str, profile: str, timeout: float,
                     stop: Stop | None = None, nice: int = 0, lanes_file: Path | None = None,
                     on_cell: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run one notebook; write <stem>.ipynb and .html to the profile's folder of `reports_dir` (see
    config.reports_dir), and the results its Report wrote; return its runs.json entry. `nice` > 0: its
    kernel computes at that lower priority, leaving the CPU to a notebook beside it first. `lanes_file`: the
    file that holds its share of the cores, which its trainings' lanes read before each job (config.lanes_shared;
    without one, every usable CPU). `on_cell(index, cells)` is told as each cell starts (counted from 1, of all
    the notebook's cells).

    Never raises for a failing notebook (cell error, timeout, dead kernel): the failure is visible in
    the executed copy and HTML, and the entry says status error or timeout with a short reason. A stop
    signal (see Stop; `stop` is the run's, else one for this notebook) shuts the kernel down and gives
    status interrupted; then the previous run's executed copy, HTML and results stay as they were. An HTML
    report that cannot be rendered is status error too, but the executed copy and the results are kept.
    """
    path, reports_dir = Path(path).resolve(), Path(reports_dir).resolve()
    folder = profile_reports_dir(profile, reports_dir)
    pending = folder / ".pending" / path.stem  # where the Report writes until the notebook finishes
    discard(pending)  # left by a run that was killed
    hooks = _NotebookHooks(timeout, nice, on_cell)
    nb, status, error, started = None, "ok", None, time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            stop = stop or stack.enter_context(Stop())
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:  # cells that never run this time must not show an earlier run's output
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            hooks.client = _notebook_client(nb, path, timeout, hooks)
            env = {**kernel_env(profile, reports_dir), PENDING_ENV: str(pending)}
            if lanes_file is not None:
                env[LANES_FILE_ENV] = str(lanes_file)
            execute_until_stopped(hooks.client, env, stop)
        except Exception as exc:  # a stop, a failing cell, a timeout, ...: reported, and the series goes on
            status, error = _failure(exc, hooks.cell, hooks.index, timeout)
    seconds = time.monotonic() - started
    # Read before a failed rendering below can make the status an error: the kernel's CPU time was measured.
    cpu = hooks.cpu if status == "ok" else None  # a stopped cell's CPU time was never read
    status, error = publish_run(nb, path.stem, folder, pending, status, error)
    return {"status": status, "seconds": round(seconds, 1), "cpu_seconds": None if cpu is None else round(cpu, 1),
            "profile": profile, "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "error": error}


# ----------------------------------------------------------------------------- a series, side by side


def _heartbeat(at_cell: Mapping[str, tuple[int, int, float]], number: Mapping[str, int], total: int) -> None:
    """A line per running notebook (stem → its cell, its cell count and when it started): how long it has run
    and which cell it is at, so that a long series shows it is alive."""
    for stem, (cell, cells, began) in at_cell.items():
        print(f"[{number[stem]}/{total}] {stem} … running, {fmt_duration(time.monotonic() - began)}, "
              f"cell {cell} of {cells}", flush=True)


class _Series:
    """A series as it runs: its notebooks waiting, running (a thread each) and finished, and the finished ones'
    entries."""

    def __init__(self, paths: Sequence[Path], folder: Path, reports_dir: Path | str, profile: str,
                 timeout: float | None, at_once: int, reads: Mapping[str, Sequence[str]]) -> None:
        self.folder, self.reports_dir, self.profile = folder, reports_dir, profile
        self.timeout, self.at_once = timeout, at_once
        self.path_of = {path.stem: path for path in paths}
        self.number, self.total = {stem: n for n, stem in enumerate(self.path_of, 1)}, len(paths)
        self.after, self.waiting = waits_for(list(self.path_of), reads), list(self.path_of)
        self.chain = set(longest_chain({stem: budget_minutes(stem, "full") or 1.0 for stem in self.number}, reads))
        # Where notebooks can run side by side, each one's trainings get its share of the CPUs (more threads than
        # cores slow them all), rewritten as notebooks start and end (`share_cores`), and those off the chain yield
        # to it; one that can only run alone keeps every CPU.
        self.shared = most_side_by_side(list(self.path_of), at_once, reads)
        self.lanes_files: dict[str, Path] = {}  # each running notebook's share of the cores, when shared
        self.sharing = 0  # how many notebooks the last shares were written for
        self.running: dict[str, threading.Thread] = {}
        self.finished: set[str] = set()  # a failed notebook too: the ones after it run, as they would one by one
        self.entries: dict[str, dict[str, Any]] = {}  # runs.json's entry of each finished notebook
        self.done: queue.Queue = queue.Queue()  # (stem, entry) as each notebook ends
        self.at_cell: dict[str, tuple[int, int, float]] = {}  # stem → (cell, cells, when it started): the heartbeat
        self.stop: Stop | None = None  # the run's, from `run`
        self.most_at_once, self.started = 0, time.monotonic()

    def run(self, stop: Stop) -> None:  # until every notebook has ended, or `stop` came
        self.stop, heartbeat = stop, self.started + HEARTBEAT_SECONDS
        while self.waiting or self.running:
            ready = ready_to_start(self.waiting, self.after, self.finished, len(self.running), self.at_once, START_ORDER)
            for stem in ready:
                if self.stop.signum is not None:  # a signal may come in the middle of this loop
                    break
                self.start(stem)
            self.share_cores()  # after the starts: a notebook that ended and one that took its place change nothing
            if not self.running:
                break  # stopped before the rest could start
            if time.monotonic() >= heartbeat:
                heartbeat = time.monotonic() + HEARTBEAT_SECONDS
                _heartbeat({s: self.at_cell[s] for s in self.running if s in self.at_cell}, self.number, self.total)
            try:
                stem, entry = self.done.get(timeout=0.2)  # short waits: a stop signal reaches this thread in between
            except queue.Empty:
                continue
            self.finish(stem, entry)

    def start(self, stem: str) -> None:  # in a thread of its own, at its priority
        self.waiting.remove(stem)
        beside = f" beside {', '.join(self.running)}" if self.running else ""
        print(f"[{self.number[stem]}/{self.total}] {stem} started{beside}", flush=True)
        limit = self.timeout or notebook_timeout(stem, self.profile)
        nice = YIELDING_NICE if self.shared > 1 and stem not in self.chain else 0
        if self.shared > 1:
            self.lanes_files[stem] = self.folder / ".pending" / f"{stem}.lanes"
            self.lanes_files[stem].parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.lanes_files[stem], self.share(len(self.running) + 1))  # before its kernel reads it
        self.running[stem] = threading.Thread(target=self.execute, args=(self.path_of[stem], limit, nice),
                                              name=stem, daemon=True)
        self.running[stem].start()
        self.most_at_once = max(self.most_at_once, len(self.running))

    @staticmethod
    def share(running: int) -> bytes:  # the lanes each of `running` notebooks may compute on at once
        return str(max(1, usable_cpus() // max(1, running))).encode()

    def share_cores(self) -> None:
        """Give each running notebook's trainings an equal share of the CPUs again, where the number running has
        changed: when one ends, the one beside it takes its core for its next training."""
        if self.lanes_files and len(self.running) != self.sharing:
            self.sharing = len(self.running)
            for stem in self.running:
                write_atomic(self.lanes_files[stem], self.share(self.sharing))

    def execute(self, path: Path, limit: float, nice: int) -> None:  # a notebook's thread
        entry = {"status": "error", "seconds": None, "cpu_seconds": None, "profile": self.profile, "finished": None,
                 "error": None}
        began = time.monotonic()

        def at_cell(cell: int, cells: int) -> None:
            self.at_cell[path.stem] = (cell, cells, began)

        try:
            entry = execute_notebook(path, self.reports_dir, self.profile, limit, self.stop, nice,
                                     self.lanes_files.get(path.stem), on_cell=at_cell)
        except BaseException as exc:  # noqa: BLE001 - e.g. a full disk: the series goes on
            entry["error"] = f"{type(exc).__name__}: {first_line(exc)}"
        finally:
            self.done.put((path.stem, entry))  # always: `run` waits for it

    def finish(self, stem: str, entry: dict[str, Any]) -> None:  # record an ended notebook's run, and say how it went
        self.running.pop(stem).join()
        if stem in self.lanes_files:
            self.lanes_files.pop(stem).unlink(missing_ok=True)
        self.finished.add(stem)
        record_run(self.folder, stem, entry)
        write_index(self.folder)  # after each notebook, so an interrupted series still has a page
        print(f"[{self.number[stem]}/{self.total}] {stem} … "
              f"{progress_suffix(stem, entry, results_by_stem(self.folder).get(stem))}", flush=True)
        self.entries[stem] = entry


def run_notebooks(paths: Sequence[Path], reports_dir: Path | str, profile: str, timeout: float | None = None,
                  stop: Stop | None = None, at_once: int | None = None,
                  reads: Mapping[str, Sequence[str]] = READS_RESULTS_OF) -> dict[str, dict[str, Any]]:
    """Run `paths`, up to `at_once` at a time (default: `default_at_once`), each as soon as the notebooks whose results
    it `reads` have finished (see `waits_for`), those first in config.START_ORDER first (see `ready_to_start`). Print a
    line as each starts and as each ends; keep the profile's runs.json and index.html current after each, and at the
    end, unless stopped, its series.json (see index.record_series). Side by side, the notebooks off the series' longest
    chain (by their budgets, see `longest_chain`) compute at a lower priority, so that a notebook beside them does not
    slow the chain down. After a stop signal (`stop`: the caller's, to learn of it) the running notebooks are stopped
    and no other starts. `timeout`: seconds per notebook; by default each notebook's own (`config.notebook_timeout`). A
    UsageError where another run is writing to the profile's folder."""
    at_once = default_at_once() if at_once is None else at_once
    check_at_once(at_once)
    if not paths:
        return {}
    folder = profile_reports_dir(profile, Path(reports_dir).resolve())
    with contextlib.ExitStack() as stack:
        if not stack.enter_context(sole_holder(folder / ".pending")):  # a run's start discards the other's pending
            raise UsageError(f"another run of the notebooks is writing to {folder}: wait for it to end, or give "
                             "--reports (or MNIST_REPORTS_DIR) another folder")
        # Name and set aside unreadable files now, before the first progress line, rather than in the middle of one.
        for read in (read_runs, read_series, results_by_stem):
            read(folder)
        series = _Series(paths, folder, reports_dir, profile, timeout, at_once, reads)
        series.run(stop or stack.enter_context(Stop()))
        entries = dict(sorted(series.entries.items(), key=lambda item: series.number[item[0]]))
        if series.stop.signum is None:
            record_series(folder, entries, time.monotonic() - series.started, series.most_at_once)
            write_index(folder)
    return entries


# ----------------------------------------------------------------------------- command line


def _parser() -> CommandParser:
    parser = CommandParser(prog="python -m mnist_utils.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("selectors", nargs="*", metavar="SELECTOR",
                        help="notebook number (00, 3) or stem (00_eda); none: all")
    parser.add_argument("--profile", choices=PROFILES, help="default: $MNIST_PROFILE, else full")
    parser.add_argument("--timeout", type=float,
                        help=f"seconds per notebook (default: {TIMEOUT_HEADROOM:g}× its budget in the full profile, "
                             f"see config.NOTEBOOK_PLANS; {SMOKE_TIMEOUT} in the smoke profile)")
    parser.add_argument("--at-once", "-j", type=int, metavar="N",
                        help="notebooks side by side at most (default: one per usable CPU; 1 on a GPU)")
    parser.add_argument("--reports", type=user_path,
                        help="reports folder (default: $MNIST_REPORTS_DIR, else reports/); the smoke profile writes to "
                             "its smoke/ subfolder")
    parser.add_argument("--notebooks", type=user_path, default=NOTEBOOKS_DIR, help="folder of NN_*.ipynb")
    return parser


def _summarize(entries: dict[str, dict[str, Any]], total: int, profile: str, reports: Path, stop: Stop,
               started: float) -> int:
    """Print the run's last line (notebooks ok, in how long, those not, the index) and return the exit status it
    means."""
    failed = [stem for stem, e in entries.items() if e["status"] in ("error", "timeout")]
    interrupted = [stem for stem, e in entries.items() if e["status"] == "interrupted"]
    ok = len(entries) - len(failed) - len(interrupted)
    series = read_series(profile_reports_dir(profile, reports)) if stop.signum is None else None
    # the index's and the README's figure, where the run recorded one: the same run reads the same everywhere
    seconds = series["seconds"] if series else time.monotonic() - started
    at_once = f", up to {series['side_by_side']} side by side" if series and series["side_by_side"] > 1 else ""
    busy = series and cpu_busy(series)
    at_once += f"; {busy}" if busy else ""
    summary = f"{ok}/{len(entries)} notebooks ok in {fmt_duration(seconds)} ({profile} profile{at_once})"
    summary += f"; failed: {', '.join(failed)}" if failed else ""
    summary += f"; interrupted: {', '.join(interrupted)}" if interrupted else ""
    if stop.signum is not None:
        summary += f"; stopped by {stop.name}" + (f", {total - len(entries)} not run" if len(entries) < total else "")
    print(f"{summary} → {profile_reports_dir(profile, reports) / 'index.html'}", flush=True)
    if stop.signum is not None:
        return 128 + stop.signum  # as a shell reports a process killed by the signal: 130 for SIGINT
    return 1 if ok < len(entries) else 0


def _with_inputs(paths: list[Path], notebooks: Path, profile: str, reports: Path) -> list[Path]:
    """`paths`, and before them the notebooks whose results they read, directly or through another, where the
    profile has no whole run of those (`results.unfinished`): saying so in a line. A ValueError where `notebooks`
    lacks one of them."""
    have = {stem for stem, r in results_by_stem(profile_reports_dir(profile, reports)).items()
            if r.get("profile") == profile and not unfinished(r)}
    first = inputs_to_run([path.stem for path in paths], have)
    if not first:
        return paths
    try:
        wanted = find_notebooks(notebooks, [*first, *(path.stem for path in paths)])
    except ValueError as exc:
        raise ValueError(f"the notebooks asked for read the results of {', '.join(first)}, of which the {profile} "
                         f"profile has no whole run, and {notebooks} cannot run them: {exc}") from None
    print(f"{', '.join(path.stem for path in wanted if path.stem not in first)} read the results of "
          f"{', '.join(first)}, which the {profile} profile has no whole run of: running "
          f"{'it' if len(first) == 1 else 'them'} first", flush=True)
    return wanted


def _checked(args: Any) -> tuple[str, list[Path], int, Path]:
    """The profile, the notebooks (and before them those whose results they read), how many run at once and the
    reports folder that `args` ask for; a UsageError naming the fix for any that cannot be."""
    try:
        profile = get_profile(args.profile).name
        paths = find_notebooks(args.notebooks, args.selectors)
        at_once = default_at_once() if args.at_once is None else args.at_once  # reads MNIST_DEVICE: checked
        check_at_once(at_once)
        if args.timeout is not None and not 0 < args.timeout < math.inf:
            raise ValueError(f"--timeout is a number of seconds above 0, got {args.timeout:g}")
        if not paths:
            raise ValueError(f"no {NOTEBOOK_GLOB} in {args.notebooks}")
        reports = Path(args.reports or reports_root()).resolve()
        if why := unwritable(profile_reports_dir(profile, reports)):  # before any notebook's minutes are spent
            raise ValueError(f"the reports cannot be written: {why}. Give --reports (or MNIST_REPORTS_DIR) a folder "
                             "that can be")
        return profile, _with_inputs(paths, args.notebooks, profile, reports), at_once, reports
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    return command_status(lambda: _run(*_checked(args), args.timeout))


def _run(profile: str, paths: list[Path], at_once: int, reports: Path, timeout: float | None) -> int:
    unbudgeted = [path.stem for path in paths if profile == "full" and budget_minutes(path.stem, profile) is None]
    if unbudgeted and timeout is None:  # it runs, but its budget would judge its time and set its timeout
        print(f"note: no budget for {', '.join(unbudgeted)} in config.NOTEBOOK_PLANS: the index shows each one's time "
              f"without one, and the runner stops each after {notebook_timeout(unbudgeted[0], profile) / 60:g} "
              "minutes", file=sys.stderr)
    started = time.monotonic()
    with Stop() as stop:
        entries = run_notebooks(paths, reports, profile, timeout, stop=stop, at_once=at_once)
        return _summarize(entries, len(paths), profile, reports, stop, started)


if __name__ == "__main__":
    sys.exit(main())
