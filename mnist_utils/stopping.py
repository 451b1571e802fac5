"""Stopping a run on Ctrl-C, SIGTERM or SIGHUP: `Stop` turns the signals into a request that every running notebook's
execution honours (its kernel shut down, `Interrupted` raised), instead of a runner killed half-way."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
import threading
from typing import Any, Callable

from nbclient import NotebookClient
from nbclient.util import ensure_async

from .commands import to_nowhere

# SIGHUP: the terminal or the ssh session closed (Windows has none)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stop:
    """While active (a context manager, in the main thread), SIGINT, SIGTERM and SIGHUP stop the run instead of
    killing the runner: the first one is recorded and cancels every notebook that is running (each registers
    its cancel with `add`), and the runner starts no other. The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._cancels: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Stop":
        if threading.current_thread() is threading.main_thread():  # only there can Python handle signals
            # A signal ignored stays ignored: `nohup make notebooks` must outlive the terminal it started from.
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS
                              if signal.getsignal(signum) is not signal.SIG_IGN}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: not set from Python
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            _terminal_gone()
        if self.signum is None:
            self.signum = signum
            with self._lock:
                cancels = list(self._cancels)
            for cancel in cancels:
                cancel()

    def add(self, cancel: Callable[[], None]) -> None:
        """Call `cancel` on a stop signal (at once if one came already)."""
        with self._lock:
            self._cancels.append(cancel)
        if self.signum is not None:
            cancel()

    def discard(self, cancel: Callable[[], None]) -> None:
        with self._lock:
            if cancel in self._cancels:
                self._cancels.remove(cancel)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


def _terminal_gone() -> None:
    """After SIGHUP: what the run still says to a terminal (each notebook's last line, the summary) goes nowhere,
    where a write to the closed terminal would fail and end the run before its notebooks are recorded; output sent
    to a file or a pipe is kept."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or no file behind it
            # a terminal's device (isatty is False once it has hung up), not a file or a pipe
            if stat.S_ISCHR(os.fstat(stream.fileno()).st_mode):
                to_nowhere(stream)


class Interrupted(Exception):
    """A stop signal ended the notebook's execution."""


def execute_until_stopped(client: NotebookClient, env: dict[str, str], stop: Stop) -> None:
    """`client.execute(env=env)`, in a worker thread with an event loop of its own, so that this thread
    keeps the stop signals (nbclient's own handlers would shut the kernel down and let the series go on).
    A stop signal cancels the execution, nbclient shuts the kernel down, and this raises Interrupted;
    otherwise whatever the execution raised is raised here."""
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        task = loop.create_task(client.async_execute(env=env))

        def cancel() -> None:  # called from the main thread's signal handler
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to cancel
                loop.call_soon_threadsafe(task.cancel)

        stop.add(cancel)
        try:
            loop.run_until_complete(task)
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = error
        finally:
            stop.discard(cancel)
            if client.km is not None and client.km.has_kernel:  # stopped while the kernel was starting
                loop.run_until_complete(ensure_async(client.km.shutdown_kernel(now=True)))
            leftover = asyncio.all_tasks(loop)  # nbclient's pollers of a cancelled cell
            for pending in leftover:
                pending.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            asyncio.set_event_loop(None)
            loop.close()

    worker = threading.Thread(target=work, name="notebook", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        if stop.signum is not None:  # the kernel's death or the cancellation itself: either way, stopped
            raise Interrupted(stop.name) from outcome["error"]
        raise outcome["error"]
