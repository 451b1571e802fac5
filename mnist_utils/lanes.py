"""Independent trainings side by side: one lane per usable CPU, each lane on one thread.

The networks of notebooks 01-04 are small: their tensors are too small for PyTorch to split one operation
well over two threads, so a second core speeds one training up by only about 1.2×, while two trainings on
one thread each get through more images per second together (`python -m mnist_utils.bench --knobs` measures
it for Model_3). Jobs that do not depend on each other (seeds, the variants of an experiment) therefore run in
lanes: Python threads, with torch's intra-op threads set to 1 in each; PyTorch releases the interpreter lock
inside its kernels, so the lanes really compute at once.

Reproducible by construction: a job in a lane runs on exactly one thread, whether it has a lane of its own or
waits for one, so its numbers do not depend on how many cores the machine has. A job must draw random numbers
only from its own generators (a `Batches` has one), and build nothing that initialises itself from torch's
global generator: lanes would share it in an order nobody fixes. So models are built before the lanes start,
and `lanes_for` keeps models with torch's dropout (a layer that draws from the global generator while training)
out of lanes, as it does on a GPU, whose kernels one training already fills. Those run in turn, on the caller's
threads. models.SeededDropout draws from a generator of its own: the models with it may use lanes.

Side by side with another notebook (`make notebooks`), a kernel's lanes compute only as many at once as its share
of the cores (`config.lanes_shared`), which grows when the notebook beside it ends: a lane waits before its next
job while the share is taken. Where a job runs, and when, changes no number.

The batches of an evaluation are independent jobs too: a notebook computing on one thread evaluates them side by
side (`lanes_to_evaluate`), each batch on one thread, so with the numbers it computes in turn.

Ctrl-C (or a failing job) stops every lane within a training step: the other lanes are interrupted too.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Callable, Iterable, Sequence, Sized, TypeVar

import torch
import torch.nn as nn

from .config import lanes_asked, lanes_shared, usable_cpus

T = TypeVar("T")
SHARE_POLL_SECONDS = 0.5  # how often a lane waiting for its share of the cores reads it again, if no job ends first


def draws_global_randomness(model: nn.Module) -> bool:
    """Whether training `model` draws from torch's global generator: any dropout layer with p > 0."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def lane_count() -> int:
    """Lanes for independent trainings: one per usable CPU, or as many as $MNIST_LANES says. Side by side with
    another notebook, fewer of them compute at once (`run_in_lanes`): two notebooks with two lanes each would share
    2 cores among 4 threads, and time-sliced trainings cost a third more CPU time (measured: 03 computed for 501
    CPU-seconds alone, 652-685 beside a second notebook's lanes). The numbers do not depend on it."""
    asked = lanes_asked()
    return usable_cpus() if asked is None else asked


def lanes_for(models: Iterable[nn.Module], device: torch.device, threads: int = 1) -> int | None:
    """How many lanes the independent trainings of `models` get on `device`: `lane_count()`; None (no
    lanes: in turn, on the caller's threads) on a GPU, when a model draws from the global generator, or when
    the trainings ask for more `threads` each than a lane's one."""
    if device.type != "cpu" or threads > 1 or any(draws_global_randomness(m) for m in models):
        return None
    return lane_count()


def lanes_to_evaluate(device: torch.device, batches: int) -> int | None:
    """Lanes for an evaluation of `batches` batches on `device`, batch by batch (`evaluation.predict_views`): up to
    `lane_count()` where the caller is the main thread computing on one CPU thread, as a notebook whose trainings run
    in lanes does. Each batch then computes on one thread in a lane or not, so the lanes change no number. None (in
    turn, on the caller's threads) on more threads, on a GPU, in another thread (a lane's job, a web request), and
    under autocast entered around the call: a torch mode holds for the thread that entered it, not for a lane (a
    model that enters autocast in its forward, as `precision.Autocast` does, computes the same in a lane)."""
    if (torch.device(device).type != "cpu" or torch.get_num_threads() != 1 or torch.is_autocast_enabled("cpu")
            or threading.current_thread() is not threading.main_thread()):
        return None
    lanes = min(lane_count(), batches)
    return lanes if lanes > 1 else None


def run_in_lanes(jobs: Iterable[Callable[[], T]], lanes: int | None, *, shared: bool = True,
                 on_start: Callable[[int], None] | None = None) -> list[T]:
    """Run `jobs` (callables without arguments) and return their results in their order. With `lanes`, at most
    that many at a time, and no more than the kernel's share of the cores allows when each job starts
    (`lanes_shared`; with `shared` False, all of them: a benchmark that times lanes side by side), each on one torch
    thread (one lane: in turn, still on one thread each); with None, in turn on the caller's threads. A lane draws
    its next job from `jobs` when it is free, so an iterator can make each job when it is due. `on_start` is told,
    as each job starts in a lane, how many may run at once then. The first exception of a job, or a Ctrl-C,
    interrupts the other lanes and is raised here."""
    if lanes is None:
        return [job() for job in jobs]
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1 (or None: no lanes), got {lanes}")
    most = min(lanes, len(jobs)) if isinstance(jobs, Sized) else lanes  # lanes that can have a job
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    waiting, lock, stop = enumerate(jobs), threading.Lock(), threading.Event()
    job_ended = threading.Condition(lock)  # wakes the lanes waiting for the share
    busy: set[int] = set()  # the lanes inside a job: the only ones an interrupt may be sent to

    def lane() -> None:
        me = threading.get_ident()
        try:
            torch.set_num_threads(1)  # OpenMP keeps the thread count per thread: set it in the lane itself
            while True:
                with job_ended:
                    while not stop.is_set():
                        at_once = min(lanes_shared(lanes) if shared else lanes, most)
                        if len(busy) < at_once:
                            break
                        job_ended.wait(SHARE_POLL_SECONDS)  # the kernel's share of the cores is taken
                    due = None if stop.is_set() else next(waiting, None)
                    if due is None:  # no job left, or one failed
                        job_ended.notify_all()
                        return
                    busy.add(me)
                    if on_start:
                        on_start(at_once)
                index, job = due
                try:
                    results[index] = job()
                finally:
                    with job_ended:
                        busy.discard(me)
                        job_ended.notify_all()
        except BaseException as error:  # noqa: BLE001 - the job's error, or the interrupt sent to stop it
            errors.append(error)
            stop.set()

    previous = torch.get_num_threads()
    threads = [threading.Thread(target=lane, name=f"lane-{i}", daemon=True) for i in range(most)]
    try:
        for thread in threads:
            thread.start()
        _wait_for(threads, stop)
    except BaseException:  # a Ctrl-C here
        stop.set()
        raise
    finally:
        if stop.is_set():
            with lock:  # no lane starts or leaves a job meanwhile
                _interrupt(busy)
        for thread in threads:
            thread.join()
        torch.set_num_threads(previous)
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(results))]


def _wait_for(threads: Sequence[threading.Thread], stop: threading.Event) -> None:
    """Until every lane has ended, or a job has failed (`stop`): in short waits, so that a Ctrl-C reaches the
    caller's thread between them."""
    while not stop.is_set() and any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.1)
            if stop.is_set():  # a job failed: the others need not finish
                return


def _interrupt(idents: Iterable[int]) -> None:
    """A KeyboardInterrupt raised in each of these threads, at its next Python instruction: a lane inside a
    training step stops when the step's kernel returns."""
    for ident in idents:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
