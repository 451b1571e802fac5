"""An experiment is a small YAML file in `configs/`; `load_config` turns it into a validated `Recipe`.

A recipe says everything about how one model is trained: which architecture (a class of `models.py`,
or a pretrained backbone) with which arguments, the seeds, the data split, the batches and their
augmentation, the optimizer and its schedule, early stopping. The notebooks and the command line
(`python -m mnist_utils train --config ...`) read the same files, so what a notebook shows is what the
command line runs. `config_files.py` reads a file, the files it builds on (`base: other.yaml`) and the command
line's `--set key=value` into keys; this module checks them and builds what they name.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NoReturn

import torch
import torch.nn as nn

import models

from .augment import Augment
from .batches import Batches, ShortEpochs
from .config import counted, first_line
from .config_values import (BUILD_ERRORS, ConfigError, convert, misspelt, name_problem, raise_own_fault, seed_problem,
                            unknown_keys)
from .config_files import config_path, read_config
from .data import MNIST_MEAN, MNIST_STD, ImageSet, train_val_split
from .engine import monitor_mode
from .optim import (ONE_CYCLE_MOMENTUM, OPTIMIZERS, PLATEAU_DECAY, SCHEDULERS, STEP_DECAY, make_loss, make_optimizer,
                    make_scheduler, one_cycle)
from .precision import in_precision, precision_for
from .pretrained import FAMILIES, INPUT_NORMALIZATION, pretrained_for_mnist, resnet18_weights_available

PRETRAINED = "pretrained"  # model name for an ImageNet backbone; model_args.family picks which
PRETRAINED_ARGS = ("family", "pretrained")  # its model_args: which backbone, and whether with ImageNet's weights
MONITORS = ("val_loss", "val_acc")
MOST_THREADS = 1024  # a sanity cap, beyond any machine's cores (torch overflows only past 2**31)
LARGEST_IMAGE = 1024  # pixels per side: the pretrained backbones take 32 to 224
ONE_BY_ONE_UP_TO = 32  # pixels per side up to which both backbones' last features are 1×1 (measured)
warnings.filterwarnings("ignore", "Initializing zero-element tensors", UserWarning)  # build_model's error says it


def _not_plain(value: Any) -> str | None:
    """The first part of `value` that JSON cannot hold as it is (a set, a date, a key that is not text), shown as
    Python shows it; None where there is none."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    if isinstance(value, (list, tuple)):
        return next((part for part in map(_not_plain, value) if part is not None), None)
    if isinstance(value, dict):
        keys = [repr(key) for key in value if not isinstance(key, str)]
        return keys[0] if keys else _not_plain(list(value.values()))
    return repr(value)


@dataclass(frozen=True)
class Recipe:
    """How one model is trained: everything a config file can set, with its default."""

    # what is trained
    name: str = ""  # the config file's stem
    title: str = ""  # one line on what the experiment shows
    model: str = "Model_1"  # a class of models.py, or 'pretrained'
    model_args: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (1,)  # each fixes the initialisation, the data order, the augmentation (and the split)
    # the data
    val_fraction: float = 0.0  # share of the training set held out for validation, drawn with the run's seed ...
    split_seed: int | None = None  # ... or this one: then the models of every seed validate on the same images
    train_fraction: float = 1.0  # share of the whole training set trained on, from what the validation split leaves
    batch_size: int = 128
    batches_per_epoch: int | None = None  # short epochs: an epoch is this many batches of an endless stream
    drop_last: bool = False
    augment: Augment = field(default_factory=Augment)
    clean_epochs: int = 0  # the last epochs train on the digits as they are, without augmentation
    image_size: int | None = None  # resize the 28×28 digits (pretrained backbones want more pixels)
    eval_batch_size: int = 250  # on a CPU, 2× faster than 1,000 for most of these models: activations stay in cache
    train_probe: int = 0  # training images scored after each epoch as the test set is, for the train − test gap
    # the optimisation
    epochs: int = 15
    optimizer: str = "sgd"  # sgd (Nesterov momentum), adam or adamw
    lr: float = 0.05  # the peak rate with a one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0  # ε: the target puts ε/10 on each wrong digit (see optim.make_loss)
    ema: float | None = None  # test and keep an average of the weights over the steps, with this decay per step
    fused: bool | None = None  # Adam's single-kernel update
    scheduler: str = "none"  # none, onecycle, step or plateau
    pct_start: float = 0.25  # one-cycle: share of the cycle spent warming up
    div_factor: float = 25.0  # one-cycle: starts at lr / div_factor
    final_div_factor: float = 1e4  # one-cycle: ends at lr / div_factor / final_div_factor
    anneal_epochs: int | None = None  # one-cycle: cycle length in epochs, the final rate held after it
    # early stopping, on the validation split
    patience: int | None = None  # stop after this many epochs without improvement (None: never)
    monitor: str = "val_loss"
    keep_best: bool = False  # end with the weights of the best validation epoch
    # the head of a pretrained backbone alone, on features computed once
    freeze_backbone: bool = False
    channels_last: bool = True  # measured faster for these convolutions on CPU
    bf16: bool = False  # compute (train and evaluate) under bfloat16 autocast where the device has it natively
    threads: int | None = None  # CPU threads to compute on (None: torch's default, one per core); see use_threads

    def __post_init__(self) -> None:
        problems = []
        if self.model != PRETRAINED and self.model not in model_names():
            problems.append(f"model: unknown {self.model!r}; choose one of {', '.join(model_names())}, or "
                            f"'{PRETRAINED}'{misspelt([self.model], [*model_names(), PRETRAINED])}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer: unknown {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler: unknown {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        if self.monitor not in MONITORS:
            problems.append(f"monitor: unknown {self.monitor!r}; choose one of {', '.join(MONITORS)}")
        if self.split_seed is not None and not self.val_fraction:
            problems.append("split_seed draws the validation split: set val_fraction too, or leave split_seed out")
        if self.train_probe < 0:
            problems.append(f"train_probe: a number of training images, 0 for none, got {self.train_probe}")
        for key in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, key) < 1:
                problems.append(f"{key}: must be at least 1, got {getattr(self, key)}")
        if not self.seeds:
            problems.append("seeds: give at least one seed")
        for key, seed in [*(("seeds", seed) for seed in self.seeds), ("split_seed", self.split_seed or 0)]:
            if problem := seed_problem(seed):
                problems.append(f"{key}: {problem}")
        if not 0 <= self.val_fraction < 1 or not 0 < self.train_fraction <= 1:
            problems.append(f"val_fraction must be in [0, 1) and train_fraction in (0, 1], got "
                            f"{self.val_fraction} and {self.train_fraction}")
        elif self.train_fraction < 1 and self.val_fraction + self.train_fraction > 1:  # both shares of the whole set
            problems.append(f"train_fraction {self.train_fraction:g} and val_fraction {self.val_fraction:g} add up "
                            "to more than the whole training set: lower one")
        if (batches := self.batches_per_epoch) is not None and batches < 1:
            problems.append(f"batches_per_epoch: must be at least 1 (or left out: whole passes), got {batches}")
        if self.epochs >= 1:  # else said above: what is measured against epochs would only repeat it
            if self.anneal_epochs is not None and not 1 <= self.anneal_epochs <= self.epochs:
                problems.append(f"anneal_epochs: the cycle must fit the run, 1 to epochs = {self.epochs}, got "
                                f"{self.anneal_epochs} (changing epochs? set anneal_epochs too)")
            if not 0 <= self.clean_epochs < self.epochs:
                problems.append(f"clean_epochs: must be between 0 and epochs - 1 = {self.epochs - 1}, got "
                                f"{self.clean_epochs}")
        if self.clean_epochs and self.batches_per_epoch:
            problems.append("clean_epochs counts whole passes: it cannot be combined with batches_per_epoch")
        if self.model == PRETRAINED and (other := [key for key in self.model_args if key not in PRETRAINED_ARGS]):
            size = " (its input size is the recipe's image_size)" if "image_size" in other else ""
            problems.append(f"model_args: a pretrained backbone takes {' and '.join(PRETRAINED_ARGS)}, not "
                            f"{', '.join(map(str, other))}{size}{misspelt(map(str, other), PRETRAINED_ARGS)}")
        if self.freeze_backbone and self.model != PRETRAINED:
            problems.append(f"freeze_backbone: only model: {PRETRAINED} has a backbone to freeze, not {self.model}")
        if (self.patience is not None or self.keep_best or self.scheduler == "plateau") and not self.val_fraction:
            problems.append("patience, keep_best and a plateau schedule watch the validation split: set val_fraction")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing: must be in [0, 1), got {self.label_smoothing}")
        if (ema := self.ema) is not None and not 0 < ema < 1:
            problems.append(f"ema: a decay per step in (0, 1), 0.995 averaging about the last 200 steps, got {ema}")
        if self.threads is not None and not 1 <= self.threads <= MOST_THREADS:
            problems.append(f"threads: from 1 to {MOST_THREADS:,} (or left out: one per core), got {self.threads}")
        if self.image_size is not None and not 1 <= self.image_size <= LARGEST_IMAGE:
            problems.append(f"image_size: pixels per side, from 1 to {LARGEST_IMAGE:,} (the digits have 28), got "
                            f"{self.image_size}")
        if self.patience is not None and self.patience < 1:
            problems.append(f"patience: epochs without improvement before stopping, at least 1 (or left out: never "
                            f"stop early), got {self.patience}")
        if not 0 < self.lr < math.inf:  # also refuses nan
            problems.append(f"lr: must be above 0 and finite, got {self.lr}")
        if not 0 <= self.momentum < 1 or not 0 <= self.weight_decay < math.inf:
            problems.append(f"momentum must be in [0, 1) and weight_decay at least 0 and finite, got {self.momentum} "
                            f"and {self.weight_decay}")
        if (value := _not_plain(self.model_args)) is not None:  # a checkpoint records them as JSON, to rebuild from
            problems.append(f"model_args: numbers, text, true/false, null and lists or mappings of them, got "
                            f"{value}")
        if not 0 < self.pct_start < 1 or not self.div_factor >= 1 or not self.final_div_factor >= 1:
            problems.append(f"pct_start must be in (0, 1), div_factor and final_div_factor at least 1, got "
                            f"{self.pct_start}, {self.div_factor} and {self.final_div_factor}")
        problems += [f"augment.{problem}" for problem in self.augment.problems()]
        self._refuse(problems)

    def _refuse(self, problems: list[str]) -> None:
        """Raise one ConfigError naming the recipe and every one of `problems`; nothing where there are none."""
        if problems:
            raise ConfigError(f"{self.name or 'recipe'}: " + "; ".join(problems))

    # ------------------------------------------------------------------ reading it

    def describe(self) -> str:
        """The recipe in one sentence."""
        if self.scheduler == "onecycle":
            cycle = self.anneal_epochs or self.epochs
            start, end = self.lr / self.div_factor, self.lr / self.div_factor / self.final_div_factor
            schedule = (f"one-cycle learning rate over {counted(cycle, 'epoch')} ({start:g} → {self.lr:g} "
                        f"in the first {self.pct_start * 100:g}%, then → {end:g})")
        else:
            schedule = {"none": "constant learning rate",
                        "step": f"learning rate ×{STEP_DECAY[1]:g} every {counted(STEP_DECAY[0], 'epoch')}",
                        "plateau": f"learning rate ×{PLATEAU_DECAY[1]:g} once more than {PLATEAU_DECAY[0]} epochs "
                                   f"pass without a better {self.monitor}"}[self.scheduler]
        low, high = ONE_CYCLE_MOMENTUM  # one-cycle's momentum replaces the config's `momentum`: say what runs
        cycled = f"{high:g} → {low:g} → {high:g} (cycled against the rate)" if self.scheduler == "onecycle" else None
        if self.optimizer == "sgd":
            optimizer = f"SGD lr {self.lr:g}, Nesterov momentum {cycled or f'{self.momentum:g}'}"
        else:
            optimizer = f"{self.optimizer} lr {self.lr:g}" + (f", β1 {cycled}" if cycled else "")
        extras = [f"weight decay {self.weight_decay:g}" if self.weight_decay else None,
                  f"label smoothing {self.label_smoothing:g}" if self.label_smoothing else None,
                  f"its weights averaged over the steps (EMA, decay {self.ema:g})" if self.ema else None]
        optimizer = ", ".join([optimizer, *filter(None, extras)])
        clean = "the last epoch" if self.clean_epochs == 1 else f"the last {self.clean_epochs} epochs"
        without = f" ({clean} without)" if self.clean_epochs and self.augment.enabled else ""
        augmentation = self.augment.describe() + without
        epochs = counted(self.epochs, "short epoch" if self.batches_per_epoch else "epoch")
        if (trained := min(self.train_fraction, 1 - self.val_fraction)) < 1:  # the shares of `split_sizes`
            held = f" ({self.val_fraction * 100:.3g}% held out for validation)" if self.val_fraction else ""
            epochs += f" on {trained * 100:.3g}% of the training images{held}"
        bf16 = ", bfloat16 arithmetic where the device has it" if self.bf16 else ""
        return f"{epochs}, batches of {self.batch_size}, {optimizer}, {schedule}, augmentation: {augmentation}{bf16}"

    def precision(self, device: torch.device) -> str:
        """'bfloat16' where it asks (bf16: true) and `device` has it natively, else 'float32' (a fixed rule)."""
        return precision_for(self.bf16, device)

    def computing(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` as this recipe computes with it, in training and every evaluation: bf16 autocast if it says so."""
        return in_precision(model, self.precision(device), device)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a config file would write it (what a results file and a checkpoint record)."""
        values = dataclasses.asdict(self) | {"seeds": list(self.seeds)}
        values["augment"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in dataclasses.asdict(self.augment).items() if v != getattr(Augment(), k)}
        return values

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def input_size(self) -> int:
        """Pixels per side of the images the model takes: `image_size`, or the digits' own 28."""
        return self.image_size or models.IMAGE_SIZE

    # ------------------------------------------------------------------ changing it

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def with_epochs(self, epochs: int) -> "Recipe":
        """The same recipe, cut to `epochs` (the smoke profile); a one-cycle schedule is cut with it, and
        the first epoch at least stays augmented."""
        anneal = None if self.anneal_epochs is None else min(self.anneal_epochs, epochs)
        return self.replace(epochs=epochs, anneal_epochs=anneal,
                            clean_epochs=min(self.clean_epochs, max(epochs - 1, 0)))

    def for_profile(self, profile: Any) -> "Recipe":
        """The recipe as `profile` runs it: the smoke profile cuts epochs, seeds and short epochs."""
        if not profile.is_smoke:
            return self
        short = None if self.batches_per_epoch is None else min(self.batches_per_epoch, 3)
        return self.with_epochs(profile.epochs(self.epochs)).replace(
            seeds=self.seeds[:profile.seeds], batches_per_epoch=short)

    # ------------------------------------------------------------------ what it builds

    def split(self, images: ImageSet, seed: int) -> tuple[ImageSet, ImageSet | None]:
        """(training images, validation images or None): a hold-out drawn with the recipe's `split_seed`, or
        with `seed` where it sets none, then the share of the training set trained on."""
        trained, held_out = self.split_sizes(len(images))
        validation = None
        if self.val_fraction:  # drawn with split_seed, or with `seed` where it sets none
            images, validation = train_val_split(images, held_out, seed if self.split_seed is None else self.split_seed)
        if self.train_fraction < 1:
            images = images.head(trained)
        return images, validation

    def split_sizes(self, images: int) -> tuple[int, int]:
        """(training, validation) image counts `split` makes of `images`: both shares are of the whole set."""
        held_out = int(images * self.val_fraction)  # training takes the first of those the hold-out leaves
        return min(images - held_out, int(images * self.train_fraction)), held_out

    def check_data(self, images: int) -> None:
        """Refuse (ConfigError) a recipe whose split and batches `images` training images cannot make: checked
        before a run makes anything, where the profile's data are known."""
        trained, held_out = self.split_sizes(images)
        leaves_one = self.batch_size == 1 or (not self.drop_last and trained % self.batch_size == 1)
        problems = []
        if self.val_fraction and held_out < 1:
            problems.append(f"val_fraction {self.val_fraction:g} of {images:,} training images holds out none: "
                            "raise it")
        if trained < 1:
            problems.append(f"train_fraction {self.train_fraction:g} of {images:,} training images leaves none to "
                            "train on: raise it")
        elif self.drop_last and trained < self.batch_size:
            problems.append(f"{trained:,} training images make no whole batch of {self.batch_size}, and drop_last "
                            "drops the rest: lower batch_size, or set drop_last: false")
        elif leaves_one and self._trains_one_by_one_backbone:
            size = self.input_size
            problems.append(f"{trained:,} training images in batches of {self.batch_size} make a batch of 1 image, "
                            f"which a backbone's BatchNorm cannot normalise on {size}×{size} digits (its last "
                            f"features are 1×1): choose another batch_size, set drop_last: true, or an image_size "
                            f"above {ONE_BY_ONE_UP_TO}")
        self._refuse(problems)

    @property
    def _trains_one_by_one_backbone(self) -> bool:
        """Whether it trains a whole pretrained backbone (not frozen) on images so small that its last features are
        1×1, where BatchNorm cannot normalise a batch of one image."""
        return self.model == PRETRAINED and not self.freeze_backbone and self.input_size <= ONE_BY_ONE_UP_TO

    def train_batches(self, images: ImageSet, device: torch.device, seed: int, **inputs: Any) -> Iterable:
        """Shuffled, augmented training batches: `seed` fixes the order and the augmentation; with `batches_per_epoch`,
        short epochs. Here as in the other batches, normalised as the model expects unless `inputs` (mean, std) say."""
        passes = self.epochs - self.clean_epochs if self.clean_epochs else None
        batches = Batches(images, self.batch_size, device=device, shuffle=True, seed=seed, augment=self.augment,
                          drop_last=self.drop_last, channels_last=self.channels_last, augment_passes=passes,
                          size=self.image_size, **(inputs or input_normalization(self)))
        return batches if self.batches_per_epoch is None else ShortEpochs(batches, self.batches_per_epoch)

    def eval_batches(self, images: ImageSet, device: torch.device, copies: int = 1, **inputs: Any) -> Batches:
        """Batches in a fixed order, for validation, testing and predictions; 1/`copies` as large for packed models."""
        return Batches(images, max(1, self.eval_batch_size // copies), device=device, channels_last=self.channels_last,
                       size=self.image_size, **(inputs or input_normalization(self)))

    def probe_batches(self, images: ImageSet, device: torch.device, copies: int = 1, **inputs: Any) -> Batches | None:
        """The first `train_probe` of the training `images`, as evaluation batches (eval mode, no augmentation):
        scored after each epoch like the test set, they measure how well the model fits what it learns from,
        which the accuracy during an epoch, taken with dropout and augmentation on, understates. None: no probe."""
        return self.eval_batches(images.head(self.train_probe), device, copies, **inputs) if self.train_probe else None

    def make_optimizer(self, params: Iterable) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer, params, self.lr, momentum=self.momentum,
                              weight_decay=self.weight_decay, fused=self.fused)

    @property
    def loss_fn(self) -> Callable[..., torch.Tensor]:
        """The loss it trains on, and validates on (so early stopping watches what training lowers)."""
        return make_loss(self.label_smoothing)

    @property
    def loss_floor(self) -> float:
        """The lowest loss `loss_fn` can give, the entropy of its targets: 0, or with label smoothing ε that of
        1 - ε + ε/10 on the true digit and ε/10 on each other one (0.500 at ε = 0.1)."""
        right, wrong = 1 - self.label_smoothing * 9 / 10, self.label_smoothing / 10
        return sum(-p * math.log(p) for p in (right, *[wrong] * 9) if p)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        """The schedule the recipe names (None for 'none'). A one-cycle is `one_cycle`'s (none under 3 steps, a warm-up
        of at least 2); a plateau schedule waits for the monitored number to fall (a loss) or rise (an accuracy)."""
        settings = dict(epochs=self.epochs, steps_per_epoch=steps_per_epoch, max_lr=self.lr, pct_start=self.pct_start,
                        div_factor=self.div_factor, final_div_factor=self.final_div_factor,
                        anneal_epochs=self.anneal_epochs)
        if self.scheduler == "onecycle":
            return one_cycle(optimizer, **settings)
        return make_scheduler(self.scheduler, optimizer, **settings, mode=monitor_mode(self.monitor))

    @property
    def monitor_from(self) -> int:
        """The first epoch early stopping watches: after the one-cycle warm-up, as the validation loss may rise."""
        warm_up = math.ceil(self.pct_start * (self.anneal_epochs or self.epochs))  # the epochs it reaches into
        return warm_up + 1 if self.scheduler == "onecycle" else 1


# ---------------------------------------------------------------------------- models by name


def model_names() -> list[str]:
    """The whole networks of models.py, in order: its nn.Module classes that build without arguments, not blocks."""
    return [name for name, value in vars(models).items()
            if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == models.__name__
            and all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                    for p in inspect.signature(value).parameters.values())]


def pretrained_family(recipe: Recipe) -> str:
    """The backbone a 'pretrained' recipe uses: its `family`, or with 'auto' ResNet-18 where its ImageNet
    weights can be had and EfficientNet-Lite0 (whose weights ship as a package) elsewhere."""
    family = recipe.model_args.get("family", "auto")
    if family == "auto":
        return "resnet18" if resnet18_weights_available() else "efficientnet-lite0"
    if family not in FAMILIES:
        raise ConfigError(f"model_args.family: unknown {family!r}; choose one of auto, {', '.join(FAMILIES)}")
    return family


def build_pretrained(recipe: Recipe, **changes: Any):
    """The pretrained backbone a 'pretrained' recipe names, adapted to MNIST at the recipe's image size
    (a `PretrainedNet`: the module, its input normalisation and where its weights came from); `changes` are the
    caller's, over the recipe's model_args."""
    defaults = {"pretrained": True, "image_size": recipe.input_size}
    given = {k: v for k, v in recipe.model_args.items() if k != "family"}
    family = pretrained_family(recipe)
    try:
        return pretrained_for_mnist(family, **(defaults | given | changes))
    except BUILD_ERRORS as error:  # a value it cannot use (Recipe refuses any key but PRETRAINED_ARGS)
        raise_own_fault(lambda: pretrained_for_mnist(family, **(defaults | changes)))  # without the model_args
        raise ConfigError(f"{recipe.name}: model_args {recipe.model_args} do not fit a pretrained backbone (it takes "
                          f"family: auto, {', '.join(FAMILIES)}; pretrained: true or false): {error}") from None


def build_model(recipe: Recipe) -> nn.Module:
    """A freshly initialised model (from the global torch seed: call `seed_everything` first)."""
    if recipe.model == PRETRAINED:
        return build_pretrained(recipe).model
    model, size = getattr(models, recipe.model), recipe.input_size
    try:
        built = model(**recipe.model_args)
    except BUILD_ERRORS as error:  # an unknown argument; a wrong type or count
        _refuse_model_args(recipe, error, ". Give it the model_args it takes (model_args={} for its defaults)")
    try:  # a blank batch, in eval mode (nothing drawn or changed): widths of 0, say, build but fail there
        with torch.no_grad():
            built.eval()(torch.zeros(2, 1, size, size))
        return built.train()
    except BUILD_ERRORS as error:  # an image_size it cannot take, or model_args that fail on it
        _refuse_model_args(recipe, error, ". Give it model_args and an image_size that fit")


def _refuse_model_args(recipe: Recipe, error: Exception, advice: str) -> NoReturn:
    """Refuse `recipe`'s model_args for `error`: a ConfigError ending in the argument a misspelt one likely stands
    for, else in `advice`; or, where the model fails on its own defaults too, that fault of its code."""
    model, size = getattr(models, recipe.model), recipe.input_size
    raise_own_fault(lambda: model().eval()(torch.zeros(2, 1, models.IMAGE_SIZE, models.IMAGE_SIZE)))
    signature = inspect.signature(model)
    fix = misspelt(recipe.model_args, signature.parameters) or advice
    raise ConfigError(f"{recipe.name}: model_args {recipe.model_args} do not fit {recipe.model} on {size}×{size} "
                      f"digits (it takes {recipe.model}{signature}): "
                      f"{(first_line(error) or type(error).__name__).rstrip('.')}{fix}") from None


def input_normalization(recipe: Recipe) -> dict[str, float]:
    """The mean and standard deviation the model's inputs are normalised with: MNIST's, or the pretrained
    family's (a table: no network is built, no random number drawn)."""
    family = recipe.model == PRETRAINED and pretrained_family(recipe)
    mean, std = INPUT_NORMALIZATION[family] if family else (MNIST_MEAN, MNIST_STD)
    return {"mean": mean, "std": std}


# ---------------------------------------------------------------------------- a config's keys → a Recipe


_FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}
_AUGMENT_FIELDS = {f.name: f for f in dataclasses.fields(Augment)}
# names a newcomer reaches for, and the key that does it (the close misspellings difflib finds by itself)
_SYNONYMS = {"learning_rate": "lr", "max_lr": "lr", "architecture": "model", "dropout": "model_args.dropout"}
_AUGMENT_SYNONYMS = {"shift": "translate", "zoom": "scale", "erasing": "erase_p"}


def recipe_from_dict(values: dict[str, Any], name: str = "") -> Recipe:
    """A validated recipe from a config's keys; unknown keys and wrong types are errors naming the key."""
    _refuse_unknown_keys(f"{name or 'config'}: ", values, _FIELDS, _SYNONYMS)
    settings = {"name": name}
    for key, value in values.items():
        if key == "augment":
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: augment: expected keys such as rotation, translate; got {value!r}")
            _refuse_unknown_keys(f"{name}: augment: ", value, _AUGMENT_FIELDS, _AUGMENT_SYNONYMS)
            settings[key] = Augment(**{k: convert(f"{name}: augment.{k}", v, _AUGMENT_FIELDS[k].type)
                                       for k, v in value.items()})
        else:
            settings[key] = convert(f"{name}: {key}", value, _FIELDS[key].type)
    if "name" in values and (problem := name_problem(settings["name"])):
        raise ConfigError(f"{name}: name: {problem}")
    return Recipe(**settings)


def _refuse_unknown_keys(where: str, values: dict, known: dict[str, Any], synonyms: dict[str, str]) -> None:
    """Refuse (ConfigError) the keys of `values` that are not `known`, sorted, each with the key it likely means;
    nothing where every key is known."""
    unknown = sorted(str(key) for key in set(values) - set(known))  # `3: 4` in a file is a key too
    if unknown:
        raise unknown_keys(where, unknown, known, synonyms)


def load_config(name: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """The recipe of `configs/NAME.yaml` (or a path), with `overrides` such as 'epochs=3' or
    'model_args.dropout=0.1' applied last (see config_files.read_config). The file, or a file it builds on, must
    name the `model` (the Recipe's default is for code): an empty file is refused rather than trained as Model_1."""
    path = config_path(name)
    values = read_config(path, overrides)
    _refuse_unknown_keys(f"{path.stem or 'config'}: ", values, _FIELDS, _SYNONYMS)  # first: `modle:` is a typo
    if "model" not in values:
        raise ConfigError(f"{path}: no model; name the architecture, e.g. model: Model_3 (models.py has "
                          f"{', '.join(model_names())}; or model: {PRETRAINED} for an ImageNet backbone)")
    return recipe_from_dict(values, path.stem)
