"""`make bench`: how fast this project trains, measured against the way MNIST projects are usually written.

    python -m mnist_utils.bench              # sections 1-3 (about ten minutes on 2 CPU cores, most of it the example)
    python -m mnist_utils.bench --knobs      # and the knobs table (torch.compile alone takes a minute or more)
    python -m mnist_utils.bench --quick      # tiny sizes: checks that everything runs; its numbers mean nothing

1. Pipeline speed: training images per second of Model_3 fed by this project's pipeline (configs/step3.yaml's
   batches: uint8 tensors in memory, augmented a whole batch at a time, channels_last) against a reference
   pipeline (torchvision's MNIST, PIL transforms image by image, a DataLoader, NCHW) with num_workers 0 and 2.
   Same model, batch size, optimizer and training step on both sides, so the difference is the pipeline's.
   Then the steps alone, fed batches made ahead: the speed no pipeline can beat, so the ratio's ceiling. All
   are timed in turn, round after round, so that a slower spell of the machine falls on each alike.
2. Time to accuracy: configs/step3.yaml and configs/fastest.yaml (built to get there first), each trained from
   seed 1 and tested, on the average of its weights (`ema`), after every epoch: the wall time (training and testing
   since the start) and epoch at which test accuracy first reaches 99.0% and 99.4%. A run stops at its last
   threshold: the epochs after it cannot change the answer. The fastest recipe runs 3 times (Sizes.fastest_runs):
   if each gives the same accuracies, as one seed should, its median time counts, else the first run's, said so.
3. PyTorch's own MNIST example, written as it is (mnist_utils.example_reference), trained until it reaches
   99.0% (at most 5 epochs): its time against the fastest recipe's, as a ratio.
4. Knobs (--knobs; mnist_utils/knobs.py): what memory layout, batch size, torch.compile, bfloat16 autocast,
   several seeds' models packed into one, and trainings side by side in lanes (one thread each) do to the speed
   of the project's pipeline.

Every figure printed is measured by the run and written, with the machine's facts, to reports/bench.json (see
--json), which `make readme` reads; a run with less in it (--quick, fewer --steps or --repeats, --skip-accuracy)
writes reports/smoke/bench.json instead, so that a check never replaces a whole run's figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import itertools
import json
import os
import statistics
import time
from typing import Any, Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from .averaging import WeightAverage
from .batches import endless
from .commands import CommandParser, checked_settings, figures_path, run_command, user_path
from .config import counted, data_root, hardware, usable_cpus
from .engine import epochs_until, progress_bar, seed_everything, test, train
from .data import MNIST, MNIST_MEAN, MNIST_STD, ImageSet, MNISTDataError, load_mnist
from .files import write_atomic
from .knobs import QUICK, SEED, Sizes, knob_table, seeded_models, take_steps
from . import example_reference
from .optim import scheduler_step_kind
from .recipes import Recipe, build_model, load_config
from .report import mark, markdown_table

REFERENCE_WORKERS = (0, 2)  # DataLoader num_workers tried for the reference; the faster one is compared
SPEED_GOAL = 3.0  # project / reference images per second
STEP3_GOALS = {99.0: None, 99.4: 120.0}  # test accuracy (%) → seconds to reach it (None: reported, no goal)
FASTEST_GOALS = {99.0: 10.0, 99.4: 40.0}  # configs/fastest.yaml, the recipe built for time to accuracy
REFERENCE_THRESHOLD, REFERENCE_EPOCHS = 99.0, 5  # PyTorch's MNIST example trains until this, at most so long
EXAMPLE_GOAL_RATIO = 20.0  # the example's time to REFERENCE_THRESHOLD / the fastest recipe's
GOAL_CPU_CORES = 2  # the machine both goals are set for


# ----------------------------------------------------------------------------- 1. pipeline speed


def reference_loader(augment_like: Recipe, num_workers: int, device: torch.device) -> DataLoader:
    """MNIST as most PyTorch projects feed it: torchvision's dataset decoding one PIL image at a time, the same
    augmentation as `augment_like` done by PIL transforms image by image, a DataLoader collating the batches."""
    augment = augment_like.augment  # shear and erasing only where the recipe has them: off, they would still draw
    erasing = (augment.erase_p, augment.erase_area, augment.erase_ratio)
    transform = transforms.Compose([
        transforms.RandomRotation(augment.rotation),
        transforms.RandomAffine(0, (augment.translate,) * 2, augment.scale, shear=augment.shear or None),
        transforms.ToTensor(), *([transforms.RandomErasing(*erasing)] if augment.erase_p else []),
        transforms.Normalize((MNIST_MEAN,), (MNIST_STD,)),
    ])
    dataset = torchvision.datasets.MNIST(root=data_root(), train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=augment_like.batch_size, shuffle=True, num_workers=num_workers,
                      pin_memory=device.type == "cuda")  # as PyTorch's example: a pinned batch's copy need not wait


Contestant = tuple[nn.Module, Iterator, torch.optim.Optimizer]  # a model, the stream that feeds it, its optimizer


def reference_contestant(recipe: Recipe, num_workers: int, device: torch.device) -> Contestant:
    """Model_3, NCHW and float32 as it comes, fed by `reference_loader`. One stream for warm-up and timing: the
    workers start during the warm-up, not in a timed repeat. A new pass over the loader (each epoch) starts
    them again; that cost stays in, as in real training."""
    model = seeded_models(1)[0].to(device)
    return model, endless(reference_loader(recipe, num_workers, device)), recipe.make_optimizer(model.parameters())


def project_contestant(recipe: Recipe, images: ImageSet, device: torch.device, made_ahead: int = 0) -> Contestant:
    """Model_3 fed by `recipe`'s own training batches, in its memory layout. `made_ahead` > 0: that many of them
    made before any timing and fed round and round, so that the steps alone are timed, which no pipeline can
    feed faster. (Not one batch over and over: trained on it alone, the model's numbers soon turn subnormal,
    which a CPU computes several times slower.)"""
    model = seeded_models(1)[0].to(device, memory_format=recipe.memory_format)
    batches = endless(recipe.train_batches(images, device, SEED))
    if made_ahead:
        batches = endless(list(itertools.islice(batches, made_ahead)))
    return model, batches, recipe.make_optimizer(model.parameters())


def speeds_in_turn(contestants: dict[str, Contestant], device: torch.device, sizes: Sizes) -> dict[str, float]:
    """Training images per second of each contestant: `sizes.warmup` untimed steps each, then `sizes.repeats`
    rounds in which each in turn takes `sizes.steps` timed steps. A contestant's fastest round counts: other
    work on the machine only ever slows a run down. In turn, because this machine's speed drifts by tens of
    percent over minutes: a slow spell then falls on every contestant alike, not on whichever ran in it."""
    for model, batches, optimizer in contestants.values():
        model.train()
        take_steps(model, batches, optimizer, device, sizes.warmup)
    best = dict.fromkeys(contestants, 0.0)
    for _ in range(sizes.repeats):
        for name, (model, batches, optimizer) in contestants.items():
            start = time.perf_counter()
            seen = take_steps(model, batches, optimizer, device, sizes.steps)
            best[name] = max(best[name], seen / (time.perf_counter() - start))
    return best


def pipeline_speed(recipe: Recipe, images: ImageSet, device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """The project's pipeline against the faster of the reference's settings, and the steps alone; prints them."""
    print(f"\n1. Pipeline speed: Model_3 training steps (batches of {recipe.batch_size}, the recipe's optimizer), "
          f"best of {sizes.repeats} rounds of {sizes.steps} steps each, after {sizes.warmup} warm-up")
    contestants = {workers: reference_contestant(recipe, workers, device) for workers in REFERENCE_WORKERS}
    contestants |= {"project": project_contestant(recipe, images, device),
                    "steps": project_contestant(recipe, images, device, made_ahead=sizes.warmup + sizes.steps)}
    speed = speeds_in_turn(contestants, device, sizes)
    reference = {workers: speed[workers] for workers in REFERENCE_WORKERS}
    for workers, value in reference.items():
        print(f"  reference, num_workers={workers}: {value:,.0f} images/s  "
              f"(torchvision MNIST, PIL transforms, DataLoader, NCHW)")
    best_workers = max(reference, key=reference.get)
    project, steps = speed["project"], speed["steps"]
    print(f"  project: {project:,.0f} images/s  (tensors in memory, batched augmentation, "
          f"{'channels_last' if recipe.channels_last else 'NCHW'})")
    ratio = project / reference[best_workers]
    met = ratio >= SPEED_GOAL
    print(f"  project / reference = {ratio:.1f}×  (against the faster reference, num_workers={best_workers})")
    print(f"  goal ≥ {SPEED_GOAL:g}× on {GOAL_CPU_CORES} CPU cores (this machine: {usable_cpus()} usable): {mark(met)}")
    ceiling = steps / reference[best_workers]
    print(f"  the training steps alone, on batches made ahead: {steps:,.0f} images/s; so no pipeline, however "
          f"fast, gets past {ceiling:.1f}× here, and ours costs {max(0.0, 1 - project / steps):.0%} of the steps' speed")
    return {"batch_size": recipe.batch_size, "reference_images_per_s": {str(w): v for w, v in reference.items()},
            "reference_best_workers": best_workers, "reference_best_images_per_s": reference[best_workers],
            "project_images_per_s": project, "ratio": ratio, "goal_ratio": SPEED_GOAL, "met": met,
            "steps_images_per_s": steps, "ceiling_ratio": ceiling}


# ----------------------------------------------------------------------------- 2. time to accuracy, 3. the example


def first_reaching(rows: Sequence[dict[str, float]], threshold: float) -> dict[str, float] | None:
    """The first row (epoch) whose test accuracy is at least `threshold`, or None."""
    return next((row for row in rows if row["test_acc"] >= threshold), None)


def accuracy_run(recipe: Recipe, data: MNIST, device: torch.device, stop_at: float) -> list[dict[str, float]]:
    """`recipe`'s model trained with `recipe` (seed SEED) as `training.train_recipe` trains it, tested after every
    epoch (the clock read after each test) until test accuracy reaches `stop_at` or the recipe's epochs end."""
    seed_everything(SEED)
    model = recipe.computing(build_model(recipe).to(device, memory_format=recipe.memory_format), device)
    train_batches = recipe.train_batches(data.train, device, SEED)
    test_batches = recipe.eval_batches(data.test, device)
    optimizer = recipe.make_optimizer(model.parameters())
    scheduler = recipe.make_scheduler(optimizer, len(train_batches))
    averaged = None if recipe.ema is None else WeightAverage(model, recipe.ema)  # updated after every step
    if scheduler_step_kind(scheduler) not in ("batch", None):  # train() below steps it after every batch
        raise ValueError(f"{recipe.name}: the bench steps the rate after every batch (scheduler: onecycle) or never "
                         f"(none), not {recipe.scheduler!r}; time it with `python -m mnist_utils train` instead")
    bar = progress_bar(total=recipe.epochs * len(train_batches), desc=f"{recipe.name} to {stop_at}%", unit="batch")

    def run_epoch(epoch: int) -> float:
        train(model, train_batches, optimizer, device, scheduler=scheduler, loss_fn=recipe.loss_fn, bar=bar,
              averaged=averaged)
        return test(model if averaged is None else averaged.model, test_batches, device).accuracy

    rows = epochs_until(run_epoch, recipe.epochs, stop_at, bar)  # the clock starts with the first step
    bar.close()
    return rows


def reached_table(rows: Sequence[dict[str, float]], goals: dict[float, float | None]) -> dict[str, Any]:
    """Print the epochs, then when each threshold of `goals` (threshold % → goal seconds, or None for no
    goal) was first reached and whether its goal is met; return the same as a dict."""
    print(markdown_table([{"epoch": r["epoch"], "test accuracy": r["test_acc"], "seconds since start": r["seconds"]}
                          for r in rows], units={"test accuracy": "%", "seconds since start": "s"}))
    reached = {}
    for threshold, goal in goals.items():
        row = first_reaching(rows, threshold)
        met = None if goal is None else row is not None and row["seconds"] <= goal
        reached[str(threshold)] = {"epoch": row and row["epoch"], "seconds": row and row["seconds"],
                                   "goal_seconds": goal, "met": met}
        print(f"  {threshold}%: " + ("not reached" if row is None else f"{row['seconds']:.1f} s, epoch {row['epoch']}")
              + ("" if goal is None else f"; goal ≤ {goal:g} s on {GOAL_CPU_CORES} CPU cores "
                 f"(this machine: {usable_cpus()} usable): {mark(met)}"))
    return reached


def typical_run(runs: Sequence[Sequence[dict[str, float]]]) -> tuple[list[dict[str, float]], bool]:
    """Runs of `accuracy_run` from one seed as one: each epoch's accuracy and median seconds since the start, and
    whether every run gave the same accuracies, as the seed should (when not: the first run's rows, as they are)."""
    reproduced = all([row["test_acc"] for row in run] == [row["test_acc"] for row in runs[0]] for run in runs)
    if not reproduced:
        return list(runs[0]), False
    return [{**row, "seconds": statistics.median(run[i]["seconds"] for run in runs)}
            for i, row in enumerate(runs[0])], True


def time_to_accuracy(recipe: Recipe, data: MNIST, device: torch.device, goals: dict[float, float | None],
                     heading: str, runs: int = 1) -> dict[str, Any]:
    """Train `recipe` until the last threshold of `goals`, `runs` times; print when each was first reached."""
    print(f"\n{heading} (training + testing since the start): configs/{recipe.name}.yaml, {recipe.model}, seed {SEED}, "
          f"{recipe.describe()}; {len(data.train):,} training and {len(data.test):,} test images")
    each = [accuracy_run(recipe, data, device, stop_at=max(goals)) for _ in range(runs)]
    rows, reproduced = typical_run(each)
    if len(rows) < recipe.epochs and first_reaching(rows, max(goals)):
        print(f"  stopped after epoch {len(rows)} of {recipe.epochs}: the last threshold was reached")
    if runs > 1:
        times = "; ".join(", ".join(f"{row['seconds']:.1f}" for row in run) for run in each)
        agreement = ("the same accuracies in each, their median below" if reproduced
                     else "their accuracies DIFFER, which one seed should rule out: the first run below")
        print(f"  {runs} runs, seconds since the start after each epoch: {times}: {agreement}")
    reached = reached_table(rows, goals)
    return {"config": recipe.name, "model": recipe.model, "epochs": rows, "reached": reached,
            "met": all(r["met"] is not False for r in reached.values()),
            "runs": [[row["seconds"] for row in run] for run in each], "reproduced": reproduced if runs > 1 else None,
            "train_images": len(data.train), "test_images": len(data.test), "recipe": recipe.describe()}


def seconds_text(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def against_example(fastest: dict[str, Any], device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """PyTorch's own MNIST example (mnist_utils.example_reference) trained until it reaches REFERENCE_THRESHOLD
    (at most REFERENCE_EPOCHS epochs); its time against the fastest recipe's time to the same accuracy."""
    print(f"\n3. PyTorch's MNIST example (its Net, Adadelta lr {example_reference.LR}, StepLR γ "
          f"{example_reference.GAMMA}, batches of {example_reference.BATCH_SIZE}, torchvision MNIST and a "
          f"DataLoader) until {REFERENCE_THRESHOLD}% (at most {REFERENCE_EPOCHS} epochs)")
    rows = example_reference.example_time_to_accuracy(device, REFERENCE_THRESHOLD, sizes.epochs or REFERENCE_EPOCHS,
                                                      train_images=sizes.train_images, test_images=sizes.test_images)
    reached = reached_table(rows, {REFERENCE_THRESHOLD: None})[str(REFERENCE_THRESHOLD)]
    ours = fastest["reached"][str(REFERENCE_THRESHOLD)]
    ratio = None if None in (reached["seconds"], ours["seconds"]) else reached["seconds"] / ours["seconds"]
    met = ratio is not None and ratio >= EXAMPLE_GOAL_RATIO
    print(f"  to {REFERENCE_THRESHOLD}%: the example {seconds_text(reached['seconds'])}, "
          f"{fastest['config']} {seconds_text(ours['seconds'])}: "
          + ("a ratio cannot be given (one of them did not reach it)" if ratio is None else f"{ratio:.1f}× faster")
          + f"; goal ≥ {EXAMPLE_GOAL_RATIO:g}×: {mark(met)}")
    return {"threshold": REFERENCE_THRESHOLD, "epochs": rows, "reached": reached, "ratio": ratio,
            "goal_ratio": EXAMPLE_GOAL_RATIO, "met": met}


# ----------------------------------------------------------------------------- the machine and the command line


def machine_facts(device: torch.device) -> dict[str, Any]:
    return {"hardware": hardware(device), "cpu_count": os.cpu_count(), "usable_cpus": usable_cpus(),
            "torch_threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = CommandParser(prog="python -m mnist_utils.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help=f"timed training steps per repeat (default {Sizes.steps})")
    parser.add_argument("--repeats", type=int, help=f"timings per measurement, the fastest counts (default {Sizes.repeats})")
    parser.add_argument("--skip-accuracy", action="store_true", help="leave out the time-to-accuracy run")
    parser.add_argument("--knobs", action="store_true", help="also measure the knobs (takes a few minutes)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny sizes ({QUICK.steps} steps; accuracy on {QUICK.train_images:,} images, "
                             f"{counted(QUICK.epochs, 'epoch')}): checks that it runs, its numbers mean nothing")
    parser.add_argument("--json", type=user_path, help="where the figures go (default: reports/bench.json; those of a "
                                                  "--quick or partial run: reports/smoke/bench.json)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    for name in ("steps", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    sizes = dataclasses.replace(sizes, steps=args.steps or sizes.steps, repeats=args.repeats or sizes.repeats)
    whole = not (args.quick or args.skip_accuracy) and sizes.steps >= Sizes.steps and sizes.repeats >= Sizes.repeats
    (_, device), path = checked_settings(), figures_path(args.json, "bench.json", whole)  # the profile checked first
    machine = machine_facts(device)
    print(f"Machine: {machine['hardware']}; {machine['cpu_count']} CPUs ({machine['usable_cpus']} usable), "
          f"torch {machine['torch']} with {machine['torch_threads']} threads, device {device}"
          + (" (--quick: tiny sizes, the numbers mean nothing)" if args.quick else ""))
    data = load_mnist(fetch=False)  # a missing or corrupt file raises an error naming `make data`
    step3, fastest = (load_config(name) for name in ("step3", "fastest"))
    if sizes.epochs is not None:
        step3, fastest = step3.with_epochs(sizes.epochs), fastest.with_epochs(sizes.epochs)
    results: dict[str, Any] = {"machine": machine, "sizes": dataclasses.asdict(sizes), "quick": args.quick,
                               "whole": whole, "pipeline": pipeline_speed(step3, data.train, device, sizes)}
    if not args.skip_accuracy:
        subset = MNIST(train=data.train.head(sizes.train_images or len(data.train)),
                       test=data.test.head(sizes.test_images or len(data.test)))
        results["accuracy"] = time_to_accuracy(step3, subset, device, STEP3_GOALS, "2a. Time to accuracy, Step 3")
        results["fastest"] = time_to_accuracy(fastest, subset, device, FASTEST_GOALS,
                                              f"2b. Time to accuracy, the fastest recipe, {sizes.fastest_runs} runs",
                                              runs=sizes.fastest_runs)
        results["example"] = against_example(results["fastest"], device, sizes)
    if args.knobs:
        results["knobs"] = knob_table(step3, data.train, device, sizes)
    write_atomic(path, (json.dumps(results, indent=2) + "\n").encode())
    print(f"\nEvery figure above, with the machine's facts: {path}")
    return 0


if __name__ == "__main__":
    run_command(main, bad_input=(MNISTDataError,))
