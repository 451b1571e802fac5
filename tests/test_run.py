"""The headless runner: choosing notebooks, running them in a real kernel, runs.json and index.html.

Every notebook here is a tiny throw-away one built in tmp_path; each kernel start costs a second or
two, so the kernel tests are few and each checks several things about one run."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from mnist_utils import publish, run
from mnist_utils.config import PROJECT_ROOT
from mnist_utils.report import Report
from mnist_utils.results import MissingResults, load_result
from conftest import default_stop_signals


def make_notebook(folder: Path, stem: str, *sources: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell(f"# {stem}"), *(new_code_cell(s) for s in sources)])
    path = folder / f"{stem}.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def text_outputs(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


# ----------------------------------------------------------------------------- selectors (no kernel)


@pytest.fixture
def series(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    for stem in ("10_last", "03_third", "00_eda", "01_first"):
        make_notebook(folder, stem, "pass")
    make_notebook(folder, "scratch", "pass")  # not NN_*: never picked
    make_notebook(folder, "7_one_digit", "pass")
    make_notebook(folder, "00_eda.nbconvert", "pass")  # what `jupyter nbconvert --execute` writes beside it
    make_notebook(folder, "01_first-output", "pass")  # an executor's output named by hand
    return folder


def test_no_selector_means_every_numbered_notebook_in_number_order(series: Path) -> None:
    assert [p.stem for p in run.find_notebooks(series)] == ["00_eda", "01_first", "03_third", "10_last"]


def test_executed_copies_beside_a_notebook_are_ignored_by_the_runner_and_by_git(series: Path) -> None:
    assert [p.stem for p in run.find_notebooks(series, ["00", "01"])] == ["00_eda", "01_first"]
    with pytest.raises(ValueError, match="No notebook matches '00_eda.nbconvert'"):
        run.find_notebooks(series, ["00_eda.nbconvert"])
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "notebooks/00_eda.nbconvert.ipynb", "notebooks/00_eda.html"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["notebooks/00_eda.nbconvert.ipynb", "notebooks/00_eda.html"]


def test_selectors_by_number_or_stem_come_back_in_number_order_once(series: Path) -> None:
    assert [p.stem for p in run.find_notebooks(series, ["00"])] == ["00_eda"]
    assert [p.stem for p in run.find_notebooks(series, ["10", "3", "00_eda"])] == ["00_eda", "03_third", "10_last"]
    assert [p.stem for p in run.find_notebooks(series, ["1", "01_first.ipynb"])] == ["01_first"]


def test_unknown_selector_is_an_error_naming_the_available_notebooks(series: Path, capsys) -> None:
    for selector in ("²", "2"):  # "²" is a digit to str.isdigit, not to int
        with pytest.raises(ValueError, match=f"No notebook matches '{selector}'") as caught:
            run.find_notebooks(series, [selector])
        assert all(stem in str(caught.value) for stem in ("00_eda", "01_first", "03_third", "10_last"))
    assert run.main(["04_missing", "--notebooks", str(series), "--reports", str(series.parent / "r")]) == 2
    assert "00_eda" in capsys.readouterr().err


def test_a_device_this_machine_lacks_is_an_error_before_anything_runs(series: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DEVICE", "cuda:99")  # no machine has a hundredth GPU
    assert run.main(["--notebooks", str(series), "--reports", str(series.parent / "r")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and not (series.parent / "r").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--at-once", "0"], "notebooks at once (--at-once) must be at least 1"),
    *((["--timeout", t], f"--timeout is a number of seconds above 0, got {float(t):g}") for t in ("0", "-5", "nan"))])
def test_arguments_it_cannot_run_by_are_an_error_before_anything_runs(arguments, message, series: Path, capsys) -> None:
    reports = series.parent / "r"
    assert run.main([*arguments, "--notebooks", str(series), "--reports", str(reports)]) == 2
    assert message in capsys.readouterr().err and not reports.exists()


def test_kernel_choice_and_environment(monkeypatch, tmp_path: Path) -> None:
    specs = {"python3": "/somewhere"}
    monkeypatch.setattr(run.KernelSpecManager, "find_kernel_specs", lambda self: specs)
    assert run.project_kernel() == "python3"
    specs["mnist-notebooks"] = "/elsewhere"
    assert run.project_kernel() == "mnist-notebooks"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    env = run.kernel_env("smoke", "rel/reports")
    assert env["MNIST_PROFILE"] == "smoke" and env["PYTHONPATH"].split(":")[0] == str(PROJECT_ROOT)
    assert env["MNIST_REPORTS_DIR"] == str(tmp_path / "rel" / "reports")  # absolute: the kernel runs elsewhere
    assert "MPLBACKEND" not in env  # else figures would not be embedded in the report


def test_fmt_duration() -> None:
    assert [run.fmt_duration(s) for s in (3.21, 192, 3725, None)] == ["3.2s", "3m12s", "1h02m", "—"]


# ----------------------------------------------------------------------------- running (real kernels)


def test_a_failing_notebook_is_reported_and_the_series_goes_on(tmp_path: Path, monkeypatch, capsys) -> None:
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    boom = make_notebook(notebooks, "01_boom", "print('before')\nfrom mnist_utils.report import Report\n"
                         "Report('01_boom', 'Fails half-way').target('acc', '>', 50, 'Accuracy', '%')",
                         "raise ValueError('boom')", "print('after')")
    # The source carries an output from some earlier run: the executed copy must not show it.
    nb = nbformat.read(boom, as_version=4)
    nb.cells[3].outputs = [new_output("stream", name="stdout", text="STALE OUTPUT\n")]
    nbformat.write(nb, boom)
    make_notebook(notebooks, "02_ok",
        "import os\nprint(os.environ['MNIST_PROFILE'], os.environ['MNIST_REPORTS_DIR'], os.getcwd(), sep='\\n')",
        "from mnist_utils.report import Report\n"
        "report = Report('02_ok', 'Tiny but fine')\n"
        "report.target('acc', '>', 50, 'Accuracy', '%')\n"
        "report.target('params', '<', 10, 'Parameters')\n"
        "report.headline('acc', 'Test accuracy', '%')\n"
        "report.record(acc=99.32, params=100)",
        "import time\nbusy_until = time.process_time() + 0.6  # the last cell computes: its CPU time must count\n"
        "while time.process_time() < busy_until:\n    pass")
    # A full run's outputs, which a smoke run must leave alone.
    full_outputs = {"runs.json": '{"02_ok": {"status": "ok"}}', "index.html": "full index", "02_ok.html": "full report",
                    "02_ok.ipynb": "full executed copy", "results/02_ok.json": '{"notebook": "02_ok", "profile": "full"}'}
    for name, text in full_outputs.items():
        (reports / name).parent.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text(text)
    # An earlier smoke run: another notebook's entry, and stale results for the failing one.
    smoke = reports / "smoke"
    old_entry = {"status": "ok", "seconds": 5.0, "profile": "smoke", "finished": "2024-01-01T00:00:00+00:00", "error": None}
    (smoke / "results").mkdir(parents=True)
    (smoke / "runs.json").write_text(json.dumps({"00_old": old_entry}))
    (smoke / "results" / "01_boom.json").write_text(json.dumps({"notebook": "01_boom", "title": "Old numbers"}))
    (smoke / "results" / "00_old.json").write_text('{"notebook": "00_old", "tit')  # cut short: named, set aside
    monkeypatch.setenv("MNIST_PROFILE", "full")  # --profile wins over the environment

    code = run.main(["--notebooks", str(notebooks), "--reports", str(reports), "--profile", "smoke", "--timeout", "120"])

    assert code == 1, "a failed notebook: status 1"
    captured = capsys.readouterr()
    assert captured.err.startswith(f"warning: {smoke / 'results' / '00_old.json'} is not a readable results file")
    assert (smoke / "results" / "00_old.json.corrupt").exists()
    out = captured.out.splitlines()
    # Neither is known to read the other's results, so 02 waits for 01 (config.READS_RESULTS_OF), even though
    # it comes after a failure.
    assert out[0] == "[1/2] 01_boom started"
    assert out[1].startswith("[1/2] 01_boom … error in ") and "ValueError: boom (cell [2])" in out[1]
    assert out[2] == "[2/2] 02_ok started"
    assert out[3].startswith("[2/2] 02_ok … ok in ") and out[3].endswith("· Test accuracy: 99.32% · targets 1/2 met")
    assert out[4].startswith("1/2 notebooks ok in ") and "failed: 01_boom" in out[4]
    assert out[4].endswith(f"→ {smoke.resolve() / 'index.html'}")
    series = json.loads((smoke / "series.json").read_text())
    assert series["notebooks"] == ["01_boom", "02_ok"] and series["ok"] == 1 and series["profile"] == "smoke"
    assert series["side_by_side"] == 1  # 02 waited for 01: one at a time
    assert 0 < series["seconds"] and series["notebook_seconds"] == pytest.approx(
        sum(json.loads((smoke / "runs.json").read_text())[s]["seconds"] for s in ("01_boom", "02_ok")), abs=0.2)
    # Each kernel's CPU time, read from /proc while it lived; the series' is their sum, beside the machine's CPUs.
    # A failed notebook's is unknown (its failing cell's was never read), and so is the series'.
    cpu = {s: json.loads((smoke / "runs.json").read_text())[s]["cpu_seconds"] for s in ("01_boom", "02_ok")}
    assert cpu["01_boom"] is None and series["cpu_seconds"] is None and series["cpus"] >= 1
    if Path("/proc/self/stat").exists():
        assert 0.6 <= cpu["02_ok"] < 60, cpu
    for name, text in full_outputs.items():
        assert (reports / name).read_text() == text, f"a smoke run replaced the full run's {name}"

    runs = json.loads((smoke / "runs.json").read_text())
    assert runs["00_old"] == old_entry  # merged, not replaced
    assert runs["01_boom"]["status"] == "error" and runs["01_boom"]["error"].startswith("ValueError: boom")
    assert runs["02_ok"]["status"] == "ok" and runs["02_ok"]["error"] is None
    assert {runs[s]["profile"] for s in ("01_boom", "02_ok")} == {"smoke"}
    assert runs["02_ok"]["seconds"] > 0 and runs["02_ok"]["finished"]

    for stem in ("01_boom", "02_ok"):
        assert (smoke / f"{stem}.ipynb").exists() and (smoke / f"{stem}.html").exists()
    page = (smoke / "01_boom.html").read_text()
    assert "boom" in page and "before" in page and "STALE OUTPUT" not in page
    # printed lines keep their width (a progress bar's last figure is not wrapped onto a line of its own): the
    # report's rule comes after the template's wrapping one, so it is the one that applies
    assert page.index(".jp-RenderedText pre{white-space:pre;") > page.rindex("white-space: pre-wrap")
    assert page.index("<a href='index.html'>← all reports</a>") > page.index("<body")  # and leads back to the index
    # Its old numbers went; the half-run's results (a target, no value) are marked as stopped early, and a
    # notebook that builds on them is told to run it again, not handed a run that stopped half-way.
    half = json.loads((smoke / "results" / "01_boom.json").read_text())
    assert half["title"] == "Fails half-way" and half["stopped"].startswith("ValueError: boom (cell [2])")
    with pytest.raises(MissingResults, match=r"01_boom's results .* there stopped early \(ValueError: boom .*\): "
                                             r"run it to the end first \(`make notebooks NB=01 PROFILE=smoke`"):
        load_result("01_boom", "smoke", smoke / "results")

    # The kernel ran in the notebook's folder with the runner's profile and reports folder.
    assert text_outputs(smoke / "02_ok.ipynb").split() == ["smoke", str(reports.resolve()), str(notebooks.resolve())]
    results = json.loads((smoke / "results" / "02_ok.json").read_text())
    assert results["profile"] == "smoke" and results["headline"]["value"] == 99.32

    index = (smoke / "index.html").read_text()
    for stem in ("00_old", "01_boom", "02_ok"):
        assert stem in index
    assert "href='01_boom.html'" in index and "href='02_ok.html'" in index
    assert "Old numbers" not in index and "Tiny but fine" in index


@pytest.mark.parametrize("last_cell, status, first_error", [
    ("pass", "error", "its HTML report could not be written"),
    ("raise ValueError('boom')", "error", "ValueError: boom"),
    ("import time\ntime.sleep(30)", "timeout", "notebook exceeded its 8 s limit"),
])
def test_a_report_that_cannot_be_rendered_loses_neither_the_executed_copy_nor_the_results(
        tmp_path: Path, monkeypatch, last_cell: str, status: str, first_error: str) -> None:
    path = make_notebook(tmp_path / "nb", "01_fine", "from mnist_utils.report import Report\n"
                         "Report('01_fine', 'Fine').record(acc=99.5)", last_cell)
    smoke = tmp_path / "reports" / "smoke"
    smoke.mkdir(parents=True)
    (smoke / "01_fine.html").write_text("the previous run's report")

    class BrokenExporter:  # what nbconvert installed without its templates does
        def __init__(self, **kwargs):
            raise ValueError("No template sub-directory with name 'lab' found")

    monkeypatch.setattr(publish, "HTMLExporter", BrokenExporter)
    entry = run.execute_notebook(path, tmp_path / "reports", "smoke", timeout=8)

    assert entry["status"] == status, "a failed rendering makes a run an error, and leaves a timeout a timeout"
    assert entry["error"].startswith(first_error) and "No template sub-directory" in entry["error"]
    assert entry["error"].endswith(f"the executed notebook is {smoke.resolve() / '01_fine.ipynb'}")
    if status == "error" and last_cell == "pass" and Path("/proc/self/stat").exists():
        assert entry["cpu_seconds"] is not None, "the kernel's CPU time was measured: the rendering does not lose it"
    assert nbformat.read(smoke / "01_fine.ipynb", as_version=4).cells[1].execution_count == 1, "this run's copy"
    assert json.loads((smoke / "results" / "01_fine.json").read_text())["metrics"]["acc"] == 99.5
    assert not (smoke / "01_fine.html").exists(), "an older run's report must not pass for this run's"


def test_a_run_where_every_notebook_succeeds_exits_0(tmp_path: Path, capsys, monkeypatch) -> None:
    notebooks, reports, seen = tmp_path / "notebooks", tmp_path / "reports", tmp_path / "seen"
    # Alone, a notebook keeps its priority and every CPU (no MNIST_LANES), whatever --at-once allows.
    make_notebook(notebooks, "01_fine", f"import os\nopen({str(seen)!r}, 'w').write("
                                        "f\"{os.getpriority(os.PRIO_PROCESS, 0)} {os.environ.get('MNIST_LANES')}\")")
    record_series = run.record_series  # the series' time as recorded, set apart from any clock's
    monkeypatch.setattr(run, "record_series", lambda folder, entries, seconds, most: record_series(folder, entries,
                                                                                                 754.3, most))
    assert run.main(["--notebooks", str(notebooks), "--reports", str(reports), "--profile", "smoke",
                     "--timeout", "120", "--at-once", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("1/1 notebooks ok in 12m34s "), "the index's own time"
    assert (reports / "smoke" / "index.html").exists()
    assert seen.read_text() == f"{os.getpriority(os.PRIO_PROCESS, 0)} None"


def test_a_long_notebook_says_it_is_running_and_at_which_cell(tmp_path: Path, capsys, monkeypatch) -> None:
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    make_notebook(notebooks, "01_slow", "x = 1", "import time\ntime.sleep(2.5)", "y = 2")
    monkeypatch.setattr(run, "HEARTBEAT_SECONDS", 1.0)
    assert run.main(["--notebooks", str(notebooks), "--reports", str(reports), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out.splitlines()
    beats = [line for line in out if "running" in line]
    assert beats and all(re.fullmatch(r"\[1/1\] 01_slow … running, \d+\.\ds, cell \d of 4", line) for line in beats), out
    assert any("cell 3 of 4" in line for line in beats), "the cell that sleeps (after the title and the first)"
    assert out.index(beats[0]) > out.index("[1/1] 01_slow started") and out[-1].startswith("1/1 notebooks ok")


def test_a_notebooks_models_reach_reports_models_when_it_finishes_not_before(tmp_path: Path) -> None:
    saves = ("from models import Model_1\n"
             "from mnist_utils.checkpoints import models_dir, save_trained\n"
             "from mnist_utils.recipes import load_config\n"
             "path = save_trained(Model_1(), load_config('step1'), seed=1, test_acc=10.0, epochs=0, notebook='01_saves')\n"
             "assert path == 'models/step1-seed1.safetensors', path\n"
             "assert not (models_dir() / 'step1-seed1.safetensors').exists(), 'published before the notebook ended'")
    path = make_notebook(tmp_path / "nb", "01_saves", saves)
    entry = run.execute_notebook(path, tmp_path / "reports", "smoke", timeout=120)
    assert entry["status"] == "ok", entry["error"]
    models = tmp_path / "reports" / "smoke" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["step1-seed1.json", "step1-seed1.safetensors"]
    assert not (tmp_path / "reports" / "smoke" / ".pending" / "01_saves").exists()


def test_the_timeout_is_for_the_whole_notebook(tmp_path: Path) -> None:
    # Each sleep(3) fits in a 5 s limit on its own; together they do not, so a whole-notebook limit
    # stops the second one, long before the sleep(30).
    path = make_notebook(tmp_path / "nb", "05_slow", "import time\ntime.sleep(3)", "time.sleep(3)", "time.sleep(30)")
    entry = run.execute_notebook(path, tmp_path / "reports", "smoke", timeout=5)

    assert entry["status"] == "timeout"
    assert "cell [2]" in entry["error"]
    executed = nbformat.read(tmp_path / "reports" / "smoke" / "05_slow.ipynb", as_version=4)
    assert executed.cells[3].execution_count is None  # the sleep(30) never started
    assert "exceeded its 5 s limit" in (tmp_path / "reports" / "smoke" / "05_slow.html").read_text()


def test_a_kernel_that_dies_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "nb", "06_dies", "print('alive')", "import os\nos._exit(1)", "print('never')")
    entry = run.execute_notebook(path, tmp_path / "reports", "smoke", timeout=60)

    assert entry["status"] == "error" and entry["error"].startswith("kernel died")
    page = (tmp_path / "reports" / "smoke" / "06_dies.html").read_text()
    assert "alive" in page and "kernel died" in page


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_the_run_shuts_the_kernel_down_and_keeps_the_previous_outputs(tmp_path: Path, signum) -> None:
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    started = tmp_path / "kernel.pid"
    make_notebook(notebooks, "01_sleeps",
                  "from mnist_utils.report import Report\n"
                  "report = Report('01_sleeps', 'New run')\n"
                  "report.target('acc', '>', 50, 'Accuracy', '%')  # saved at once: a results file, the target not met",
                  f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\ntime.sleep(300)")
    make_notebook(notebooks, "02_never", "print('ran')")
    # The previous, finished run's outputs.
    Report("01_sleeps", "Previous run", output_dir=reports / "results").record(acc=99.0)
    previous = {"01_sleeps.ipynb": "previous executed copy", "01_sleeps.html": "previous report"}
    for name, text in previous.items():
        (reports / name).write_text(text)
    previous["results/01_sleeps.json"] = (reports / "results" / "01_sleeps.json").read_text()

    runner = subprocess.Popen(
        [sys.executable, "-m", "mnist_utils.run", "--notebooks", str(notebooks), "--reports", str(reports), "--profile",
         "full", "--timeout", "600"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_stop_signals)  # as a terminal's foreground job has them
    try:
        for _ in range(1200):  # until the second cell runs (or two minutes pass: then the test fails below)
            if started.exists() and started.read_text() or runner.poll() is not None:
                break
            time.sleep(0.1)
        assert runner.poll() is None and started.read_text(), runner.communicate()
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()

    name = signal.Signals(signum).name
    assert runner.returncode == 128 + signum, (out, err)  # 130 for SIGINT, as a shell reports Ctrl-C
    lines = out.splitlines()
    assert lines.pop(0) == "[1/2] 01_sleeps started"
    assert lines[0].startswith("[1/2] 01_sleeps … interrupted in ")
    # The sleeping cell is named by its [2] prompt once nbclient has read the kernel's execute_input message,
    # and by its position (third cell) if the signal came first: both find it in the notebook.
    assert re.search(rf"stopped by {name} \(cell (\[2\]|3)\); the report and results shown are the previous run's$",
                     lines[0]), lines[0]
    assert lines[1].startswith("0/1 notebooks ok in ") and f"interrupted: 01_sleeps; stopped by {name}, 1 not run" in lines[1]
    assert len(lines) == 2 and not err

    runs = json.loads((reports / "runs.json").read_text())
    assert list(runs) == ["01_sleeps"] and runs["01_sleeps"]["status"] == "interrupted"
    assert "interrupted" in (reports / "index.html").read_text()
    for name, text in previous.items():
        assert (reports / name).read_text() == text, f"the interrupted run replaced {name}"
    assert not (reports / ".pending" / "01_sleeps").exists()
    assert not (reports / "series.json").exists(), "a stopped run records no series time"
    assert not alive(int(started.read_text())), "the kernel was shut down"


def test_notebooks_that_read_nothing_of_each_other_run_side_by_side_and_a_stop_ends_both(tmp_path: Path, monkeypatch,
                                                                                         capsys, python_handles_ctrl_c):
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(run, "usable_cpus", lambda: 2)  # two cores to share, on any machine
    stamp = ("import os, time\n"  # when, which process, its niceness and its session group's (- without one)
             "group = open('/proc/self/autogroup').read().split()[-1] if os.path.exists('/proc/self/autogroup') else '-'\n"
             "open(os.path.join({folder!r}, {name!r}), 'w')"
             ".write(f'{{time.time()}} {{os.getpid()}} {{os.getpriority(os.PRIO_PROCESS, 0)}} {{group}} "
             "{{open(os.environ[\"MNIST_LANES_FILE\"]).read()}}')")
    # Each marks its start, waits (a minute at most) until the other has started, then marks its end: side by
    # side, both end at once; one after the other, the first ends a minute before the second starts.
    waits = ("deadline = time.time() + 60\n"
             "while not os.path.exists(os.path.join({folder!r}, {other!r})) and time.time() < deadline:\n"
             "    time.sleep(0.05)")
    for stem, other in (("01_a", "02_b"), ("02_b", "01_a")):
        make_notebook(notebooks, stem, stamp.format(folder=str(marks), name=f"{stem}.start"),
                      waits.format(folder=str(marks), other=f"{other}.start"),
                      stamp.format(folder=str(marks), name=f"{stem}.end"),
                      *(() if stem == "02_b" else  # then, once 02_b has ended, 01_a's share of the cores grows
                        (waits.format(folder=str(marks), other="02_b.end") + "\nshare = os.environ['MNIST_LANES_FILE']\n"
                         "while open(share).read() == open(os.path.join({folder!r}, '01_a.end')).read().split()[4]"
                         " and time.time() < deadline + 30:\n    time.sleep(0.05)".format(folder=str(marks)),
                         stamp.format(folder=str(marks), name="01_a.alone"))))
    make_notebook(notebooks, "03_after", stamp.format(folder=str(marks), name="03_after.start"))  # reads both
    reads = {"01_a": (), "02_b": ()}  # 03_after, not listed: it waits for both
    paths = run.find_notebooks(notebooks)

    entries = run.run_notebooks(paths, reports, "smoke", timeout=120, at_once=2, reads=reads)

    assert [e["status"] for e in entries.values()] == ["ok", "ok", "ok"]
    when = {name.name: float(name.read_text().split()[0]) for name in marks.iterdir()}
    assert when["01_a.start"] < when["02_b.end"] and when["02_b.start"] < when["01_a.end"], "they overlapped"
    assert when["03_after.start"] > max(when["01_a.end"], when["02_b.end"]), "03 waited for both"
    # The longest chain (01_a, then 03_after: a tie with 02_b goes to the lower number) keeps its priority;
    # 02_b, beside it, yields.
    base, nice = os.getpriority(os.PRIO_PROCESS, 0), {n.name: int(n.read_text().split()[2]) for n in marks.iterdir()}
    yields = min(19, base + run.YIELDING_NICE)  # the runner's own niceness (nice make notebooks), and more
    assert nice == {"01_a.start": base, "01_a.end": base, "01_a.alone": base, "02_b.start": yields, "02_b.end": yields,
                    "03_after.start": base}
    # Each kernel's share of the CPUs (config.lanes_shared): half side by side, all alone (01_a once 02_b has ended)
    half, whole = "1", "2"  # of the 2 CPUs the runner was told it has (on one, the shares could not grow)
    share = {name.name: name.read_text().split()[4] for name in marks.iterdir()}
    assert share == {"01_a.start": half, "01_a.end": half, "02_b.start": half, "02_b.end": half,
                     "01_a.alone": whole, "03_after.start": whole}
    assert not list((reports / "smoke" / ".pending").glob("*.lanes")), "each share's file goes with its notebook"
    group = {name.name: name.read_text().split()[3] for name in marks.iterdir()}
    if os.path.exists("/proc/self/autogroup"):  # Linux shares the CPU between the kernels' sessions by these
        assert group == {stem: str(n) for stem, n in nice.items()}
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["[1/3] 01_a started", "[2/3] 02_b started beside 01_a"]
    assert json.loads((reports / "smoke" / "series.json").read_text())["side_by_side"] == 2

    # A stop signal while both sleep: both kernels are shut down, both recorded interrupted, 03 never starts.
    for name in marks.iterdir():
        name.unlink()
    for stem in ("01_a", "02_b"):
        make_notebook(notebooks, stem, stamp.format(folder=str(marks), name=f"{stem}.start"), "time.sleep(300)")

    def interrupt_once_both_sleep() -> None:
        for _ in range(1200):
            if all((marks / f"{stem}.start").exists() for stem in ("01_a", "02_b")):
                time.sleep(0.5)  # into the sleeping cell
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)  # after two minutes in any case: the asserts below then say why

    with run.Stop() as stop:
        threading.Thread(target=interrupt_once_both_sleep, daemon=True).start()
        entries = run.run_notebooks(paths, reports, "smoke", timeout=600, stop=stop, at_once=2, reads=reads)
    assert stop.signum == signal.SIGINT
    assert all((marks / f"{stem}.start").exists() for stem in ("01_a", "02_b")), "both kernels were running"
    assert list(entries) == ["01_a", "02_b"] and {e["status"] for e in entries.values()} == {"interrupted"}
    assert not (marks / "03_after.start").exists()
    for stem in ("01_a", "02_b"):
        assert not alive(int((marks / f"{stem}.start").read_text().split()[1])), f"{stem}'s kernel was shut down"


def test_a_cell_is_named_by_its_prompt_else_by_its_position() -> None:
    ran, not_yet = new_code_cell("x"), new_code_cell("y")
    ran.execution_count = 2
    assert run._cell_label(ran, 2) == "cell [2]"
    assert run._cell_label(not_yet, 2) == "cell 3"  # no prompt recorded yet: the third cell
    assert run._cell_label(None, None) == "kernel start"


# ----------------------------------------------------------------------------- kernel CPU time (no kernel)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="CPU times come from /proc (Linux)")
def test_a_kernels_cpu_time_is_its_processs_user_and_system_time() -> None:
    from types import SimpleNamespace

    busy_until = time.process_time() + 0.2
    while time.process_time() < busy_until:
        pass
    this_process = SimpleNamespace(provisioner=SimpleNamespace(process=SimpleNamespace(pid=os.getpid())))
    before = os.times()
    measured = run.kernel_cpu_seconds(this_process)
    after = os.times()
    assert before.user + before.system - 0.02 <= measured <= after.user + after.system + 0.02
    assert run.kernel_cpu_seconds(SimpleNamespace()) is None, "no kernel process: unknown"


def test_each_way_a_notebook_run_ends_has_its_status_and_a_line_naming_the_cell():
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from mnist_utils.stopping import Interrupted

    def cell():
        return new_code_cell("train()", execution_count=7)

    shown = cell()
    assert run._failure(Interrupted("SIGTERM"), shown, 3, 60) == ("interrupted", "stopped by SIGTERM (cell [7])")
    failed = CellExecutionError("traceback", "ValueError", "bad value\nmore")
    assert run._failure(failed, cell(), 3, 60) == ("error", "ValueError: bad value (cell [7])")
    assert run._failure(CellTimeoutError("slow"), shown, 3, 90) == (
        "timeout", "notebook exceeded its 90 s limit (cell [7])")
    dead = cell()
    assert run._failure(DeadKernelError("gone"), dead, 3, 60) == ("error", "kernel died (cell [7])")
    assert run._failure(OSError("disk full"), None, None, 60) == ("error", "OSError: disk full")
    # what nbclient does not show under a cell, the runner does: the timeout, and a dead kernel with its likely cause
    assert shown.outputs[-1]["ename"] == "TimeoutError" and "90 s limit" in shown.outputs[-1]["evalue"]
    assert dead.outputs[-1]["evalue"].endswith("kernel died (cell [7]); out of memory, or a crash in native code?")
