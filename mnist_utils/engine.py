"""The training engine: one step, one epoch of training, one pass of testing, and `fit`, the epoch loop
with its history, early stopping and learning-rate schedule. The optimizer, schedule and loss a recipe names are
made in optim.py; the arithmetic a model computes in is chosen in precision.py.

Read it top to bottom as you would PyTorch's own MNIST example: `train` and `test` take the model, the
batches, the optimizer and the device as arguments, and nothing here keeps state of its own between calls
(`seed_everything` seeds torch's global generators and sets cuDNN's choices, as it says).
"""
from __future__ import annotations

import copy
import inspect
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

from .averaging import WeightAverage, holding
from .config import exact_cudnn, headless
from .config_values import SEEDS, seed_problem
from .optim import scheduler_step_kind


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the weight initialisation), and have cuDNN compute a GPU's convolutions
    the same way every run. Data order and augmentation are seeded separately, by `Batches(seed=...)`."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):  # "1" or 1.5 fail deep in NumPy
        raise TypeError(f"{SEEDS}, e.g. 1; got {seed!r}")
    if problem := seed_problem(int(seed)):
        raise ValueError(problem)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    exact_cudnn()


FILE_INTERVAL = 30.0  # seconds between a text bar's updates where stderr is a file or a pipe, not a terminal


def progress_bar(iterable: Iterable | None = None, **kwargs: Any):
    """A tqdm bar: a widget in Jupyter, a text bar in terminals and headless runs (MNIST_HEADLESS=1,
    set by the runner), where the runner keeps only each bar's final line. Where stderr goes to a file (a log,
    `2> file`), the bar updates every FILE_INTERVAL seconds, not ten times a second."""
    if headless():
        return text_tqdm(iterable, file=sys.stdout, mininterval=2.0, ascii=" ▏▎▍▌▋▊▉█", **kwargs)
    in_jupyter = any(cls.__module__ == "tqdm.notebook" for cls in auto_tqdm.__mro__)  # tqdm.auto's choice
    if not in_jupyter and not (sys.stderr and sys.stderr.isatty()):
        kwargs.setdefault("mininterval", FILE_INTERVAL)
    return auto_tqdm(iterable, **kwargs)


# ---------------------------------------------------------------------------- one epoch


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


def class_scores(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """`logits`, checked to hold one row of class scores per label: (N, classes) for labels (N,), and (N, copies,
    classes) for packed copies' (N, copies). A ValueError naming the fix otherwise: a network that returns its last
    feature map unflattened, (N, 10, 1, 1), fails inside the loss, and would be scored wrongly without a word."""
    if not isinstance(logits, torch.Tensor) or logits.shape[:-1] != labels.shape:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model gave {shape} for {len(labels)} images, where a classifier gives one row of class "
                         f"scores per image, ({len(labels)}, classes): flatten its last features (x.flatten(1)) "
                         "before its last layer, and return the scores alone")
    return logits


def check_loss_fn(loss_fn: Callable) -> None:
    """Refuse (TypeError) a loss that takes no `reduction`: `test` sums each batch's loss with loss_fn(...,
    reduction='sum'), which a function such as F.cross_entropy takes and nn.CrossEntropyLoss() does not (it failed
    after a whole epoch)."""
    called = loss_fn.forward if isinstance(loss_fn, nn.Module) else loss_fn  # a module's own signature is *args
    try:
        parameters = inspect.signature(called).parameters.values()
    except (TypeError, ValueError):  # no signature to read: it is tried as it is
        return
    if not any(p.name == "reduction" or p.kind is p.VAR_KEYWORD for p in parameters):
        raise TypeError(f"loss_fn: give a function that takes reduction=, such as F.cross_entropy, not "
                        f"{getattr(loss_fn, '__name__', type(loss_fn).__name__ + '()')} "
                        "(functools.partial(F.cross_entropy, label_smoothing=0.1) sets its options)")


def check_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Refuse (ValueError) an optimizer that holds none of `model`'s parameters: one made for another model (in a
    notebook, the model's cell run again after the optimizer's), which would leave this one untrained."""
    held = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    if not any(id(parameter) in held for parameter in model.parameters()):
        raise ValueError("the optimizer holds none of the model's parameters: it was made for another model (in a "
                         "notebook, run the cell that makes the optimizer again after the model's)")


def training_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scheduler: Any = None, loss_fn: Callable = F.cross_entropy) -> tuple[torch.Tensor, torch.Tensor]:
    """One update: forward, loss, backward, optimizer step, then the per-batch scheduler if any.
    Returns the logits and the loss (still attached to the graph)."""
    logits = class_scores(model(images), labels)
    loss = loss_fn(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return logits, loss


def train(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, device: torch.device, *,
          scheduler: Any = None, loss_fn: Callable = F.cross_entropy, bar: Any = None,
          averaged: WeightAverage | None = None) -> EpochStats:
    """One epoch of training. `scheduler`, if given, is stepped after every batch (e.g. OneCycleLR), and
    `averaged` updated."""
    check_optimizer(model, optimizer)
    model.train()
    start = time.perf_counter()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits, loss = training_step(model, images, labels, optimizer, scheduler, loss_fn)
        if averaged is not None:
            averaged.update()
        # Accumulate on the device: no host sync per batch.
        total_loss += loss.detach() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
    return EpochStats(total_loss.item() / seen, 100.0 * correct.item() / seen, seen, time.perf_counter() - start)


def epochs_until(run_epoch: Callable[[int], float], epochs: int, stop_at: float, bar: Any = None) -> list[dict[str, float]]:
    """Time to accuracy: `run_epoch(epoch)` (train one epoch, return the test accuracy) for epochs 1, 2, ...
    until the accuracy reaches `stop_at` or `epochs` end. One row per epoch: the epoch, its test accuracy and
    the seconds since this call, testing included."""
    rows, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        accuracy = run_epoch(epoch)
        rows.append({"epoch": epoch, "test_acc": accuracy, "seconds": time.perf_counter() - start})
        if bar is not None:
            bar.set_postfix_str(f"epoch {epoch}: test_acc={accuracy:.2f}")
        if accuracy >= stop_at:
            break
    return rows


@torch.inference_mode()
def test(model: nn.Module, batches: Iterable, device: torch.device, *,
         loss_fn: Callable = F.cross_entropy) -> EpochStats:
    """Mean loss and accuracy (%) of `model` on `batches`, in eval mode, without gradients."""
    check_loss_fn(loss_fn)
    model.eval()
    start = time.perf_counter()
    # Summed on the device, in float64 as Python sums floats: the same figures, without waiting for each batch.
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        logits = class_scores(model(images), labels)
        total_loss += loss_fn(logits, labels, reduction="sum").double()
        correct += (logits.argmax(dim=1) == labels).sum()
        seen += len(labels)
    return EpochStats(total_loss.item() / seen, 100.0 * correct.item() / seen, seen, time.perf_counter() - start)


# ---------------------------------------------------------------------------- the epoch loop's bookkeeping


PROBED = "train_eval_acc"  # the column of training images scored as the test set is (a recipe's train_probe)


@dataclass
class History:
    """One row per epoch: train/test (and validation) loss and accuracy, learning rate, seconds."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[float]:
        return [row.get(column) for row in self.rows]

    def record(self, epoch: int, lr: float, trained: EpochStats, *, val: EpochStats | None = None,
               tested: EpochStats | None = None, probed: EpochStats | None = None) -> dict[str, float]:
        """Append the row of one epoch, from what training (and validating, testing, scoring training images
        as the test set is: `probed`) measured."""
        row = {"epoch": epoch, "lr": lr, "train_loss": trained.loss, "train_acc": trained.accuracy,
               "seconds": trained.seconds, "images_per_s": trained.images_per_second}
        if probed is not None:
            row.update(train_eval_loss=probed.loss, train_eval_acc=probed.accuracy)
        if val is not None:
            row.update(val_loss=val.loss, val_acc=val.accuracy)
        if tested is not None:
            row.update(test_loss=tested.loss, test_acc=tested.accuracy)
        self.rows.append(row)
        return row

    def last(self, column: str, n: int = 1) -> list[float]:
        return self[column][-n:]

    def best(self, column: str, mode: str = "max") -> tuple[int, float]:
        """(epoch, value) of the best value of `column`, among the epochs that measured it."""
        measured = [(row["epoch"], row[column]) for row in self.rows if row.get(column) is not None]
        if not measured:
            raise ValueError(f"no epoch of this history measured {column!r}")
        return (max if mode == "max" else min)(measured, key=lambda epoch_value: epoch_value[1])

    @property
    def seconds(self) -> float:
        return float(sum(self["seconds"]))

    @property
    def images_per_second(self) -> float:
        """Training images per second over the whole run: every epoch's images over every epoch's seconds."""
        if not self.rows:
            raise ValueError("no epoch trained yet: no speed to give")
        return sum(row["images_per_s"] * row["seconds"] for row in self.rows) / self.seconds

    @property
    def train_accuracy_column(self) -> str:
        """The training accuracy a train − test gap reads: 'train_eval_acc' where the run scored training images
        after every epoch as it scores the test set (eval mode, no augmentation: the recipe's `train_probe`), else
        'train_acc', measured during each epoch on the batches learned from, while the weights move (and with
        dropout and augmentation, if any, making those batches harder)."""
        has_probe = bool(self.rows) and all(PROBED in row for row in self.rows)
        return PROBED if has_probe else "train_acc"


# What a progress bar and a training log say of an epoch: (column, its words, its format)
ROW_SHOWN = (("train_loss", "train loss", "{:.4f}"), ("train_acc", "train", "{:.2f}%"),
             ("train_eval_acc", "train scored as test", "{:.2f}%"),  # the probe: eval mode, no augmentation
             ("val_acc", "val", "{:.2f}%"), ("test_acc", "test", "{:.2f}%"))


def row_summary(row: dict[str, float]) -> str:
    """The numbers of an epoch a progress bar shows: 'train loss 0.4252, train 88.08%, ..., test 98.73%'."""
    return ", ".join(f"{words} {form.format(row[column])}" for column, words, form in ROW_SHOWN
                     if row.get(column) is not None)


def monitor_mode(monitor: str) -> str:
    """'max' for a history column that is better higher (an accuracy: '..._acc'), else 'min' (a loss): the
    direction early stopping and a plateau schedule watch it in."""
    return "max" if monitor.endswith("acc") else "min"


class EarlyStopping:
    """Watches one column of the history (e.g. 'val_loss', 'val_acc'): `update` says whether this epoch
    is the best so far, `should_stop` whether `patience` epochs have passed without one. Epochs before
    `monitor_from` count neither way: during a learning-rate warm-up the validation loss may rise first."""

    def __init__(self, monitor: str = "val_loss", patience: int | None = None, monitor_from: int = 1):
        self.monitor, self.patience, self.monitor_from = monitor, patience, monitor_from
        self.maximise = monitor_mode(monitor) == "max"
        self.best: float | None = None
        self.stale = 0

    def update(self, row: dict[str, float]) -> bool:
        if self.monitor not in row or row["epoch"] < self.monitor_from:
            return False
        value = row[self.monitor]
        improved = self.best is None or (value > self.best if self.maximise else value < self.best)
        if improved:
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience


# ---------------------------------------------------------------------------- fit: the epoch loop


def _check_monitor(monitor: str, plateau: Any, watched: bool, has_val: bool, has_test: bool) -> None:
    """Refuse a `fit` whose `monitor` cannot be read or is read the wrong way: a validation column `watched` (by
    patience, keep_best or a plateau schedule) without validation batches, a `plateau` schedule whose mode is not
    the column's, a test column without test batches."""
    if watched and monitor.startswith("val_") and not has_val:
        raise ValueError(f"monitoring {monitor!r} (patience, keep_best or a plateau schedule) needs val_batches")
    if plateau is not None and plateau.mode != monitor_mode(monitor):
        raise ValueError(f"the plateau schedule watches {monitor!r} in mode {plateau.mode!r}, but {monitor!r} is "
                         f"better {'higher' if monitor_mode(monitor) == 'max' else 'lower'}: make it with "
                         f"mode={monitor_mode(monitor)!r} (Recipe.make_scheduler does)")
    if monitor.startswith("test_") and not has_test:
        raise ValueError(f"monitoring {monitor!r} needs test_batches")


def fit(model: nn.Module, train_batches: Iterable, test_batches: Iterable | None, optimizer: torch.optim.Optimizer,
        device: torch.device, *, epochs: int, scheduler: Any = None, loss_fn: Callable = F.cross_entropy,
        val_batches: Iterable | None = None, probe_batches: Iterable | None = None, patience: int | None = None,
        monitor: str = "val_loss", keep_best: bool = False, monitor_from: int = 1, progress: str | None = "batches",
        desc: str = "", on_epoch: Callable[[dict[str, float], bool], None] | None = None,
        ema: float | None = None) -> History:
    """Train for up to `epochs` epochs and return the history.

    Schedulers are stepped where they belong: OneCycleLR/CyclicLR per batch, ReduceLROnPlateau per epoch
    on the monitored metric, others per epoch. With `patience`, training stops once `monitor`
    (e.g. 'val_loss', 'val_acc') has not improved for that many epochs; with `keep_best`, the model ends
    with the weights of its best epoch. Epochs before `monitor_from` are neither best nor counted against
    patience. `probe_batches` (training images, unaugmented) are scored after each epoch the way the test set
    is, for the train − test gap. `on_epoch(row, improved)` is called after each epoch (e.g. to save a checkpoint).
    `progress`: 'batches' (a bar per epoch), 'epochs' (one bar for the run) or None. With `ema` (a decay), the
    weights scored, kept and given back are a `WeightAverage` of the trained ones; `on_epoch` sees them in `model`.
    """
    if progress not in ("batches", "epochs", None):
        raise ValueError(f"progress: 'batches', 'epochs' or None, got {progress!r}")
    if any(batches is not None for batches in (test_batches, val_batches, probe_batches)):
        check_loss_fn(loss_fn)  # before an epoch is spent: `test` would refuse it only after one
    step_kind = scheduler_step_kind(scheduler)
    watched = patience is not None or keep_best or step_kind == "plateau"  # what reads `monitor`
    _check_monitor(monitor, scheduler if step_kind == "plateau" else None, watched, val_batches is not None,
                   test_batches is not None)
    history, stopping, best_state = History(), EarlyStopping(monitor, patience, monitor_from), None
    averaged = None if ema is None else WeightAverage(model, ema)
    scored = model if averaged is None else averaged.model  # the weights tested, kept and given back
    run_bar = progress_bar(total=epochs, desc=desc or "epochs", unit="epoch") if progress == "epochs" else None

    bar = None  # closed however the run ends: a failed epoch, Ctrl-C, an error raised by on_epoch
    try:
        for epoch in range(1, epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            if progress == "batches":
                bar = progress_bar(total=len(train_batches), desc=f"{desc} epoch {epoch}/{epochs}".strip(),
                                   unit="batch")
            trained = train(model, train_batches, optimizer, device,
                            scheduler=scheduler if step_kind == "batch" else None, loss_fn=loss_fn, bar=bar,
                            averaged=averaged)
            val = None if val_batches is None else test(scored, val_batches, device, loss_fn=loss_fn)
            tested = None if test_batches is None else test(scored, test_batches, device, loss_fn=loss_fn)
            probed = None if probe_batches is None else test(scored, probe_batches, device, loss_fn=loss_fn)
            row = history.record(epoch, lr, trained, val=val, tested=tested, probed=probed)

            if step_kind == "epoch":
                scheduler.step()
            elif step_kind == "plateau":
                scheduler.step(row[monitor])
            for shown in (bar, run_bar):
                if shown is not None:
                    shown.set_postfix_str(row_summary(row))
            if bar is not None:
                bar.close()
            if run_bar is not None:
                run_bar.update(1)

            improved = stopping.update(row)
            if improved and keep_best:
                best_state = copy.deepcopy(scored.state_dict())
            if on_epoch is not None:
                with holding(model, scored):
                    on_epoch(row, improved)
            if stopping.should_stop:
                break
    finally:
        for shown in (bar, run_bar):
            if shown is not None:
                shown.close()
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    elif averaged is not None:
        model.load_state_dict(averaged.model.state_dict())
    if averaged is not None:
        model.eval()  # as the last test leaves a model tested itself
    return history
