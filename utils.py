"""Train, test, fit, evaluate, plot and summarise: the helpers every notebook calls.

Helpers take what they work on as arguments (model, batches, optimizer, device), in the manner of
PyTorch's own MNIST example; nothing here keeps global state. The data machinery lives in
`mnist_utils` and is re-exported here so that a notebook imports from one place.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import html
import io
import itertools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchsummary
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

from mnist_utils.augment import Augment
from mnist_utils.batches import Batches
from mnist_utils.config import Profile, get_device, get_profile, reports_dir
from mnist_utils.packed import PackedModels, packed_loss, side_by_side
from mnist_utils.data import (CLASSES, MNIST, MNIST_MEAN, MNIST_STD, ImageSet, load_mnist, normalization_stats,
                              train_val_split, write_atomic)
from mnist_utils.pretrained import (PretrainedNet, pretrained_for_mnist, resnet18_weights_available,
                                    stem_conversion_error)
from mnist_utils.report import (Report, fmt, leaderboard_rows, load_results, markdown_table, show_markdown,
                                show_table)

__all__ = [
    # re-exported machinery
    "Augment", "Batches", "CLASSES", "ImageSet", "MNIST", "MNIST_MEAN", "MNIST_STD", "Profile", "Report",
    "fmt", "get_device", "get_profile", "load_mnist", "markdown_table", "normalization_stats", "show_markdown",
    "show_table", "train_val_split",
    # data exploration
    "class_counts", "count_repeats", "exact_duplicates",
    # set-up
    "seed_everything", "load_data", "progress_bar",
    # training
    "EpochStats", "History", "count_correct", "training_step", "train", "test", "fit",
    "make_optimizer", "make_scheduler", "make_loss", "OneCycleThenHold",
    # recipes (01-03)
    "Recipe", "BASELINE_RECIPE", "STEP3_RECIPE", "train_recipe", "train_seeds", "fitting_diagnosis",
    "last_epochs_summary", "seed_table",
    # evaluation
    "Predictions", "predict", "confusion_matrix", "per_class_metrics", "top_confusions",
    # model inspection
    "count_parameters", "summary", "receptive_field",
    # plots
    "plot_class_counts", "plot_samples", "plot_mean_images", "plot_pixel_histogram", "plot_history",
    "plot_lr", "plot_schedule", "plot_test_accuracy", "plot_confusion", "plot_misclassified", "plot_per_class",
    # comparing models (06)
    "ShortEpochs", "training_speed", "ensemble", "shared_errors", "wrong_by_all", "mcnemar", "confused_pairs",
    "plot_shared_errors", "plot_hard_images", "plot_leaderboard", "write_leaderboard", "leaderboard_rows", "load_results",
    # recipes and frozen features (04, 05)
    "fit_one_cycle", "plot_augmentation", "extract_features", "FeatureBatches", "fit_head", "feature_map_size",
    "linear_probe", "PretrainedNet", "pretrained_for_mnist", "resnet18_weights_available", "stem_conversion_error",
]


# ============================================================================ set-up


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the weight initialisation). Data order and augmentation are
    seeded separately, by `Batches(seed=...)`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_data(profile: Profile | None = None) -> MNIST:
    """MNIST as tensors, cut to the profile's sizes (the smoke profile uses small subsets)."""
    profile = profile or get_profile()
    data = load_mnist()
    return MNIST(train=data.train.head(profile.subset(len(data.train), "train")),
                 test=data.test.head(profile.subset(len(data.test), "test")))


def progress_bar(iterable: Iterable | None = None, **kwargs: Any):
    """A tqdm bar: a widget in Jupyter, a text bar in terminals and headless runs (MNIST_HEADLESS=1,
    set by the runner), where the runner keeps only each bar's final line."""
    if os.environ.get("MNIST_HEADLESS"):
        return text_tqdm(iterable, file=sys.stdout, mininterval=2.0, ascii=" ▏▎▍▌▋▊▉█", **kwargs)
    return auto_tqdm(iterable, **kwargs)


# ============================================================================ data exploration


def class_counts(labels: torch.Tensor) -> list[int]:
    """Images per digit, 0 to 9."""
    return torch.bincount(labels, minlength=len(CLASSES)).tolist()


def _image_keys(images: torch.Tensor) -> np.ndarray:
    """One opaque 784-byte value per image, so NumPy can sort and compare whole images at once."""
    flat = np.ascontiguousarray(images.cpu().numpy().reshape(len(images), -1))
    return flat.view(np.dtype((np.void, flat.shape[1]))).ravel()


def exact_duplicates(reference: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Indices of the `queries` images that are byte-for-byte equal to some `reference` image."""
    return torch.from_numpy(np.flatnonzero(np.isin(_image_keys(queries), _image_keys(reference))))


def count_repeats(images: torch.Tensor) -> int:
    """How many images are byte-for-byte copies of another image in the same set."""
    return len(images) - len(np.unique(_image_keys(images)))


# ============================================================================ training


@dataclass
class EpochStats:
    """Mean loss and accuracy (%) over one pass, with its size and duration."""

    loss: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else float("nan")


@dataclass
class History:
    """One row per epoch: train/test (and validation) loss and accuracy, learning rate, seconds."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[float]:
        return [row.get(column) for row in self.rows]

    def last(self, column: str, n: int = 1) -> list[float]:
        return self[column][-n:]

    def best(self, column: str, mode: str = "max") -> tuple[int, float]:
        """(epoch, value) of the best value of `column`."""
        values = self[column]
        pick = max if mode == "max" else min
        index = pick(range(len(values)), key=values.__getitem__)
        return self.rows[index]["epoch"], values[index]

    @property
    def seconds(self) -> float:
        return float(sum(self["seconds"]))


def count_correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """How many rows of `logits` have their largest value at the true label."""
    return int((logits.argmax(dim=1) == labels).sum())


def training_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scheduler: Any = None, loss_fn: Callable = F.cross_entropy) -> tuple[torch.Tensor, torch.Tensor]:
    """One update: forward, loss, backward, optimizer step, then the per-batch scheduler if any.
    Returns the logits and the loss (still attached to the graph)."""
    logits = model(images)
    loss = loss_fn(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return logits, loss


def train(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, device: torch.device, *,
          scheduler: Any = None, loss_fn: Callable = F.cross_entropy, bar: Any = None) -> EpochStats:
    """One epoch of training. `scheduler`, if given, is stepped after every batch (e.g. OneCycleLR)."""
    model.train()
    start = time.perf_counter()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits, loss = training_step(model, images, labels, optimizer, scheduler, loss_fn)
        # Accumulate on the device: no host sync per batch.
        total_loss += loss.detach() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
    return EpochStats(total_loss.item() / seen, 100.0 * correct.item() / seen, seen, time.perf_counter() - start)


@torch.inference_mode()
def test(model: nn.Module, batches: Iterable, device: torch.device, *,
         loss_fn: Callable = F.cross_entropy) -> EpochStats:
    """Mean loss and accuracy (%) of `model` on `batches`, in eval mode, without gradients."""
    model.eval()
    start = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        total_loss += loss_fn(logits, labels, reduction="sum").item()
        correct += count_correct(logits, labels)
        seen += len(labels)
    return EpochStats(total_loss / seen, 100.0 * correct / seen, seen, time.perf_counter() - start)


PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def _scheduler_step_kind(scheduler: Any) -> str | None:
    if scheduler is None:
        return None
    if isinstance(scheduler, PER_BATCH_SCHEDULERS):
        return "batch"
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return "plateau"
    return "epoch"


def fit(model: nn.Module, train_batches: Batches, test_batches: Batches | None, optimizer: torch.optim.Optimizer,
        device: torch.device, *, epochs: int, scheduler: Any = None, loss_fn: Callable = F.cross_entropy,
        val_batches: Batches | None = None, patience: int | None = None, monitor: str = "val_loss",
        keep_best: bool = False, monitor_from: int = 1, progress: str | None = "batches", desc: str = "") -> History:
    """Train for up to `epochs` epochs and return the history.

    Schedulers are stepped where they belong: OneCycleLR/CyclicLR per batch, ReduceLROnPlateau per epoch
    on the monitored metric, others per epoch. With `patience`, training stops once `monitor`
    (e.g. 'val_loss', 'val_acc') has not improved for that many epochs; with `keep_best`, the model ends
    with the weights of its best epoch. Epochs before `monitor_from` are neither best nor counted against
    patience: during a learning-rate warm-up the validation loss may rise before it falls.
    `progress`: 'batches' (a bar per epoch), 'epochs' (one bar for the run) or None.
    """
    if (patience is not None or keep_best) and monitor.startswith("val_") and val_batches is None:
        raise ValueError(f"monitoring {monitor!r} needs val_batches")
    if monitor.startswith("test_") and test_batches is None:
        raise ValueError(f"monitoring {monitor!r} needs test_batches")
    maximise = monitor.endswith("acc")
    step_kind = _scheduler_step_kind(scheduler)
    history = History()
    best_value, best_state, stale = None, None, 0
    run_bar = progress_bar(total=epochs, desc=desc or "epochs", unit="epoch") if progress == "epochs" else None

    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        bar = None
        if progress == "batches":
            bar = progress_bar(total=len(train_batches), desc=f"{desc} epoch {epoch}/{epochs}".strip(), unit="batch")
        stats = train(model, train_batches, optimizer, device,
                      scheduler=scheduler if step_kind == "batch" else None, loss_fn=loss_fn, bar=bar)
        row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_acc": stats.accuracy,
               "seconds": stats.seconds, "images_per_s": stats.images_per_second}
        if val_batches is not None:
            val = test(model, val_batches, device, loss_fn=loss_fn)
            row.update(val_loss=val.loss, val_acc=val.accuracy)
        if test_batches is not None:
            tested = test(model, test_batches, device, loss_fn=loss_fn)
            row.update(test_loss=tested.loss, test_acc=tested.accuracy)
        history.rows.append(row)

        if step_kind == "epoch":
            scheduler.step()
        elif step_kind == "plateau":
            scheduler.step(row[monitor] if monitor in row else row["train_loss"])

        shown = {k: row[k] for k in ("train_loss", "train_acc", "val_acc", "test_acc") if k in row}
        postfix = ", ".join(f"{k}={v:.4f}" if "loss" in k else f"{k}={v:.2f}" for k, v in shown.items())
        if bar is not None:
            bar.set_postfix_str(postfix)
            bar.close()
        if run_bar is not None:
            run_bar.set_postfix_str(postfix)
            run_bar.update(1)

        if monitor in row and epoch >= monitor_from:
            value = row[monitor]
            improved = best_value is None or (value > best_value if maximise else value < best_value)
            if improved:
                best_value, stale = value, 0
                if keep_best:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            if patience is not None and stale >= patience:
                break
    if run_bar is not None:
        run_bar.close()
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("onecycle", "step", "plateau", "none")


def make_optimizer(name: str, params: Iterable, lr: float, *, momentum: float = 0.9, nesterov: bool = True,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """'sgd' (momentum, Nesterov by default), 'adam' or 'adamw'."""
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}.")


class OneCycleThenHold(torch.optim.lr_scheduler.OneCycleLR):
    """OneCycleLR over its `total_steps`, then holding the final learning rate (and momentum) for every
    step after: a run can anneal over its first epochs and train on at the lowest rate to the end."""

    def step(self, epoch: int | None = None) -> None:
        if self.last_epoch < self.total_steps - 1:
            super().step(epoch)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, *, epochs: int = 1, steps_per_epoch: int = 1,
                   max_lr: float | None = None, pct_start: float = 0.25, div_factor: float = 25.0,
                   final_div_factor: float = 1e4, anneal_epochs: int | None = None, step_size: int = 5,
                   gamma: float = 0.1, factor: float = 0.5, patience: int = 2) -> Any:
    """'onecycle' (per batch: from max_lr/div_factor up to `max_lr` over the first `pct_start` of the
    cycle, then down to max_lr/div_factor/final_div_factor; with `anneal_epochs`, the cycle lasts that
    many epochs and the final rate holds after it), 'step' (×`gamma` every `step_size` epochs),
    'plateau' (×`factor` after `patience` epochs without improvement) or 'none' (returns None)."""
    name = name.lower()
    if name == "onecycle":
        settings = dict(max_lr=max_lr or optimizer.param_groups[0]["lr"], pct_start=pct_start,
                        div_factor=div_factor, final_div_factor=final_div_factor)
        if anneal_epochs is None:
            return torch.optim.lr_scheduler.OneCycleLR(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                                       **settings)
        # + 1: the cycle's last step, at the final rate, is taken at the end of its last epoch
        return OneCycleThenHold(optimizer, total_steps=anneal_epochs * steps_per_epoch + 1, **settings)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=factor, patience=patience)
    if name == "none":
        return None
    raise ValueError(f"Unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}.")


def make_loss(label_smoothing: float = 0.0) -> nn.CrossEntropyLoss:
    """Cross-entropy on raw logits, with optional label smoothing."""
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


# ============================================================================ recipes (01-03)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained, everything but the model and the seed: one object that the Step notebooks
    and the benchmark share, so that what is measured is what is shown."""

    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"  # with momentum and Nesterov
    lr: float = 0.05  # the peak rate, with a one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "none"  # or "onecycle"
    pct_start: float = 0.2  # one-cycle: share of the cycle spent warming up
    div_factor: float = 10.0  # one-cycle: starts at lr / div_factor
    final_div_factor: float = 100.0  # one-cycle: ends at lr / div_factor / final_div_factor
    anneal_epochs: int | None = None  # one-cycle: the cycle's length in epochs (default: all of them)
    augment: Augment = field(default_factory=Augment)
    clean_epochs: int = 0  # the last epochs train on the digits as they are, without augmentation
    channels_last: bool = True  # measured faster for these convolutions on CPU

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        schedule = "constant learning rate" if self.scheduler == "none" else (
            f"one-cycle learning rate, peak {self.lr:g} over {self.anneal_epochs or self.epochs} epochs "
            f"(warm-up {self.pct_start:.0%}, from {self.lr / self.div_factor:g} to "
            f"{self.lr / self.div_factor / self.final_div_factor:g})")
        optimizer = (f"SGD lr {self.lr:g}, Nesterov momentum {self.momentum:g}" if self.optimizer == "sgd"
                     else f"{self.optimizer} lr {self.lr:g}") + (
            f", weight decay {self.weight_decay:g}" if self.weight_decay else "")
        augmentation = self.augment.describe() + (
            f" (the last {self.clean_epochs} epochs without)" if self.clean_epochs and self.augment.enabled else "")
        return (f"{self.epochs} epoch{'s' * (self.epochs != 1)}, batches of {self.batch_size}, {optimizer}, "
                f"{schedule}, augmentation: {augmentation}")

    def with_epochs(self, epochs: int) -> "Recipe":
        """The same recipe, cut to `epochs` (the smoke profile); a one-cycle schedule is cut with it, and
        the first epoch at least stays augmented."""
        anneal = None if self.anneal_epochs is None else min(self.anneal_epochs, epochs)
        return dataclasses.replace(self, epochs=epochs, anneal_epochs=anneal,
                                   clean_epochs=min(self.clean_epochs, max(epochs - 1, 0)))

    def train_batches(self, images: ImageSet, device: torch.device, seed: int) -> Batches:
        """Shuffled, augmented training batches: `seed` fixes the order and the augmentation."""
        return Batches(images, self.batch_size, device=device, shuffle=True, seed=seed, augment=self.augment,
                       channels_last=self.channels_last, augment_passes=self.epochs - self.clean_epochs)

    def test_batches(self, images: ImageSet, device: torch.device) -> Batches:
        return Batches(images, 1000, device=device, channels_last=self.channels_last)

    def make_optimizer(self, params: Iterable) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer, params, self.lr, momentum=self.momentum,
                              weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        return make_scheduler(self.scheduler, optimizer, epochs=self.epochs, steps_per_epoch=steps_per_epoch,
                              max_lr=self.lr, pct_start=self.pct_start, div_factor=self.div_factor,
                              final_div_factor=self.final_div_factor,
                              anneal_epochs=self.anneal_epochs or self.epochs)


# The Step notebooks' recipes (the benchmark times STEP3_RECIPE). Steps 1 and 2 keep the learning rate
# constant and the data as it is, so that what changes between them is the model; Step 3 changes the training.
BASELINE_RECIPE = Recipe(epochs=15, batch_size=128, lr=0.05)
STEP3_RECIPE = Recipe(epochs=15, batch_size=64, lr=0.05, weight_decay=5e-4, scheduler="onecycle",
                      augment=Augment(rotation=7, translate=0.08), clean_epochs=3)


def train_recipe(model: nn.Module, recipe: Recipe, data: MNIST, device: torch.device, *, seed: int,
                 progress: str | None = "batches", desc: str = "") -> History:
    """Train `model` (already initialised, e.g. after `seed_everything(seed)`) on `data.train` with `recipe`,
    testing on `data.test` after every epoch. `seed` fixes the data order and the augmentation."""
    model.to(device, memory_format=recipe.memory_format)
    train_batches = recipe.train_batches(data.train, device, seed)
    optimizer = recipe.make_optimizer(model.parameters())
    scheduler = recipe.make_scheduler(optimizer, len(train_batches))
    return fit(model, train_batches, recipe.test_batches(data.test, device), optimizer, device,
               epochs=recipe.epochs, scheduler=scheduler, progress=progress, desc=desc)


def train_seeds(build: Callable[[], nn.Module], seeds: Sequence[int], recipe: Recipe, data: MNIST,
                device: torch.device, *, progress: bool = True) -> list[tuple[nn.Module, History]]:
    """`recipe` run once per seed, each seed fixing its model's initialisation (`build()` after
    `seed_everything(seed)`), data order and augmentation, exactly as `train_recipe` would; but all the
    models train at once, packed side by side (mnist_utils.packed), which is faster on a CPU than one
    after the other. Returns (trained model, history) per seed. Each history's `seconds` is the time of
    the packed epoch, shared by all seeds."""
    if not seeds:
        raise ValueError("need at least one seed")
    models = []
    for seed in seeds:
        seed_everything(seed)
        models.append(build())
    packed = PackedModels(models).to(device, memory_format=recipe.memory_format)
    streams = [recipe.train_batches(data.train, device, seed) for seed in seeds]
    test_batches = recipe.test_batches(data.test, device)
    optimizer = recipe.make_optimizer(packed.parameters())
    scheduler = recipe.make_scheduler(optimizer, len(streams[0]))
    histories = [History() for _ in seeds]
    copies, n_train = len(seeds), streams[0].num_images
    bar = progress_bar(total=recipe.epochs, desc=f"{copies} seeds at once", unit="epoch") if progress else None
    for epoch in range(1, recipe.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        packed.train()
        start = time.perf_counter()
        train_loss = torch.zeros(copies, device=device)
        train_correct = torch.zeros(copies, dtype=torch.long, device=device)
        for images, labels in side_by_side(streams, recipe.memory_format):  # copy g: its own seed's batches
            logits, _ = training_step(packed, images, labels, optimizer, scheduler, packed_loss)
            with torch.no_grad():
                per_copy = F.cross_entropy(logits.permute(0, 2, 1), labels, reduction="none").sum(dim=0)
                train_loss += per_copy
                train_correct += (logits.argmax(dim=2) == labels).sum(dim=0)
        seconds = time.perf_counter() - start
        test_loss, test_correct = _test_packed(packed, test_batches, device, recipe.memory_format)
        for g, history in enumerate(histories):
            history.rows.append({"epoch": epoch, "lr": lr, "train_loss": train_loss[g].item() / n_train,
                                 "train_acc": 100.0 * train_correct[g].item() / n_train,
                                 "test_loss": test_loss[g].item() / test_batches.num_images,
                                 "test_acc": 100.0 * test_correct[g].item() / test_batches.num_images,
                                 "seconds": seconds, "images_per_s": copies * n_train / seconds})
        if bar is not None:
            accuracies = [h["test_acc"][-1] for h in histories]
            bar.set_postfix_str(f"test_acc min {min(accuracies):.2f}, max {max(accuracies):.2f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    return [(packed.unpack(g).eval(), history) for g, history in enumerate(histories)]


@torch.inference_mode()
def _test_packed(packed: PackedModels, batches: Batches, device: torch.device,
                 memory_format: torch.memory_format) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and correct count per copy on `batches`, every copy seeing the same images."""
    packed.eval()
    total_loss = torch.zeros(packed.copies, device=device)
    correct = torch.zeros(packed.copies, dtype=torch.long, device=device)
    for images, labels in batches:
        images = images.to(device).expand(-1, packed.copies, -1, -1)  # every copy sees the same images
        logits = packed(images.contiguous(memory_format=memory_format))
        labels = labels.to(device)[:, None].expand(-1, packed.copies)
        total_loss += F.cross_entropy(logits.permute(0, 2, 1), labels, reduction="none").sum(dim=0)
        correct += (logits.argmax(dim=2) == labels).sum(dim=0)
    return total_loss, correct


def fitting_diagnosis(history: History, last: int = 3, tolerance: float = 0.1) -> dict[str, Any]:
    """Over- or under-fitting, from the train/test accuracy gap (points; train accuracy as measured during
    each epoch, on the batches the model learned from) averaged over the `last` epochs: above +`tolerance`
    the model does better on what it has seen than on new digits (it overfits); below −`tolerance` it does
    better on test digits than on its own (harder: augmented or with dropout) training batches, so the
    regularisation holds it back and it has room to fit more (it underfits); in between it fits well."""
    gaps = [train - test for train, test in zip(history["train_acc"], history["test_acc"])]
    mean_gap = sum(gaps[-last:]) / len(gaps[-last:])
    verdict = ("overfits" if mean_gap > tolerance else "underfits" if mean_gap < -tolerance else "fits well")
    return {"gaps": gaps, "mean_gap": mean_gap, "verdict": verdict, "last": min(last, len(gaps)),
            "tolerance": tolerance}


def last_epochs_summary(history: History, threshold: float, last: int = 3) -> dict[str, Any]:
    """Test accuracy over the `last` epochs against `threshold` (%): the values, their minimum, whether
    each meets it, and the best epoch of the whole run."""
    values = history.last("test_acc", last)
    best_epoch, best = history.best("test_acc")
    return {"last": values, "min_last": min(values), "met": len(history) >= last and min(values) >= threshold,
            "best": best, "best_epoch": best_epoch, "final": values[-1]}


def seed_table(histories: dict[int, History], threshold: float, last: int = 3) -> tuple[list[dict], dict]:
    """Per seed: the last `last` test accuracies, their minimum, the best and whether the target holds;
    and over all seeds: final accuracy mean ± std, lowest last-`last` accuracy, seeds meeting the target."""
    rows, summaries = [], {}
    for seed, history in histories.items():
        summary_ = summaries[seed] = last_epochs_summary(history, threshold, last)
        epochs = history.last("epoch", last)
        rows.append({"seed": seed, **{f"epoch {epoch}": v for epoch, v in zip(epochs, summary_["last"])},
                     f"min of last {last}": summary_["min_last"], "best": summary_["best"],
                     "best epoch": summary_["best_epoch"], f"≥ {threshold}% in each": "met" if summary_["met"] else "NOT met"})
    finals = torch.tensor([s["final"] for s in summaries.values()], dtype=torch.float64)
    overall = {"seeds": len(histories), "seeds_met": sum(s["met"] for s in summaries.values()),
               "final_mean": finals.mean().item(), "final_std": finals.std().item() if len(finals) > 1 else 0.0,
               "min_last": min(s["min_last"] for s in summaries.values()),
               "best": max(s["best"] for s in summaries.values())}
    return rows, overall


# ============================================================================ evaluation


@dataclass
class Predictions:
    """A model's verdict on every image of an (unshuffled) set, in order."""

    labels: torch.Tensor  # (N,) true class
    predicted: torch.Tensor  # (N,) arg-max class
    probabilities: torch.Tensor  # (N, 10) softmax

    @property
    def correct(self) -> torch.Tensor:
        return self.predicted == self.labels

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct.float().mean().item()

    @property
    def confidence(self) -> torch.Tensor:
        return self.probabilities.max(dim=1).values

    @property
    def wrong(self) -> torch.Tensor:
        """Indices of the misclassified images, most confident mistakes first."""
        wrong = torch.nonzero(~self.correct).flatten()
        return wrong[self.confidence[wrong].argsort(descending=True)]


@torch.inference_mode()
def predict(model: nn.Module, batches: Batches, device: torch.device) -> Predictions:
    """Predictions and probabilities for every image of `batches` (which must not shuffle)."""
    if batches.shuffle:
        raise ValueError("predict needs batches in a fixed order: make them with shuffle=False")
    model.eval()
    labels, probabilities = [], []
    for images, targets in batches:
        probabilities.append(F.softmax(model(images.to(device)).float(), dim=1).cpu())
        labels.append(targets.cpu())
    probabilities = torch.cat(probabilities)
    return Predictions(torch.cat(labels), probabilities.argmax(dim=1), probabilities)


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """counts[true, predicted]."""
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_metrics(confusion: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, F1 (%) and support per class, then a 'macro' row averaging the classes."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    precision = true_positive / confusion.sum(dim=0).clamp(min=1)
    recall = true_positive / confusion.sum(dim=1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    rows = [{"class": c, "precision": 100 * precision[c].item(), "recall": 100 * recall[c].item(),
             "f1": 100 * f1[c].item(), "support": int(confusion[c].sum())} for c in range(len(confusion))]
    rows.append({"class": "macro", "precision": 100 * precision.mean().item(), "recall": 100 * recall.mean().item(),
                 "f1": 100 * f1.mean().item(), "support": int(confusion.sum())})
    return rows


def top_confusions(confusion: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The `k` most frequent mistakes as (true, predicted, count), most frequent first."""
    errors = confusion.clone()
    errors.fill_diagonal_(0)
    counts, flat = errors.flatten().sort(descending=True)
    n = len(confusion)
    return [(int(i) // n, int(i) % n, int(c)) for c, i in zip(counts[:k], flat[:k]) if c > 0]


# ============================================================================ model inspection


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def summary(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> str:
    """torchsummary's layer table, computed on a CPU copy so that the model's BatchNorm statistics,
    its device and the global random state are left exactly as they were."""
    probe = copy.deepcopy(model).cpu()
    buffer = io.StringIO()
    with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(buffer):
        torchsummary.summary(probe, input_size, device="cpu")
    return buffer.getvalue()


def receptive_field(model: nn.Module, input_size: int = 28) -> list[dict[str, Any]]:
    """Per spatial layer, in definition order (the order these sequential CNNs run in): output size,
    jump (input pixels between neighbouring outputs) and receptive field, in input pixels."""
    size, jump, rf = input_size, 1, 1
    rows = [{"layer": "input", "kernel": "", "stride": "", "padding": "", "size": size, "jump": jump, "rf": rf}]
    for name, module in model.named_modules():
        if isinstance(module, nn.AdaptiveAvgPool2d):  # global pooling sees every remaining position
            kernel, stride, padding = size, 1, 0
        elif isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride, padding, dilation = (v[0] if isinstance(v, tuple) else v for v in (
                module.kernel_size, module.stride, module.padding, getattr(module, "dilation", 1)))
            kernel = dilation * (kernel - 1) + 1
        else:
            continue
        size = (size + 2 * padding - kernel) // stride + 1
        rf += (kernel - 1) * jump
        jump *= stride
        rows.append({"layer": f"{name} ({type(module).__name__})", "kernel": kernel, "stride": stride,
                     "padding": padding, "size": size, "jump": jump, "rf": rf})
    return rows


# ============================================================================ plots
# Each returns its figure, closed: Jupyter shows it once as the cell's value, scripts can save it.


def _finish(fig: plt.Figure) -> plt.Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_class_counts(train_labels: torch.Tensor, test_labels: torch.Tensor) -> plt.Figure:
    """Bars of images per class for train and test, with the share of the largest and smallest class."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, labels, name in zip(axes, (train_labels, test_labels), ("train", "test")):
        counts = np.array(class_counts(labels))
        sns.barplot(x=list(CLASSES), y=counts, ax=ax, color="#4c72b0")
        ax.axhline(counts.mean(), color="0.3", ls="--", lw=1, label=f"mean {counts.mean():,.0f}")
        ax.set(title=f"{name}: {counts.sum():,} images", xlabel="digit", ylabel="images")
        ax.legend(loc="lower right")
    return _finish(fig)


def plot_samples(images: torch.Tensor, labels: torch.Tensor, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """A grid: one row per digit, `per_class` random examples each."""
    generator = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(10, per_class, figsize=(per_class * 0.9, 10 * 0.9))
    for digit in CLASSES:
        pool = torch.nonzero(labels == digit).flatten()
        chosen = pool[torch.randperm(len(pool), generator=generator)[:per_class]]
        for column, ax in enumerate(axes[digit]):
            ax.axis("off")
            if column < len(chosen):
                ax.imshow(images[chosen[column]].cpu().numpy(), cmap="gray_r")
        axes[digit][0].set_title(str(digit), loc="left", fontsize=9)
    return _finish(fig)


def plot_mean_images(images: torch.Tensor, labels: torch.Tensor) -> plt.Figure:
    """The average image of each digit."""
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
    for digit, ax in zip(CLASSES, axes):
        ax.imshow(images[labels == digit].float().mean(dim=0).cpu().numpy(), cmap="magma")
        ax.set_title(str(digit))
        ax.axis("off")
    return _finish(fig)


def plot_pixel_histogram(images: torch.Tensor) -> plt.Figure:
    """How often each of the 256 pixel values occurs (log scale: most pixels are background)."""
    counts = torch.bincount(images.flatten(), minlength=256).numpy()
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(np.arange(256), counts, width=1.0, color="#4c72b0")
    ax.set(yscale="log", xlabel="pixel value (0 = background, 255 = ink)", ylabel="pixels",
           title=f"{counts[0] / counts.sum():.1%} of pixels are 0, {counts[255] / counts.sum():.1%} are 255")
    return _finish(fig)


def plot_history(histories: History | dict[str, History], title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch, train (dashed) and test or validation (solid), for one run or several."""
    if isinstance(histories, History):
        histories = {"": histories}
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = sns.color_palette("tab10", len(histories))
    for colour, (name, history) in zip(palette, histories.items()):
        epochs = history["epoch"]
        held_out = "test" if history.rows and "test_acc" in history.rows[0] else "val"
        prefix = f"{name} " if name else ""
        loss_ax.plot(epochs, history["train_loss"], ls="--", color=colour, label=f"{prefix}train")
        loss_ax.plot(epochs, history[f"{held_out}_loss"], color=colour, label=f"{prefix}{held_out}")
        acc_ax.plot(epochs, history["train_acc"], ls="--", color=colour, label=f"{prefix}train")
        acc_ax.plot(epochs, history[f"{held_out}_acc"], color=colour, marker="o", ms=3, label=f"{prefix}{held_out}")
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig)


def plot_lr(history: History) -> plt.Figure:
    """The learning rate at the start of each epoch."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(history["epoch"], history["lr"], marker="o")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning-rate schedule")
    ax.grid(alpha=0.3)
    return _finish(fig)


def plot_test_accuracy(histories: History | dict[str, History], target: float | None = None, last: int = 3,
                       title: str = "") -> plt.Figure:
    """Test accuracy per epoch, zoomed in near the top, with the target line and the last `last` epochs
    shaded (where a target "in each of the last epochs" is judged); and the train − test gap per epoch."""
    if isinstance(histories, History):
        histories = {"": histories}
    fig, (acc_ax, gap_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = sns.color_palette("tab10", len(histories))
    for colour, (name, history) in zip(palette, histories.items()):
        acc_ax.plot(history["epoch"], history["test_acc"], marker="o", ms=3, color=colour, label=name or "test")
        gaps = [a - b for a, b in zip(history["train_acc"], history["test_acc"])]
        gap_ax.plot(history["epoch"], gaps, marker="o", ms=3, color=colour, label=name or "train − test")
    epochs = max(len(h) for h in histories.values())
    lows = [min(h["test_acc"][min(2, len(h) - 1):]) for h in histories.values()]  # zoom past the first epochs
    top = max(max(h["test_acc"]) for h in histories.values())
    if target is not None:
        acc_ax.axhline(target, color="crimson", ls="--", lw=1, label=f"target {target}%")
        top = max(top, target)
    acc_ax.axvspan(epochs - last + 0.5, epochs + 0.5, color="0.9", zorder=0, label=f"last {last} epochs")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy", ylim=(min(lows) - 0.1, top + 0.1))
    gap_ax.axhline(0, color="0.3", lw=1)
    gap_ax.set(xlabel="epoch", ylabel="points", title="train − test accuracy (> 0: better on seen data)")
    for ax in (acc_ax, gap_ax):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    if title:
        fig.suptitle(title)
    return _finish(fig)


def plot_schedule(recipe: Recipe, steps_per_epoch: int) -> plt.Figure:
    """The learning rate and momentum `recipe` uses at every training step, worked out by running its own
    optimizer and scheduler on a dummy parameter."""
    dummy = nn.Parameter(torch.zeros(1))
    optimizer = recipe.make_optimizer([dummy])
    scheduler = recipe.make_scheduler(optimizer, steps_per_epoch)
    rates, momenta = [], []
    for _ in range(recipe.epochs * steps_per_epoch):
        group = optimizer.param_groups[0]
        rates.append(group["lr"])
        momenta.append(group.get("momentum", group.get("betas", (0.0,))[0]))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    epochs = [step / steps_per_epoch for step in range(len(rates))]
    fig, (lr_ax, momentum_ax) = plt.subplots(1, 2, figsize=(12, 3.2))
    lr_ax.plot(epochs, rates)
    momentum_ax.plot(epochs, momenta, color="tab:orange")
    lr_ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate per step", yscale="log")
    momentum_ax.set(xlabel="epoch", ylabel="momentum", title="momentum per step")
    for ax in (lr_ax, momentum_ax):
        ax.grid(alpha=0.3)
    return _finish(fig)


def plot_confusion(confusion: torch.Tensor, title: str = "") -> plt.Figure:
    """Heatmap of mistakes only (the diagonal is left blank so errors stand out), with counts."""
    errors = confusion.clone().numpy().astype(float)
    np.fill_diagonal(errors, np.nan)
    labels = np.where(errors > 0, np.nan_to_num(errors).astype(int).astype(str), "")
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(errors, annot=labels, fmt="", cmap="Reds", cbar=False, ax=ax, linewidths=0.5, linecolor="0.9")
    ax.set(xlabel="predicted", ylabel="true",
           title=title or f"{int(confusion.sum() - confusion.trace())} errors of {int(confusion.sum()):,}")
    return _finish(fig)


def plot_misclassified(images: torch.Tensor, predictions: Predictions, n: int = 24, columns: int = 8) -> plt.Figure:
    """The most confident mistakes: image, true → predicted, confidence."""
    wrong = predictions.wrong[:n]
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong.tolist()):
        ax.imshow(images[index].cpu().numpy(), cmap="gray_r")
        ax.set_title(f"{predictions.labels[index]}→{predictions.predicted[index]} "
                     f"{predictions.confidence[index]:.0%}", fontsize=8, color="#b00")
    fig.suptitle(f"{len(predictions.wrong)} misclassified; the {len(wrong)} most confident (true→predicted)")
    return _finish(fig)


def plot_per_class(metrics: Sequence[dict[str, float]], title: str = "") -> plt.Figure:
    """Precision, recall and F1 per digit, zoomed to where they differ."""
    rows = [r for r in metrics if r["class"] != "macro"]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    width = 0.27
    x = np.arange(len(rows))
    for offset, key in zip((-width, 0, width), ("precision", "recall", "f1")):
        ax.bar(x + offset, [r[key] for r in rows], width, label=key)
    low = min(min(r[k] for r in rows) for k in ("precision", "recall", "f1"))
    ax.set(xticks=x, xticklabels=[str(r["class"]) for r in rows], ylim=(max(0, low - 1), 100.2),
           xlabel="digit", ylabel="%", title=title or "per-class precision, recall and F1")
    ax.legend(ncol=3, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig)


# ============================================================================ comparing models (06)


class ShortEpochs:
    """`batches` as one endless stream, cut into epochs of `batches_per_epoch` batches each.

    For models that can afford only a pass or two over the training set: `fit` still validates,
    early-stops and steps its schedule once per (short) epoch, and every image is still used. Each pass
    over the data is shuffled anew from the batches' seed; a pass may straddle two epochs.
    """

    def __init__(self, batches: Batches, batches_per_epoch: int):
        if batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")
        self.batches = batches
        self.batches_per_epoch = batches_per_epoch
        self._stream = itertools.chain.from_iterable(itertools.repeat(batches))  # a new pass when one ends

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        return itertools.islice(self._stream, self.batches_per_epoch)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_speed(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device, *,
                   steps: int = 2, repeats: int = 1, warmup: int = 1, channels_last: bool = False,
                   autocast_dtype: torch.dtype | None = None) -> float:
    """Training images per second of `model` on one batch: full Adam steps (forward, backward, update) on a
    copy, `warmup` untimed, then `repeats` timings of `steps` steps, of which the best counts (the one
    least disturbed by other work on the machine). With `channels_last`, model and batch use that memory
    layout; with `autocast_dtype` (e.g. torch.bfloat16), the forward pass runs under autocast. The model
    and the random state are left exactly as they were."""
    if steps < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need steps ≥ 1, repeats ≥ 1 and warmup ≥ 0, got {steps}, {repeats}, {warmup}")
    probe = copy.deepcopy(model).to(device).train()
    x, y = images.to(device), labels.to(device)
    if channels_last:
        probe, x = probe.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(probe.parameters())

    def step() -> None:
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = F.cross_entropy(probe(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    best = 0.0
    cuda_devices = range(torch.cuda.device_count()) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):  # dropout draws here must not shift seeded runs
        for _ in range(warmup):
            step()
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            _synchronize(device)
            best = max(best, steps * len(y) / (time.perf_counter() - start))
    return best


def _same_images(predictions: Sequence[Predictions]) -> None:
    if not predictions:
        raise ValueError("need at least one model's predictions")
    if any(not torch.equal(p.labels, predictions[0].labels) for p in predictions[1:]):
        raise ValueError("predictions must be on the same images in the same order: predict every model "
                         "with the same unshuffled batches")


def ensemble(predictions: Sequence[Predictions]) -> Predictions:
    """Several models' predictions combined by averaging their softmax outputs."""
    _same_images(predictions)
    probabilities = torch.stack([p.probabilities for p in predictions]).mean(dim=0)
    return Predictions(predictions[0].labels, probabilities.argmax(dim=1), probabilities)


def shared_errors(predictions: Sequence[Predictions]) -> torch.Tensor:
    """counts[i, j]: images that models i and j both get wrong; the diagonal holds each model's errors."""
    _same_images(predictions)
    wrong = torch.stack([~p.correct for p in predictions]).double()
    return (wrong @ wrong.T).long()


def wrong_by_all(predictions: Sequence[Predictions]) -> torch.Tensor:
    """Indices of the images that every one of the models gets wrong."""
    _same_images(predictions)
    return torch.nonzero(torch.stack([~p.correct for p in predictions]).all(dim=0)).flatten()


def mcnemar(a: Predictions, b: Predictions) -> dict[str, float]:
    """Paired comparison of two models on the same images: how many images only `a` gets right, how many
    only `b`, and the exact two-sided McNemar p-value, the chance of a split at least this lopsided if
    both were equally good (a binomial test on the images where they disagree)."""
    _same_images([a, b])
    only_a, only_b = int((a.correct & ~b.correct).sum()), int((~a.correct & b.correct).sum())
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, 2 * tail / 2**n)}


def confused_pairs(confusion: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The `k` pairs of digits most often mistaken for each other, either way round: (a, b, count), a < b."""
    return top_confusions((confusion + confusion.T).triu(diagonal=1), k)


def plot_shared_errors(counts: torch.Tensor, names: Sequence[str]) -> plt.Figure:
    """Heatmap of `shared_errors`: images each pair of models both get wrong, each model's errors on the diagonal."""
    size = 1.2 * len(names) + 2
    fig, ax = plt.subplots(figsize=(size + 0.5, size - 0.5))
    sns.heatmap(counts.numpy(), annot=True, fmt="d", cmap="Purples", cbar=False, xticklabels=names,
                yticklabels=names, ax=ax, linewidths=0.5, linecolor="0.9")
    ax.set_title("test images both models get wrong\n(diagonal: each model's own errors)")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    return _finish(fig)


def plot_hard_images(images: torch.Tensor, indices: torch.Tensor, predictions: dict[str, Predictions],
                     n: int = 32, columns: int = 8) -> plt.Figure:
    """The first `n` images at `indices`, each titled with its true label and every model's answer, in model order."""
    total, indices = len(indices), indices[:n].tolist()
    if not indices:
        fig, ax = plt.subplots(figsize=(6, 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, "no image is misclassified by every model", ha="center", va="center")
        return _finish(fig)
    rows = -(-len(indices) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.55 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    labels = next(iter(predictions.values())).labels
    for ax, index in zip(axes.flat, indices):
        ax.imshow(images[index].cpu().numpy(), cmap="gray_r")
        answers = "".join(str(int(p.predicted[index])) for p in predictions.values())
        ax.set_title(f"{int(labels[index])} → {answers}", fontsize=8, color="#b00")
    shown = f"{total} images" if total == len(indices) else f"{len(indices)} of {total} images"
    fig.suptitle(f"{shown}; title: true → answers of {', '.join(predictions)}", fontsize=9)
    return _finish(fig)


LEADERBOARD_COLUMNS = ("model", "notebook", "parameters", "test accuracy", "training time (s)")


def plot_leaderboard(rows: Sequence[dict[str, Any]], highlight: str | None = None) -> plt.Figure:
    """Test accuracy against parameters (log scale) for rows of `leaderboard_rows`, one colour per
    notebook, each point labelled with its model and training time; `highlight` rings one notebook's models."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    notebooks = sorted({row["notebook"] for row in rows})
    palette = dict(zip(notebooks, sns.color_palette("tab10", max(1, len(notebooks)))))
    for notebook in notebooks:
        mine = [row for row in rows if row["notebook"] == notebook]
        ax.scatter([r["parameters"] for r in mine], [r["test accuracy"] for r in mine], s=60, label=notebook,
                   color=palette[notebook], edgecolor="black" if notebook == highlight else "white", linewidth=1.2, zorder=3)
        for r in mine:
            ax.annotate(f"{r['model']} · {r['training time (s)']:,.0f} s", (r["parameters"], r["test accuracy"]),
                        xytext=(5, 4), textcoords="offset points", fontsize=7)
    if not rows:
        ax.text(0.5, 0.5, "no results files yet: run the notebooks", ha="center", transform=ax.transAxes)
    ax.set(xscale="log", xlabel="parameters (log scale)", ylabel="test accuracy (%)",
           title="every model of the series: accuracy against size (label: model · training time)")
    ax.grid(alpha=0.3, which="both")
    if rows:
        ax.legend(title="notebook", fontsize=8, loc="lower right")
    return _finish(fig)


def write_leaderboard(rows: Sequence[dict[str, Any]], figure: plt.Figure, directory: Path | str | None = None, *,
                      note: str = "") -> tuple[Path, Path]:
    """Write `figure` (from `plot_leaderboard(rows)`) as `leaderboard.png`, and a page with it and the table
    of `rows` as `leaderboard.html`, to `directory` (default: the reports folder, whose index page links
    them), each atomically. Returns both paths."""
    directory = Path(directory or reports_dir())
    png, page = directory / "leaderboard.png", directory / "leaderboard.html"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_atomic(png, buffer.getvalue())
    cells = "".join(
        "<tr>" + f"<td>{rank}</td>" + "".join(f"<td>{html.escape(fmt(row[c], '%' if c == 'test accuracy' else ''))}</td>"
                                             for c in LEADERBOARD_COLUMNS) + "</tr>\n"
        for rank, row in enumerate(rows, 1))
    header = "".join(f"<th>{html.escape(c)}</th>" for c in ("rank", *LEADERBOARD_COLUMNS))
    write_atomic(page, f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST series leaderboard</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left}}
th{{background:#f5f5f7}}img{{max-width:100%}}.meta{{color:#666}}</style></head><body>
<h1>Every model of the series</h1>
<p class="meta">{html.escape(note)}</p>
<img src="{png.name}" alt="test accuracy against parameters">
<table><thead><tr>{header}</tr></thead><tbody>
{cells or '<tr><td colspan="6">No results yet: run the notebooks.</td></tr>'}</tbody></table>
</body></html>
""".encode())
    return png, page


# ============================================================================ recipes and frozen features (04, 05)


def fit_one_cycle(model: nn.Module, train_batches: Any, test_batches: Any, device: torch.device, *, epochs: int,
                  max_lr: float, optimizer: str = "adam", weight_decay: float = 0.0, **fit_kwargs: Any) -> History:
    """`fit` with one optimizer over all of `model`'s parameters and a one-cycle learning rate peaking at
    `max_lr`: warm-up for the first quarter (at least one step), then annealing to almost zero. A cycle
    needs a step up and a step down, so a run of fewer than 3 steps (smoke-sized) keeps `max_lr` constant."""
    opt = make_optimizer(optimizer, model.parameters(), lr=max_lr, weight_decay=weight_decay)
    steps = epochs * len(train_batches)
    scheduler = None
    if steps >= 3:
        scheduler = make_scheduler("onecycle", opt, epochs=epochs, steps_per_epoch=len(train_batches),
                                   max_lr=max_lr, pct_start=min(0.5, max(0.25, 2 / steps)))
    return fit(model, train_batches, test_batches, opt, device, epochs=epochs, scheduler=scheduler, **fit_kwargs)


@torch.no_grad()  # not inference_mode: a head is trained on these tensors afterwards, and autograd must accept them
def extract_features(backbone: nn.Module, batches: Iterable, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of `backbone` over `batches` in eval mode: (features (N, D), labels (N,)) on `device`.
    Computed once, they serve every epoch of training a head on a frozen backbone."""
    backbone.eval()
    features, labels = [], []
    for images, targets in batches:
        features.append(backbone(images.to(device)).flatten(1).float())
        labels.append(targets.to(device))
    return torch.cat(features), torch.cat(labels)


class FeatureBatches:
    """Batches of precomputed (features, labels), reshuffled each pass from `seed` like `Batches`."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0):
        if len(features) != len(labels) or len(labels) == 0:
            raise ValueError(f"need as many labels as feature rows, and at least one: got {len(features)} "
                             f"rows and {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.features, self.labels = features, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.features[index], self.labels[index]


def fit_head(model: nn.Module, train_batches: Iterable, device: torch.device, *, epochs: int, max_lr: float,
             batch_size: int = 64, seed: int = 0, val_batches: Iterable | None = None,
             **fit_kwargs: Any) -> tuple[History, float]:
    """Train only `model.head` on the features of the frozen `model.backbone`, computed once in eval mode
    (one pass over `train_batches`, and one over `val_batches` if given) and reused at every epoch.
    Returns the history and the seconds the pass over the training images took."""
    if not (hasattr(model, "backbone") and hasattr(model, "head")):
        raise ValueError(f"fit_head needs a model with .backbone and .head (as pretrained_for_mnist builds), "
                         f"got {type(model).__name__}")
    start = time.perf_counter()
    features = extract_features(model.backbone, train_batches, device)
    seconds = time.perf_counter() - start
    val = None if val_batches is None else FeatureBatches(*extract_features(model.backbone, val_batches, device), 1000)
    history = fit_one_cycle(model.head, FeatureBatches(*features, batch_size, shuffle=True, seed=seed), None, device,
                            epochs=epochs, max_lr=max_lr, val_batches=val, **fit_kwargs)
    return history, seconds


@torch.no_grad()
def feature_map_size(model: nn.Module, image_size: int, channels: int = 1) -> tuple[int, int]:
    """(height, width) of the map that `model`'s global average pooling receives for an `image_size`-pixel
    square input: how much spatial detail survives to the last layer."""
    pool = next((m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
    if pool is None:
        raise ValueError(f"{type(model).__name__} has no nn.AdaptiveAvgPool2d to measure the feature map at")
    seen: list[tuple[int, int]] = []
    handle = pool.register_forward_pre_hook(lambda module, inputs: seen.append(tuple(inputs[0].shape[-2:])))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()  # eval: a probe must not move BatchNorm's running statistics
        model(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        handle.remove()
        model.train(was_training)
    return seen[0]


def linear_probe(backbone: nn.Module, train_batches: Iterable, test_batches: Iterable, device: torch.device, *,
                 num_classes: int = 10, epochs: int = 30, lr: float = 1e-3, batch_size: int = 100,
                 seed: int = 0) -> dict[str, float]:
    """How well a linear classifier separates `backbone`'s frozen features: features of both sets computed
    once, a fresh linear head trained on them with Adam. Returns test accuracy (%) and the backbone's
    images per second (both sets, feature extraction only)."""
    start = time.perf_counter()
    train_x, train_y = extract_features(backbone, train_batches, device)
    test_x, test_y = extract_features(backbone, test_batches, device)
    seconds = time.perf_counter() - start
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(train_x.shape[1], num_classes).to(device)
    history = fit_one_cycle(head, FeatureBatches(train_x, train_y, batch_size, shuffle=True, seed=seed), None,
                            device, epochs=epochs, max_lr=lr, progress=None)
    accuracy = test(head, FeatureBatches(test_x, test_y, 1000), device).accuracy
    return {"accuracy": accuracy, "train_accuracy": history["train_acc"][-1],
            "images_per_s": (len(train_y) + len(test_y)) / seconds}


def plot_augmentation(images: torch.Tensor, augment: Augment, n: int = 8, copies: int = 4, seed: int = 0) -> plt.Figure:
    """`n` training images (columns): the original on top, then `copies` random augmentations of it."""
    generator = torch.Generator().manual_seed(seed)
    originals = images[:n].unsqueeze(1).float().div(255)
    rows = [originals] + [augment(originals, generator) for _ in range(copies)]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.05), squeeze=False)
    for r, batch in enumerate(rows):
        for c in range(n):
            axes[r][c].imshow(batch[c, 0].cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel("original" if r == 0 else f"random {r}", fontsize=8)
    fig.suptitle(f"augmentation: {augment.describe()}", fontsize=10)
    return _finish(fig)
