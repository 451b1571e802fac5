"""Which notebook of a series starts when: `make notebooks` runs notebooks side by side, each as soon as the
notebooks whose results it reads have finished (the `reads` of config.NOTEBOOK_PLANS; a notebook not listed there
waits for every one before it) and fewer than `at_once` run; among those ready, the one listed first in that table
starts first. Pure functions of the notebooks' stems: the runner (run.py) follows them with real kernels, `schedule`
with given durations (the budgets' test), `longest_chain` says which notebooks the series cannot end before and
`most_side_by_side` how many can share the machine.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

from .config import READS_RESULTS_OF, START_ORDER, get_device, usable_cpus


def waits_for(stems: Sequence[str], reads: Mapping[str, Sequence[str]] = READS_RESULTS_OF) -> dict[str, set[str]]:
    """For each of `stems` (in number order), the ones before it that must finish before it starts: those whose
    results it `reads` (config.READS_RESULTS_OF); a notebook not listed there waits for every one before it."""
    return {stem: set(stems[:i]) if stem not in reads else set(stems[:i]) & set(reads[stem])
            for i, stem in enumerate(stems)}


def inputs_to_run(stems: Sequence[str], have_results: set[str],
                  reads: Mapping[str, Sequence[str]] = READS_RESULTS_OF) -> list[str]:
    """The notebooks `stems` read the results of, directly or through another (config.READS_RESULTS_OF), that are
    not among `stems` and have no results yet (`have_results`): what must run first, in number order. Asked for
    03 alone on a fresh checkout, that is 01 and 02."""
    needed, todo = set(), list(stems)
    while todo:
        for source in reads.get(todo.pop(), ()):
            if source not in stems and source not in have_results and source not in needed:
                needed.add(source)
                todo.append(source)
    return sorted(needed)


def ready_to_start(waiting: Sequence[str], after: dict[str, set[str]], finished: set[str], running: int,
                   at_once: int, order: Sequence[str] = START_ORDER) -> list[str]:
    """The notebooks of `waiting` (in number order) that start now: those whose notebooks to wait for (`after`)
    have all finished, first those that come first in `order` (config.START_ORDER), then the others by number,
    while fewer than `at_once` run."""
    rank = {stem: i for i, stem in enumerate(order)}
    ready = sorted((stem for stem in waiting if after[stem] <= finished), key=lambda stem: rank.get(stem, len(rank)))
    return ready[:max(0, at_once - running)]


def schedule(seconds: dict[str, float], at_once: int,
             order: Sequence[str] = START_ORDER) -> dict[str, tuple[float, float]]:
    """When each notebook would start and end if it took `seconds[stem]` (stems in number order) and the series
    ran as `run_notebooks` runs it, with `at_once` notebooks at most side by side: stem → (start, end)."""
    check_at_once(at_once)
    stems = list(seconds)
    after, waiting, finished = waits_for(stems), list(stems), set()
    running: dict[str, float] = {}  # stem → when it ends
    times: dict[str, tuple[float, float]] = {}
    now = 0.0
    while waiting or running:
        for stem in ready_to_start(waiting, after, finished, len(running), at_once, order):
            waiting.remove(stem)
            running[stem] = now + seconds[stem]
            times[stem] = (now, running[stem])
        stem = min(running, key=running.__getitem__)  # never empty: what waits, waits for earlier notebooks
        now = running.pop(stem)
        finished.add(stem)
    return times


def longest_chain(minutes: dict[str, float], reads: Mapping[str, Sequence[str]] = READS_RESULTS_OF) -> list[str]:
    """The notebooks of `minutes` (stem → minutes, in number order), each waiting for the one before it (see
    `waits_for`), that take longest together: the series cannot end sooner than they do, so they get the CPU
    first. Ties go to the lower numbers. A notebook that waits for none and that none waits for is no chain,
    however long: it can start whenever fewer than `at_once` run (config.START_ORDER says when) and fill the CPU that a
    chain leaves."""
    after = waits_for(list(minutes), reads)
    linked = set().union(*after.values()) | {stem for stem, before in after.items() if before}
    stems = [stem for stem in minutes if stem in linked]
    ending: dict[str, tuple[float, str | None]] = {}  # stem → (the longest chain ending with it, the one before)
    for stem in stems:  # in number order: what a notebook waits for comes before it
        before = max(sorted(after[stem]), key=lambda s: ending[s][0], default=None)
        ending[stem] = (minutes[stem] + (ending[before][0] if before else 0.0), before)
    last: str | None = max(stems, key=lambda s: ending[s][0], default=None)
    chain = []
    while last is not None:
        chain.append(last)
        last = ending[last][1]
    return chain[::-1]


def most_side_by_side(stems: Sequence[str], at_once: int, reads: Mapping[str, Sequence[str]] = READS_RESULTS_OF) -> int:
    """How many of `stems` (in number order) can ever run at once with `at_once`: the largest group of them none of
    which waits, directly or through another, for one of the others (see `waits_for`), at most `at_once`."""
    after = waits_for(list(stems), reads)
    before: dict[str, set[str]] = {}  # all a notebook waits for, through others too
    for stem in stems:  # in number order: what a notebook waits for comes before it
        before[stem] = set(after[stem]).union(*(before[s] for s in after[stem]))
    for size in range(min(at_once, len(stems)), 1, -1):
        if any(all(a not in before[b] for a, b in itertools.permutations(group, 2))
               for group in itertools.combinations(stems, size)):
            return size
    return min(1, len(stems))


def default_at_once() -> int:
    """How many notebooks `make notebooks` runs side by side: one per usable CPU; one at a time on a GPU, which
    one notebook's training already fills (and whose memory two would share)."""
    return 1 if get_device().type == "cuda" else usable_cpus()


def check_at_once(at_once: int) -> None:
    if at_once < 1:
        raise ValueError(f"notebooks at once (--at-once) must be at least 1, got {at_once}")
