"""Independent trainings side by side: one lane per CPU core, each lane on one thread.

The networks of notebooks 01-04 are small: their tensors are too small for PyTorch to split one operation
well over two threads, so a second core speeds one training up by only about 1.2×, while two trainings on
one thread each get through 1.5-1.8× the images per second of one training on two (`python -m
mnist_utils.bench --knobs` measures it). Jobs that do not depend on each other (seeds, the variants of an
experiment) therefore run in lanes: Python threads, with torch's intra-op threads set to 1 in each; PyTorch
releases the interpreter lock inside its kernels, so the lanes really compute at once.

Reproducible by construction: a job in a lane runs on exactly one thread, whether it has a lane of its own or
waits for one, so its numbers do not depend on how many cores the machine has (on a one-core machine, where
there is one lane, torch runs on one thread anyway). A job must draw random numbers only from its own
generators (a `Batches` has one): the global generator, which dropout draws from, would be shared by the
lanes in an order nobody fixes, so `lanes_for` gives models with dropout one lane, as it gives a GPU, whose
kernels already fill it. With one lane the jobs run in turn on the caller's threads, as they always did.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence, TypeVar

import torch
import torch.nn as nn

from .config import usable_cpus

T = TypeVar("T")


def draws_global_randomness(model: nn.Module) -> bool:
    """Whether training `model` draws from torch's global generator: any dropout with p > 0."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def lanes_for(models: Iterable[nn.Module], device: torch.device) -> int:
    """How many lanes independent trainings of `models` get on `device`: one per CPU core; one on a GPU, or
    when any model uses dropout (see the module's docstring)."""
    if device.type != "cpu" or any(draws_global_randomness(m) for m in models):
        return 1
    return usable_cpus()


def run_in_lanes(jobs: Sequence[Callable[[], T]], lanes: int) -> list[T]:
    """Run `jobs` (callables without arguments) and return their results in their order: with one lane in
    turn, on the caller's threads; with more, at most `lanes` at a time, each on one torch thread. An
    exception in a job is raised here once every job has ended."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    if lanes == 1:
        return [job() for job in jobs]

    def one_thread(job: Callable[[], T]) -> T:
        torch.set_num_threads(1)  # OpenMP keeps the thread count per thread: set it in the lane itself
        return job()

    previous = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="lane") as pool:
            futures = [pool.submit(one_thread, job) for job in jobs]
        return [future.result() for future in futures]
    finally:
        torch.set_num_threads(previous)
