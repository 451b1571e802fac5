"""Training a recipe: one model (`train_recipe`; `train_model` also trains a frozen backbone's head), or one model
per seed, packed and in lanes (`train_seeds`).

Both record their epochs with the engine's bookkeeping (`History.record`), so a history from either has the
same columns (a packed run's seconds are each epoch's share of the whole run's wall time: see `train_seeds`). The
test set is looked at after every epoch only when the recipe holds out no validation split:
with one, the validation split decides and the test set is used once, at the end, by whoever evaluates.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .averaging import WeightAverage
from .config import computing_on, counted, synchronize
from .data import MNIST, ImageSet
from .engine import EpochStats, History, fit, progress_bar, row_summary, seed_everything, training_step
from .features import FeatureBatches, extract_features
from .lanes import lanes_for, run_in_lanes
from .packed import PackedModels, drops_out, packed_loss, side_by_side
from .recipes import ConfigError, Recipe, build_model


def _fit_recipe(model: nn.Module, recipe: Recipe, train_batches: Any, test_batches: Any, device: torch.device, *,
                val_batches: Any = None, probe_batches: Any = None, progress: str | None, desc: str,
                on_epoch: Callable[[dict[str, float], bool], None] | None) -> History:
    """`fit` with what `recipe` says of the loop: its optimizer and schedule over `model`'s parameters, its epochs,
    loss, early stopping and precision. The caller sets its thread count (`computing_on(recipe.threads)`)."""
    optimizer = recipe.make_optimizer(model.parameters())
    return fit(recipe.computing(model, device), train_batches, test_batches, optimizer, device,
               epochs=recipe.epochs, scheduler=recipe.make_scheduler(optimizer, len(train_batches)),
               loss_fn=recipe.loss_fn, val_batches=val_batches, probe_batches=probe_batches,
               patience=recipe.patience, monitor=recipe.monitor, keep_best=recipe.keep_best,
               monitor_from=recipe.monitor_from, progress=progress, desc=desc or recipe.name, on_epoch=on_epoch,
               ema=recipe.ema)


def train_recipe(model: nn.Module, recipe: Recipe, data: MNIST, device: torch.device, *, seed: int,
                 inputs: dict[str, Any] | None = None, progress: str | None = "batches", desc: str = "",
                 on_epoch: Callable[[dict[str, float], bool], None] | None = None) -> History:
    """Train `model` (already initialised, e.g. after `seed_everything(seed)`) on `data.train` the way
    `recipe` says. `seed` fixes the data order, the augmentation and, unless the recipe's `split_seed` does, the
    validation split. `inputs` (mean, std) normalise the batches for a model that expects other inputs than
    MNIST's statistics."""
    inputs = inputs or {}
    model.to(device, memory_format=recipe.memory_format)
    train_set, val_set = recipe.split(data.train, seed)
    train_batches = recipe.train_batches(train_set, device, seed, **inputs)
    val_batches = None if val_set is None else recipe.eval_batches(val_set, device, **inputs)
    test_batches = recipe.eval_batches(data.test, device, **inputs) if val_set is None else None
    probe_batches = recipe.probe_batches(train_set, device, **inputs)
    with computing_on(recipe.threads):  # the config's thread count, if it fixes one: the notebook's numbers
        return _fit_recipe(model, recipe, train_batches, test_batches, device, val_batches=val_batches,
                           probe_batches=probe_batches, progress=progress, desc=desc, on_epoch=on_epoch)


def train_head(model: nn.Module, recipe: Recipe, data: MNIST, device: torch.device, *, seed: int,
               inputs: dict[str, Any] | None = None, progress: str | None = "epochs", desc: str = "",
               on_epoch: Callable[[dict[str, float], bool], None] | None = None) -> tuple[History, float]:
    """Train only `model.head` on the features of the frozen `model.backbone`, as a `freeze_backbone` recipe
    says: the features of its training and validation splits computed once, in eval mode (BatchNorm keeps its
    statistics), then the loop `train_recipe` runs on a whole model (`_fit_recipe`). Computed once, the features
    take no augmentation and no short epochs. Without a validation split, the test set is scored after each
    epoch, as `train_recipe` does. Returns the history and the seconds the pass over the training images took."""
    if not (hasattr(model, "backbone") and hasattr(model, "head")):
        raise ValueError(f"train_head needs a model with .backbone and .head (as pretrained_for_mnist builds), "
                         f"got {type(model).__name__}")
    inputs = inputs or {}
    train_set, val_set = recipe.split(data.train, seed)
    backbone = recipe.computing(model.backbone, device)  # in the precision the whole model will be tested in

    def features_of(images: ImageSet, batch_size: int = 1000, **order: Any) -> FeatureBatches:
        return FeatureBatches(*extract_features(backbone, recipe.eval_batches(images, device, **inputs), device),
                              batch_size, **order)

    with computing_on(recipe.threads):  # the config's thread count, if it fixes one: the notebook's numbers
        start = time.perf_counter()
        train_batches = features_of(train_set, recipe.batch_size, shuffle=True, seed=seed)
        synchronize(device)
        seconds = time.perf_counter() - start
        val_batches = None if val_set is None else features_of(val_set)
        test_batches = None if val_set is not None else features_of(data.test)
        history = _fit_recipe(model.head, recipe, train_batches, test_batches, device, val_batches=val_batches,
                              progress=progress, desc=desc, on_epoch=on_epoch)
    return history, seconds


def train_model(model: nn.Module, recipe: Recipe, data: MNIST, device: torch.device, *, seed: int,
                inputs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[History, float]:
    """`model` trained as `recipe` says: its head alone, on the backbone's features computed once (`train_head`),
    when the recipe freezes the backbone; else every layer (`train_recipe`). Returns the history and the seconds
    the feature pass took (0 without one). `kwargs` (progress, desc, on_epoch) go to either."""
    if recipe.freeze_backbone:
        return train_head(model, recipe, data, device, seed=seed, inputs=inputs, **kwargs)
    return train_recipe(model, recipe, data, device, seed=seed, inputs=inputs, **kwargs), 0.0


def build_seeded(recipe: Recipe, seed: int) -> nn.Module:
    """`recipe`'s model, initialised from `seed`. Initialisation draws from the global generator, so models
    that train in lanes are built first, one after another, in the caller's thread."""
    seed_everything(seed)
    return build_model(recipe)


def run_recipe(recipe: Recipe, data: MNIST, device: torch.device, *, seed: int | None = None,
               progress: str | None = "epochs", desc: str = "") -> tuple[nn.Module, History]:
    """A model built and trained from `recipe` alone: seeded with `seed` (the recipe's first by default)."""
    if not isinstance(recipe, Recipe):  # a config's name, say
        name = repr(recipe) if isinstance(recipe, str) else None
        raise TypeError(f"run_recipe trains a Recipe, not {name or type(recipe).__name__}: give "
                        f"load_config({name or 'NAME'})")
    seed = recipe.seeds[0] if seed is None else seed
    model = build_seeded(recipe, seed)
    history = train_recipe(model, recipe, data, device, seed=seed, progress=progress, desc=desc or recipe.name)
    return model, history


def run_recipes(recipes: Mapping[str, Recipe], data: MNIST, device: torch.device, *,
                progress: str | None = "epochs",
                cost: Mapping[str, float] | None = None) -> dict[str, tuple[nn.Module, History]]:
    """Each of `recipes` run as `run_recipe` runs it (seeded with its first seed, built, trained), but in lanes,
    one per usable CPU, where the models allow it (mnist_utils.lanes): (model, history) by the same names.
    One progress bar counts the epochs of them all. `cost` (name → estimated time, any unit) starts the
    costliest first, so that the lanes end close together; the order changes no number, only when each runs."""
    models = {name: build_seeded(recipe, recipe.seeds[0]) for name, recipe in recipes.items()}  # in turn, here
    lanes = lanes_for(models.values(), device, threads=max(recipe.threads or 1 for recipe in recipes.values()))
    with _bar(progress, sum(recipe.epochs for recipe in recipes.values()), f"{len(recipes)} recipes") as bar:
        def job(name: str, recipe: Recipe) -> History:
            def shown(row: dict[str, float], improved: bool) -> None:
                bar.set_postfix_str(f"{name}, epoch {row['epoch']}: {row_summary(row)}")
                bar.update(1)
            return train_recipe(models[name], recipe, data, device, seed=recipe.seeds[0], progress=None,
                                on_epoch=shown if progress else None)

        order = sorted(recipes, key=lambda name: -cost[name]) if cost else list(recipes)
        jobs = [functools.partial(job, name, recipes[name]) for name in order]
        histories = dict(zip(order, run_in_lanes(jobs, lanes, on_start=_AtATime(bar, lanes))))
        if progress:
            bar.total = bar.n  # a recipe that stopped early leaves its last epochs out: the bar is still full
    return {name: (models[name], histories[name]) for name in recipes}


SEEDS_PER_PACK = 3  # fixed, not taken from the machine: a pack's size changes the order of its sums


def seed_packs(seeds: Sequence[int], size: int = SEEDS_PER_PACK) -> list[list[int]]:
    """`seeds` in packs of at most `size`, as even as possible, in order: 5 seeds → [1, 2, 3], [4, 5]."""
    count = -(-len(seeds) // size)
    sizes = [len(seeds) // count + (i < len(seeds) % count) for i in range(count)]  # the larger packs first
    starts = [sum(sizes[:i]) for i in range(count)]
    return [list(seeds[start:start + n]) for start, n in zip(starts, sizes)]


# What `train_recipe` does beyond a plain loop (each epoch `train`, then `test`: notebook 01's, written out to teach it)
BEYOND_A_PLAIN_LOOP = ("scheduler", "label_smoothing", "ema", "val_fraction", "train_fraction", "patience", "keep_best",
                       "bf16", "freeze_backbone")


def check_plain_loop(recipe: Recipe, model_class: type) -> None:
    """Refuse (ConfigError) a recipe that a plain loop training `model_class` would not train as written, naming what
    it would ignore: such a loop reads the recipe's batches, optimizer, epochs, threads and training probe (which it
    needs), and nothing else."""
    plain = Recipe()
    ignored = [f"{key}: {getattr(recipe, key)}" for key in BEYOND_A_PLAIN_LOOP
               if getattr(recipe, key) != getattr(plain, key)]
    wanted = model_class.__name__
    if recipe.model != wanted or recipe.model_args:
        args = f" with {recipe.model_args}" if recipe.model_args else ""
        ignored.insert(0, f"model: {recipe.model}{args} (it builds {wanted}() as it is: set model: {wanted}"
                          f"{', no model_args' if args else ''})")
    if ignored:
        raise ConfigError(f"{recipe.name}: the loop written out here trains {wanted} on the whole training set at "
                          f"the optimizer's constant rate, and would ignore {'; '.join(ignored)}. Take that out of "
                          "the config, or train it with run_recipe (as notebook 02 does) or `python -m mnist_utils "
                          "train`")
    if not recipe.train_probe:
        raise ConfigError(f"{recipe.name}: the loop written out here scores training images after every epoch, as "
                          "the test set is: set train_probe to how many (step1.yaml: 10000)")


def check_packable(recipe: Recipe) -> None:
    """Refuse (ConfigError) a recipe that `train_seeds` cannot train as it is written: what a search checks of every
    candidate before the first trains."""
    if recipe.bf16:
        raise ConfigError(f"{recipe.name}: packed seeds train in float32; set bf16: false, or use run_recipe")
    if recipe.val_fraction or recipe.batches_per_epoch or recipe.train_fraction < 1:
        raise ConfigError(f"{recipe.name}: packed seeds train on the whole training set in whole epochs; use "
                          "run_recipe for recipes with a validation split, a share of the data or short epochs")
    if recipe.scheduler not in ("onecycle", "none"):
        raise ConfigError(f"{recipe.name}: packed seeds step the learning rate after every batch (one-cycle) or "
                          f"never (none), not {recipe.scheduler!r}; use run_recipe for it")


def train_seeds(recipe: Recipe, data: MNIST, device: torch.device, *, seeds: Sequence[int] | None = None,
                progress: str | None = "epochs") -> list[tuple[nn.Module, History]]:
    """`recipe` run once per seed (the recipe's seeds by default), each seed fixing its model's
    initialisation, data order and augmentation exactly as `run_recipe` would; but the models train packed
    side by side (mnist_utils.packed), up to SEEDS_PER_PACK in one network (one, for a model with dropout), and
    the packs in lanes, one per usable CPU (mnist_utils.lanes): both are faster on a CPU than one after another.
    Returns (trained model, history) per seed. The packs share the machine, so each history's `seconds` is the
    wall time of the whole run, testing (and the recipe's training probe) after every epoch included, shared out
    over its epochs: the same total for every seed."""
    seeds = list(recipe.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    check_packable(recipe)
    recipe.check_data(len(data.train))
    models = {seed: build_seeded(recipe, seed) for seed in seeds}  # in turn, here, before any lane starts
    packs = seed_packs(seeds, 1 if drops_out(models[seeds[0]]) else SEEDS_PER_PACK)  # dropout: its own masks
    lanes = lanes_for(models.values(), device, threads=recipe.threads or 1)
    packed = [PackedModels([models[seed] for seed in pack]) for pack in packs]  # new layers draw: here too
    start = time.perf_counter()
    with _bar(progress, recipe.epochs * len(packs),
              f"{counted(len(seeds), 'seed')} in {counted(len(packs), 'pack')}") as bar:
        jobs = [functools.partial(_train_pack, recipe, data, device, network, pack, bar if progress else None)
                for network, pack in zip(packed, packs)]
        with computing_on(recipe.threads):  # in turn, where it fixes more threads than a lane has: on those
            results = [run for pack_runs in run_in_lanes(jobs, lanes, on_start=_AtATime(bar, lanes))
                       for run in pack_runs]
    seconds = time.perf_counter() - start
    for _, history in results:
        share = seconds / history.seconds
        for row in history.rows:
            row["seconds"] *= share
            row["images_per_s"] = len(seeds) * len(data.train) / row["seconds"]
    return results


def _bar(progress: str | None, total: int, desc: str) -> Any:
    """With progress 'epochs', a bar counting the epochs of every training, to use in a `with` (closed even when a
    lane fails); with None, nothing ('batches', a bar per epoch as `fit` draws it, has no meaning in lanes)."""
    if progress not in ("epochs", None):
        raise ValueError(f"progress: 'epochs' (one bar for every training's epochs) or None, got {progress!r}")
    return progress_bar(total=total, desc=desc, unit="epoch") if progress else contextlib.nullcontext()


class _AtATime:
    """Adds to a bar's label how many trainings may run at once (`run_in_lanes` tells it as each starts): '2 at a
    time', or '1 at a time, then 2' where a notebook beside this one ended and its core was taken; 'one after
    another' without lanes."""

    def __init__(self, bar: Any, lanes: int | None) -> None:  # bar: None without progress (`_bar`'s)
        self.bar, self.counts = bar, []
        self.label = bar.desc if bar is not None else ""
        if bar is not None and not lanes:
            bar.set_description_str(f"{self.label}, one after another")

    def __call__(self, at_once: int) -> None:
        if self.bar is not None and at_once > max(self.counts, default=0):
            self.counts.append(at_once)
            counts = f"{self.counts[0]} at a time" + "".join(f", then {n}" for n in self.counts[1:])
            self.bar.set_description_str(f"{self.label}, {counts}")


def _train_pack(recipe: Recipe, data: MNIST, device: torch.device, packed: PackedModels, seeds: list[int],
                bar: Any = None) -> list[tuple[nn.Module, History]]:
    """`packed` (one seeded model per seed of `seeds`, packed) trained epoch by epoch, testing (and scoring the
    recipe's training probe) after each."""
    packed = packed.to(device, memory_format=recipe.memory_format)
    streams = [recipe.train_batches(data.train, device, seed) for seed in seeds]
    # a packed model holds each copy's activations: batches 1/copies as large hold what one model's batch would
    test_batches = recipe.eval_batches(data.test, device, copies=len(seeds))
    probe_batches = recipe.probe_batches(data.train, device, copies=len(seeds))
    optimizer = recipe.make_optimizer(packed.parameters())
    scheduler = recipe.make_scheduler(optimizer, len(streams[0]))
    averaged = None if recipe.ema is None else WeightAverage(packed, recipe.ema)
    scored = packed if averaged is None else averaged.model  # the weights tested and given back, as `fit`'s
    loss_fn = functools.partial(packed_loss, label_smoothing=recipe.label_smoothing)
    histories = [History() for _ in seeds]
    copies, smoothing = len(seeds), recipe.label_smoothing  # losses as `fit` measures them: the recipe's loss
    label = f"seed {seeds[0]}" if copies == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    for epoch in range(1, recipe.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        trained = _train_packed(packed, streams, optimizer, scheduler, loss_fn, averaged, device, recipe.memory_format,
                                smoothing)
        tested = _test_packed(scored, test_batches, device, recipe.memory_format, smoothing)
        probed = [None] * copies if probe_batches is None else _test_packed(scored, probe_batches, device,
                                                                            recipe.memory_format, smoothing)
        seconds = time.perf_counter() - start  # training, testing, probing: what the run's wall time is shared by
        for g, history in enumerate(histories):
            history.record(epoch, lr, dataclasses.replace(trained[g], seconds=seconds), tested=tested[g],
                           probed=probed[g])
        if bar is not None:
            accuracies = [h["test_acc"][-1] for h in histories]
            bar.set_postfix_str(f"{label}, epoch {epoch}: test_acc min {min(accuracies):.2f}, "
                                f"max {max(accuracies):.2f}")
            bar.update(1)
    return [(scored.unpack(g).eval(), history) for g, history in enumerate(histories)]


def _train_packed(packed: PackedModels, streams: list[Any], optimizer: torch.optim.Optimizer, scheduler: Any,
                  loss_fn: Callable[..., torch.Tensor], averaged: WeightAverage | None, device: torch.device,
                  memory_format: torch.memory_format, label_smoothing: float) -> list[EpochStats]:
    """One epoch of `packed`, copy g on its own seed's batches (`streams[g]`), stepping the schedule and the weight
    average with each batch: each copy's loss (the recipe's, as `fit` measures it) and accuracy during the epoch;
    its images, every copy's, as the packed epoch processed them; its seconds, the training's alone."""
    packed.train()
    start = time.perf_counter()
    total_loss = torch.zeros(packed.copies, device=device)
    correct = torch.zeros(packed.copies, dtype=torch.long, device=device)
    n = 0  # the images each copy trained on (drop_last may leave some out)
    for images, labels in side_by_side(streams, memory_format):
        logits, _ = training_step(packed, images, labels, optimizer, scheduler, loss_fn)
        if averaged is not None:
            averaged.update()
        with torch.no_grad():
            loss, right = _per_copy_sums(logits, labels, label_smoothing)
            total_loss += loss
            correct += right
        n += len(labels)
    seconds = time.perf_counter() - start
    return [EpochStats(total_loss[g].item() / n, 100.0 * correct[g].item() / n, packed.copies * n, seconds)
            for g in range(packed.copies)]


def _per_copy_sums(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> tuple[torch.Tensor, ...]:
    """For packed logits (N, copies, 10) and labels (N, copies): each copy's summed loss (with the recipe's label
    smoothing, as `fit` measures it) and its number of right answers."""
    loss = F.cross_entropy(logits.permute(0, 2, 1), labels, reduction="none", label_smoothing=label_smoothing)
    return loss.sum(dim=0), (logits.argmax(dim=2) == labels).sum(dim=0)


@torch.inference_mode()
def _test_packed(packed: PackedModels, batches: Any, device: torch.device, memory_format: torch.memory_format,
                 label_smoothing: float = 0.0) -> list[EpochStats]:
    """Each copy's test loss (with the recipe's label smoothing, as `fit` measures it) and accuracy on `batches`,
    every copy seeing the same images."""
    packed.eval()
    start = time.perf_counter()
    total_loss = torch.zeros(packed.copies, device=device)
    correct = torch.zeros(packed.copies, dtype=torch.long, device=device)
    for images, labels in batches:
        images = images.to(device).expand(-1, packed.copies, -1, -1)  # every copy sees the same images
        logits = packed(images.contiguous(memory_format=memory_format))
        loss, right = _per_copy_sums(logits, labels.to(device)[:, None].expand(-1, packed.copies), label_smoothing)
        total_loss += loss
        correct += right
    n, seconds = batches.num_images, time.perf_counter() - start
    return [EpochStats(total_loss[g].item() / n, 100.0 * correct[g].item() / n, n, seconds)
            for g in range(packed.copies)]
