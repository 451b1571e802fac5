"""What a recipe names its optimizer, learning-rate schedule and loss by, and the objects each name makes; and when
`fit` steps a schedule (after every batch, every epoch, or on the monitored metric)."""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("onecycle", "step", "plateau", "none")


def make_optimizer(name: str, params: Iterable, lr: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0, fused: bool | None = None) -> torch.optim.Optimizer:
    """'sgd' (with momentum: Nesterov's), 'adam' or 'adamw'; `fused` picks Adam's one-kernel update."""
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)
    raise ValueError(f"Unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}.")


class OneCycleThenHold(torch.optim.lr_scheduler.OneCycleLR):
    """OneCycleLR over its `total_steps`, then holding the final learning rate (and momentum) for every
    step after: a run can anneal over its first epochs and train on at the lowest rate to the end."""

    def step(self, epoch: int | None = None) -> None:
        if self.last_epoch < self.total_steps - 1:
            super().step(epoch)


# One-cycle moves the momentum (Adam's first beta) against the rate, from the high value down to the low one
# while the rate warms up and back while it anneals, in place of the optimizer's own (Smith, 2018; these are
# OneCycleLR's defaults).
ONE_CYCLE_MOMENTUM = (0.85, 0.95)
STEP_DECAY = (5, 0.1)  # 'step': (every how many epochs, × what)
PLATEAU_DECAY = (2, 0.5)  # 'plateau': (more than how many epochs without improvement, × what)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, *, epochs: int = 1, steps_per_epoch: int = 1,
                   max_lr: float | None = None, pct_start: float = 0.25, div_factor: float = 25.0,
                   final_div_factor: float = 1e4, anneal_epochs: int | None = None,
                   step_size: int = STEP_DECAY[0], gamma: float = STEP_DECAY[1], patience: int = PLATEAU_DECAY[0],
                   factor: float = PLATEAU_DECAY[1], mode: str = "min") -> Any:
    """'onecycle' (per batch: from max_lr/div_factor up to `max_lr` over the first `pct_start` of the
    cycle, then down to max_lr/div_factor/final_div_factor; with `anneal_epochs`, the cycle lasts that
    many epochs and the final rate holds after it), 'step' (×`gamma` every `step_size` epochs),
    'plateau' (×`factor` once more than `patience` epochs pass without improvement of the number it is stepped
    with: lower for `mode` 'min', a loss; higher for 'max', an accuracy) or 'none' (returns None)."""
    name = name.lower()
    if name == "onecycle":
        low, high = ONE_CYCLE_MOMENTUM
        settings = dict(max_lr=max_lr or optimizer.param_groups[0]["lr"], pct_start=pct_start,
                        div_factor=div_factor, final_div_factor=final_div_factor,
                        base_momentum=low, max_momentum=high)
        if anneal_epochs is None:
            return torch.optim.lr_scheduler.OneCycleLR(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                                       **settings)
        # + 1: the cycle's last step, at the final rate, is taken at the end of its last epoch
        return OneCycleThenHold(optimizer, total_steps=anneal_epochs * steps_per_epoch + 1, **settings)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
    if name == "none":
        return None
    raise ValueError(f"Unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}.")


def one_cycle(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, pct_start: float = 0.25,
              **settings: Any) -> Any:
    """`make_scheduler('onecycle', ...)` for a cycle over `anneal_epochs` (default: all `epochs`) × `steps_per_epoch`
    steps, its warm-up at least 2 steps (the peak is the second); None for a cycle of fewer than 3 steps
    (smoke-sized), which has no room for a step up and a step down: the rate stays constant. `settings`:
    make_scheduler's (max_lr, anneal_epochs, ...)."""
    run, anneal_epochs = epochs * steps_per_epoch, settings.get("anneal_epochs")
    # the cycle's steps, as make_scheduler counts them
    steps = run if anneal_epochs is None else anneal_epochs * steps_per_epoch + 1
    if min(run, steps) < 3:  # the run's too: a smoke run's schedule is none, with anneal_epochs or without
        return None
    return make_scheduler("onecycle", optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch,
                          pct_start=max(pct_start, 2 / steps), **settings)


def make_loss(label_smoothing: float = 0.0) -> Callable[..., torch.Tensor]:
    """Cross-entropy on raw logits, `loss(logits, labels)` as `train` calls it (`test` adds reduction="sum"), with
    optional label smoothing: the target puts 1 - ε + ε/10 on the true digit and ε/10 on each other one."""
    if not label_smoothing:
        return F.cross_entropy
    return functools.partial(F.cross_entropy, label_smoothing=label_smoothing)


PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def scheduler_step_kind(scheduler: Any) -> str | None:
    """When a scheduler steps: after every 'batch', every 'epoch', or on the monitored metric ('plateau')."""
    if scheduler is None:
        return None
    if isinstance(scheduler, PER_BATCH_SCHEDULERS):
        return "batch"
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return "plateau"
    return "epoch"
