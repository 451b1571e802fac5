"""Training steps timed, and what each knob does to their speed (`make bench`'s sections 1 and 4): memory
layout, batch size, torch.compile, bfloat16 autocast, several seeds' models packed into one, trainings side by
side in lanes. Every model timed is Model_3, built from SEED in the calling thread (seeding is global)."""
from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import Model_3

from .batches import endless
from .config import first_line
from .data import ImageSet
from .engine import progress_bar, seed_everything, training_step
from .lanes import lanes_for, run_in_lanes
from .packed import PackedModels, packed_loss, side_by_side
from .precision import Autocast
from .recipes import Recipe
from .report import markdown_table

SEED = 1  # every model the bench times, and the first of packed ones
KNOB_MARGIN = 0.05  # a knob helps when it is at least this much faster than the baseline
PACKED_COPIES = 5  # seeds trained at once in the packed knob


@dataclass(frozen=True)
class Sizes:
    """How much the bench measures: the steps it times (here and in bench.py), and its accuracy runs."""

    steps: int = 150  # timed training steps per repeat
    warmup: int = 5  # untimed steps before timing: workers start, caches fill, a compiled model compiles
    repeats: int = 3  # timings per measurement, of which the fastest counts
    fastest_runs: int = 3  # time-to-accuracy runs of the fastest recipe, of which the median counts
    train_images: int | None = None  # the accuracy run's training images; None: all 60,000
    test_images: int | None = None  # None: all 10,000
    epochs: int | None = None  # the accuracy run's epochs; None: the recipe's


QUICK = Sizes(steps=3, warmup=1, repeats=1, fastest_runs=2, train_images=1024, test_images=512, epochs=1)


# ----------------------------------------------------------------------------- timing training steps


def take_steps(model: nn.Module, batches: Iterator, optimizer: torch.optim.Optimizer, device: torch.device,
               steps: int, loss_fn: Callable = F.cross_entropy) -> int:
    """`steps` training steps on the next batches of `batches`, finished on the device; returns the images used
    (one per label: a packed model counts every copy's)."""
    seen, loss = 0, None
    for images, labels in itertools.islice(batches, steps):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        _, loss = training_step(model, images, labels, optimizer, loss_fn=loss_fn)
        seen += labels.numel()
    if loss is not None:
        loss.item()  # waits for the queued work: CUDA runs asynchronously
    return seen


def timed_repeats(model: nn.Module, batches: Iterator, optimizer: torch.optim.Optimizer, device: torch.device,
                  sizes: Sizes, loss_fn: Callable = F.cross_entropy,
                  together: threading.Barrier | None = None) -> list[tuple[int, float]]:
    """(images, seconds) of each of `sizes.repeats` timed runs of `sizes.steps` steps, after `sizes.warmup`
    untimed ones; with `together`, every repeat starts when all the parties of that barrier are ready."""
    model.train()
    take_steps(model, batches, optimizer, device, sizes.warmup, loss_fn)
    timings = []
    for _ in range(sizes.repeats):
        if together is not None:
            together.wait()
        start = time.perf_counter()
        seen = take_steps(model, batches, optimizer, device, sizes.steps, loss_fn)
        timings.append((seen, time.perf_counter() - start))
    return timings


def seeded_models(copies: int) -> list[nn.Module]:
    """`copies` Model_3, initialised from seeds SEED, SEED + 1, …"""
    models = []
    for seed in range(SEED, SEED + copies):
        seed_everything(seed)
        models.append(Model_3())
    return models


# ----------------------------------------------------------------------------- the knobs


@dataclass(frozen=True)
class Knob:
    """One change to the project's training step; the default is the baseline, the recipe as it is."""

    name: str
    batch_size: int | None = None  # None: the recipe's
    channels_last: bool | None = None  # None: the recipe's
    compile: bool = False
    autocast: torch.dtype | None = None
    copies: int = 1  # models trained at once, packed side by side
    lanes: int = 1  # trainings at once, each on one thread (mnist_utils.lanes)


def knobs_for(recipe: Recipe, lanes: int | None = None) -> list[Knob]:
    """The baseline first, then each change on its own; trainings in `lanes` only where there are 2 or more."""
    layout = "channels_last" if recipe.channels_last else "NCHW"
    other_layout = "NCHW" if recipe.channels_last else "channels_last"
    batch_sizes = (recipe.batch_size // 2, recipe.batch_size * 2)
    knobs = [Knob(f"baseline: {layout}, batch {recipe.batch_size}, float32, eager, one model"),
             Knob(f"{other_layout} instead of {layout}", channels_last=not recipe.channels_last),
             *(Knob(f"batch {size} instead of {recipe.batch_size}", batch_size=size) for size in batch_sizes),
             Knob("torch.compile", compile=True),
             Knob("bfloat16 autocast", autocast=torch.bfloat16),
             Knob(f"{PACKED_COPIES} seeds' models packed, images summed", copies=PACKED_COPIES)]
    if lanes and lanes > 1:
        knobs.append(Knob(f"{lanes} trainings at once, one thread each (lanes), images summed", lanes=lanes))
    return knobs


def full_batches(batches: Iterable, batch_size: int) -> Iterator:
    """The batches of a whole `batch_size`: a compiled model would compile again for an epoch's short last
    batch, a one-off cost that is not the knob's speed."""
    return ((images, labels) for images, labels in batches if len(labels) == batch_size)


def knob_setup(knob: Knob, recipe: Recipe, images: ImageSet, device: torch.device) -> dict[str, Any]:
    """What `knob` times, built: the model (packed, compiled or autocast as the knob says), its optimizer, its
    endless full batches and its loss. Seeding is global, so every model is built in the calling thread."""
    channels_last = recipe.channels_last if knob.channels_last is None else knob.channels_last
    recipe = dataclasses.replace(recipe, batch_size=knob.batch_size or recipe.batch_size, channels_last=channels_last)
    layout = recipe.memory_format
    models = seeded_models(knob.copies)
    model = (models[0] if knob.copies == 1 else PackedModels(models)).to(device, memory_format=layout)
    streams = [full_batches(endless(recipe.train_batches(images, device, seed)), recipe.batch_size)
               for seed in range(SEED, SEED + knob.copies)]
    step_model = torch.compile(model) if knob.compile else model
    if knob.autocast is not None:
        step_model = Autocast(step_model, knob.autocast, device.type)
    return {"model": step_model, "batches": streams[0] if knob.copies == 1 else side_by_side(streams, layout),
            "optimizer": recipe.make_optimizer(model.parameters()), "device": device,
            "loss_fn": F.cross_entropy if knob.copies == 1 else packed_loss}


def knob_speed(knob: Knob, recipe: Recipe, images: ImageSet, device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Images per second with `knob` applied to `recipe`; with torch.compile, the compile's seconds as well.
    With lanes, each lane trains a model of its own, every repeat starting together; the figure is all their
    images over the slowest lane's time."""
    if knob.lanes > 1:
        setups = [knob_setup(dataclasses.replace(knob, lanes=1), recipe, images, device) for _ in range(knob.lanes)]
        together = threading.Barrier(knob.lanes)
        lanes = [functools.partial(timed_repeats, **setup, sizes=sizes, together=together) for setup in setups]
        timings = run_in_lanes(lanes, knob.lanes, shared=False)
        speed = max(sum(seen for seen, _ in repeat) / max(seconds for _, seconds in repeat) for repeat in zip(*timings))
        return {"images_per_s": speed, "compile_s": None}
    setup = knob_setup(knob, recipe, images, device)
    compile_seconds = None
    if knob.compile:  # the first step compiles the forward and backward passes: timed on its own
        setup["model"].train()
        start = time.perf_counter()
        take_steps(**setup, steps=1)
        compile_seconds = time.perf_counter() - start
    timings = timed_repeats(**setup, sizes=sizes)
    return {"images_per_s": max(seen / seconds for seen, seconds in timings), "compile_s": compile_seconds,
            "timings": timings}


def verdict(ratio: float, margin: float = KNOB_MARGIN) -> str:
    """'helps' when `ratio` (knob / baseline) is at least 1 + `margin`, else 'does not help', saying whether
    it is slower or within the margin."""
    if ratio >= 1 + margin:
        return "helps"
    return "does not help (" + ("slower" if ratio <= 1 - margin else f"within ±{margin:.0%}") + ")"


def row_verdict(row: dict[str, Any], is_baseline: bool) -> str:
    """What a knob's row says: why it failed, that it is the baseline, or how its speed compares with it."""
    if row["error"]:
        return f"failed: {row['error']}"
    if is_baseline:
        return "baseline"
    return "no baseline to compare with" if row["ratio"] is None else verdict(row["ratio"])


def knob_table(recipe: Recipe, images: ImageSet, device: torch.device, sizes: Sizes) -> list[dict[str, Any]]:
    """Every knob measured, with its ratio to the baseline and a verdict; printed as a table."""
    print(f"\n4. Knobs: Model_3 training images/s with the project's pipeline, best of {sizes.repeats} × "
          f"{sizes.steps} steps after {sizes.warmup} warm-up")
    rows = []
    lanes = lanes_for([Model_3()], device)  # on a GPU, or a one-CPU machine, no lanes to measure
    for knob in progress_bar(knobs_for(recipe, lanes), desc="knobs", unit="knob"):
        try:
            speed = knob_speed(knob, recipe, images, device, sizes)
            rows.append({"knob": knob.name, "images_per_s": speed["images_per_s"], "compile_s": speed["compile_s"],
                         "error": None})
        except Exception as error:  # noqa: BLE001 - a knob that cannot run here (no C++ compiler, no bf16) is a finding
            rows.append({"knob": knob.name, "images_per_s": None, "compile_s": None,
                         "error": f"{type(error).__name__}: {first_line(error)}"})
    baseline = rows[0]["images_per_s"]
    for row in rows:
        row["ratio"] = None if None in (row["images_per_s"], baseline) else row["images_per_s"] / baseline
        row["verdict"] = row_verdict(row, is_baseline=row is rows[0])
    print(markdown_table([{"knob": r["knob"],
                           "images/s": "—" if r["images_per_s"] is None else f"{r['images_per_s']:,.0f}",
                           "× baseline": "—" if r["ratio"] is None else f"{r['ratio']:.2f}×",
                           "verdict": r["verdict"]} for r in rows]))
    for row in rows:
        if row["compile_s"] is not None:
            print(f"  torch.compile took {row['compile_s']:.1f} s (its first step), not counted in its images/s")
    return rows
