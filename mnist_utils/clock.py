"""A notebook's own run time: the seconds its cells spent running, not the pauses between them.

Run headless, a notebook's cells follow one another at once, and its cells' time is its wall time. Run by hand in
Jupyter, a reader may stop between two cells for as long as they like: a wall clock would count that against the
notebook's budget, this one does not. Outside IPython, where nothing runs cells, it is the wall clock.
"""
from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any, Callable


class CellClock:
    """Seconds spent running cells since it was made (it starts inside the cell that makes it)."""

    def __init__(self, shell: Any = None, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._finished = 0.0  # the seconds of cells that have finished
        self._cell_started: float | None = now()  # the running cell's start, None between cells
        shell = shell if shell is not None else _ipython()
        if shell is not None:
            _listen(shell, "pre_run_cell", self._cell_starts)
            _listen(shell, "post_run_cell", self._cell_ends)

    def _cell_starts(self, info: Any = None) -> None:
        self._cell_started = self._now()

    def _cell_ends(self, result: Any = None) -> None:
        if self._cell_started is not None:
            self._finished += self._now() - self._cell_started
        self._cell_started = None

    def seconds(self) -> float:
        """The cells' seconds so far, the running cell's up to now included."""
        running = 0.0 if self._cell_started is None else self._now() - self._cell_started
        return self._finished + running

    def minutes(self) -> float:
        return self.seconds() / 60


def _listen(shell: Any, event: str, method: Callable[..., None]) -> None:
    """Call a clock's `method` on each of the shell's `event`s while the clock lives. The shell holds the clock
    weakly: a Report made again (its cell run again) leaves its old clock to be collected, and the callback of a
    collected clock takes itself off the next time its event comes."""
    clock_method = weakref.WeakMethod(method)

    def callback(*args: Any) -> None:
        live = clock_method()
        if live is None:
            with contextlib.suppress(ValueError):  # already off; the shell calls a copy of its list, so either is safe
                shell.events.unregister(event, callback)
        else:
            live(*args)

    shell.events.register(event, callback)


def _ipython() -> Any:
    """The IPython shell running this code, or None (a script, a test)."""
    from IPython import get_ipython  # here, not above: importing this module loads no IPython

    return get_ipython()
