from types import SimpleNamespace

import pytest
from IPython.core.events import EventManager, available_events

from mnist_utils import clock as clock_module
from mnist_utils.clock import CellClock
from mnist_utils.report import Report


class Ticks:
    """A clock the test sets by hand: no test here waits."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def shell():
    """A stand-in for the IPython shell, with IPython's own event manager."""
    return SimpleNamespace(events=EventManager(None, available_events))


def listening(shell) -> list[int]:
    return [len(shell.events.callbacks[event]) for event in ("pre_run_cell", "post_run_cell")]


def test_in_ipython_the_cells_time_counts_and_the_pauses_between_cells_do_not(shell):
    ticks = Ticks(10.0)
    clock = CellClock(shell=shell, now=ticks)  # made inside a cell, at 10 s
    ticks.at = 12.0
    shell.events.trigger("post_run_cell", None)  # that cell ends: 2 s
    ticks.at = 100.0  # a reader pauses for 88 s
    shell.events.trigger("pre_run_cell", None)
    ticks.at = 103.0
    assert clock.seconds() == pytest.approx(5.0), "the running cell counts up to now"
    ticks.at = 104.0
    shell.events.trigger("post_run_cell", None)
    ticks.at = 500.0
    assert clock.seconds() == pytest.approx(6.0), "between cells the clock stands still"
    shell.events.trigger("pre_run_cell", None)
    ticks.at = 530.0
    shell.events.trigger("post_run_cell", None)
    assert clock.seconds() == pytest.approx(36.0) and clock.minutes() == pytest.approx(0.6)


def test_outside_ipython_it_is_the_wall_clock():
    ticks = Ticks(3.0)
    clock = CellClock(now=ticks)  # pytest runs no IPython shell
    ticks.at = 63.0
    assert clock.seconds() == pytest.approx(60.0) and clock.minutes() == pytest.approx(1.0)


def test_a_report_made_in_a_notebook_keeps_its_cells_time(tmp_path, monkeypatch, shell):
    monkeypatch.setattr(clock_module, "_ipython", lambda: shell)  # as if made in a Jupyter cell
    report = Report("06_demo", "Demo", output_dir=tmp_path)
    assert listening(shell) == [1, 1], "its clock hears each cell start and end"
    shell.events.trigger("post_run_cell", None)
    assert report.clock.seconds() == report.clock.seconds(), "between cells its clock stands still"


def test_the_clock_finds_the_running_ipython_shell(monkeypatch, shell):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert clock_module._ipython() is shell


def test_a_clock_made_again_leaves_the_shell_listening_to_the_new_one_only(shell):
    ticks = Ticks(0.0)
    first = CellClock(shell=shell, now=ticks)
    first_ends = shell.events.callbacks["post_run_cell"][0]
    second = CellClock(shell=shell, now=ticks)  # the Report's cell run again
    del first  # nothing else holds it: collected at once
    shell.events.trigger("post_run_cell", None)
    shell.events.trigger("pre_run_cell", None)
    assert listening(shell) == [1, 1]
    first_ends(None)  # called once more, off the shell already: nothing to take off, nothing raised
    shell.events.trigger("post_run_cell", None)
    ticks.at = 5.0
    assert second.seconds() == pytest.approx(0.0), "the clock in use stands still between cells"
    shell.events.trigger("pre_run_cell", None)
    ticks.at = 7.0
    assert second.seconds() == pytest.approx(2.0), "and counts on in the next"
