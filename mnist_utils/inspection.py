"""Looking inside a model: its parameter count and last layer, torchsummary's layer table, receptive fields, the
size of the map its global pooling sees (and the smallest input that leaves it a given size), how many images per
second it trains on, and whether its config's bf16 choice fits those speeds."""
from __future__ import annotations

import contextlib
import copy
import io
import time
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torchsummary

from .batches import Batches
from .config import computing_on, generators_kept, synchronize
from .data import ImageSet
from .engine import training_step
from .precision import Autocast, bf16_native
from .recipes import Recipe, build_pretrained


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    if isinstance(model, type):  # models.Model_3, not models.Model_3()
        raise TypeError(f"count_parameters counts a model's parameters, not a class's: give {model.__name__}()")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def last_layer(model: nn.Module) -> nn.Module:
    """The last layer of `model` with weights of its own, in the order the model registers them: the classifier of
    the step models, wherever it sits (Model_1's 6×6 convolution, Model_2's linear layer after GAP)."""
    weighted = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    if not weighted:
        raise ValueError(f"{type(model).__name__} has no layer with weights")
    return weighted[-1]


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
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive whole number of pixels (28 for MNIST), got {input_size!r}")
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
        if size < 1:
            raise ValueError(f"{name} ({type(module).__name__}) leaves no pixels of a {input_size}×{input_size} "
                             f"input; {type(model).__name__} expects at least the size it was designed for (28 "
                             "for the networks of models.py)")
        rf += (kernel - 1) * jump
        jump *= stride
        rows.append({"layer": f"{name} ({type(module).__name__})", "kernel": kernel, "stride": stride,
                     "padding": padding, "size": size, "jump": jump, "rf": rf})
    return rows


def last_convolution_field(fields: list[dict[str, Any]]) -> int:
    """The receptive field (pixels) of the last convolution among `receptive_field`'s rows: what each input of the
    classifier sees (a global pooling after it, which sees every position, is not a convolution)."""
    convolutions = [row["rf"] for row in fields if row["layer"].endswith("(Conv2d)")]
    if not convolutions:
        raise ValueError("these receptive_field rows hold no convolution: the model has no Conv2d")
    return convolutions[-1]


class _ReachedPool(Exception):
    """Raised by feature_map_size's hook: the shape is known, so the rest of the forward pass is not run."""


@torch.no_grad()
def feature_map_size(model: nn.Module, image_size: int, channels: int = 1) -> tuple[int, int]:
    """(height, width) of the map that `model`'s global average pooling receives for an `image_size`-pixel
    square input: how much spatial detail survives to the last layer. The pass stops at the pooling, so
    what comes after it (a head still on another device, say) is never run."""
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive whole number of pixels, got {image_size!r}")
    pool = next((m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
    if pool is None:
        raise ValueError(f"{type(model).__name__} has no nn.AdaptiveAvgPool2d to measure the feature map at")
    seen: list[tuple[int, int]] = []

    def note_shape(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen.append(tuple(inputs[0].shape[-2:]))
        raise _ReachedPool

    handle = pool.register_forward_pre_hook(note_shape)
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()  # eval: a probe must not move BatchNorm's running statistics
        with contextlib.suppress(_ReachedPool):
            model(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        handle.remove()
        model.train(was_training)
    if not seen:
        raise ValueError(f"{type(model).__name__}'s forward pass never calls its nn.AdaptiveAvgPool2d module: "
                         "no map reaches it to measure")
    return seen[0]


def smallest_input_size(recipe: Recipe, *, stop: int, start: int = 28, least_map: int = 2) -> int | None:
    """The smallest input size from `start` to `stop` px at which the last feature map of the recipe's pretrained
    network is at least `least_map` × `least_map` (shapes only: each network is built for its size, without
    weights); None if none is."""
    return next((size for size in range(start, stop + 1)
                 if min(feature_map_size(build_pretrained(recipe, image_size=size, pretrained=False).model,
                                         size)) >= least_map), None)


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
    if autocast_dtype is not None:
        probe = Autocast(probe, autocast_dtype, device.type)  # as training runs it: see Recipe.computing

    best = 0.0
    with generators_kept(device):  # dropout draws here must not shift seeded runs
        for _ in range(warmup):
            training_step(probe, x, y, optimizer)
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                training_step(probe, x, y, optimizer)
            synchronize(device)
            best = max(best, steps * len(y) / (time.perf_counter() - start))
    return best


SPEED_MARGIN = 1.05  # a layout or bf16 is worth it where it trains at least 5% faster than without it


def _each_round(ratios: Sequence[float], decimals: int) -> str:
    """A probe's ratios, round by round, as the speed table and the claims' evidence show them: "1.337, 1.236"."""
    return ", ".join(f"{ratio:.{decimals}f}" for ratio in ratios)


def precision_speeds(models: Mapping[str, nn.Module], recipes: Mapping[str, Recipe], images: torch.Tensor,
                     labels: torch.Tensor, device: torch.device, *, repeats: int = 2) -> list[dict[str, Any]]:
    """What each config's layout and precision choice rests on: per model (`recipes` by the same names),
    training images/s (`training_speed`) in float32, with channels_last, and with channels_last under bfloat16
    autocast, the speed-ups (each over float32, and bf16's over channels_last alone, the ratio the bf16 rule
    weighs, also round by round), the config's `bf16` and the precision it trains in on `device`. On a CPU each
    is timed on one thread, as a lane trains it (mnist_utils.lanes): on two threads, networks this small spend much
    of a step waiting for each other, and what bf16 saves shrinks to the size of a timing's noise. The three are
    timed in turn, `repeats` rounds, each keeping its best: other work on the machine (a notebook running beside
    this one) then falls on all three, not only on whichever happened to be timed while it was busiest; a round's
    ratios pair timings taken one after the other, which such work slows most nearly alike."""
    ways = {"float32": {}, "channels_last": {"channels_last": True},
            "bf16 + channels_last": {"channels_last": True, "autocast_dtype": torch.bfloat16}}
    rows = []
    for name, model in models.items():
        rounds = {way: [] for way in ways}
        with computing_on(1 if device.type == "cpu" else None):
            for _ in range(repeats):
                for way, settings in ways.items():
                    rounds[way].append(training_speed(model, images, labels, device, **settings))
        fp32, channels_last, bf16 = (max(speeds) for speeds in rounds.values())
        rows.append({"model": name, "float32": fp32, "channels_last": channels_last, "bf16 + channels_last": bf16,
                     "channels_last speed-up": channels_last / fp32,
                     "channels_last speed-up, each round": [c / f for c, f in zip(rounds["channels_last"],
                                                                                   rounds["float32"])],
                     "bf16 speed-up": bf16 / fp32,
                     "bf16 over channels_last": bf16 / channels_last,
                     # what the bf16 rule weighs, round by round:
                     "bf16 over channels_last, each round": [b / c for c, b in zip(rounds["channels_last"],
                                                                                   rounds["bf16 + channels_last"])],
                     "bf16 in its config": recipes[name].bf16, "trains in": recipes[name].precision(device)})
    return rows


def speed_probe(models: Mapping[str, nn.Module], recipes: Mapping[str, Recipe], train: ImageSet, device: torch.device,
                *, quick: bool = False) -> list[dict[str, Any]]:
    """`precision_speeds` on the first batch of `train` of the first recipe's batch size, each figure the best of
    three rounds. `quick` (the smoke profile): a batch of 4, timed once, only to check that it runs."""
    batch_size = 4 if quick else next(iter(recipes.values())).batch_size
    images, labels = next(iter(Batches(train, batch_size)))
    return precision_speeds(models, recipes, images, labels, device, repeats=1 if quick else 3)


def speed_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`precision_speeds` rows as a table reads them: whole images/s, speed-ups as ratios."""
    return [{"model": row["model"], "float32 (images/s)": round(row["float32"]),
             "channels_last (images/s)": round(row["channels_last"]),
             "bf16 + channels_last (images/s)": round(row["bf16 + channels_last"]),
             "channels_last speed-up": f"{row['channels_last speed-up']:.2f}×",
             "bf16 speed-up": f"{row['bf16 speed-up']:.2f}×",
             "bf16 over channels_last": f"{row['bf16 over channels_last']:.3f}×",
             "each round (the rule's ratios)": _each_round(row["bf16 over channels_last, each round"], 3),
             "bf16 in its config": row["bf16 in its config"],
             "trains in": row["trains in"]} for row in rows]


def channels_last_claim(rows: Sequence[dict[str, Any]], margin: float = SPEED_MARGIN) -> tuple[str, bool, str]:
    """The claim behind training every model channels_last, whether `precision_speeds` rows bear it out, and the
    evidence: at least `margin` times as fast as the default layout in every round of the probe for some model, and
    that much slower in every round for none. A difference that some round does not repeat is within what a timing
    moves (TwoBranchCNN's best-of-rounds ratio has read 0.90× to 1.08× from run to run)."""
    rounds = {row["model"]: row["channels_last speed-up, each round"] for row in rows}
    faster = [name for name, ratios in rounds.items() if min(ratios) >= margin]
    slower = [name for name, ratios in rounds.items() if max(ratios) <= 1 / margin]
    claim = (f"channels_last, which every model trains with, pays: at least {margin - 1:.0%} faster in every round of "
             "the probe for some models, that much slower in every round for none (a difference a round does not "
             "repeat is a timing's noise)")
    evidence = ", ".join(f"{row['model']} {row['channels_last speed-up']:.2f}× (rounds "
                         f"{_each_round(rounds[row['model']], 2)})" for row in rows)
    return claim, bool(faster) and not slower, evidence


def bf16_choices_fit(rows: Sequence[dict[str, Any]], native_bf16: bool,
                     margin: float = SPEED_MARGIN) -> tuple[bool, str]:
    """Whether every config's bf16 choice fits the measured speeds, and the evidence. Where the device computes
    bf16 natively, a choice fits unless every round of the probe says otherwise: bf16 on, yet under `margin` times
    as fast as float32 with channels_last (the layout every model trains in) in every round, or off, yet at least
    that fast in every round. Each round's ratio pairs timings taken one after the other; the ratio of the best
    rounds can pair timings of different rounds, which other work on the machine slowed unequally (ResNet + BN's
    read 0.95× in a series run; its rounds, timed again beside a busy process, 1.05–1.81×). Elsewhere: every model
    trains in float32."""
    if native_bf16:
        fits = all(max(ratios) >= margin if row["bf16 in its config"] else min(ratios) < margin
                   for row in rows for ratios in [row["bf16 over channels_last, each round"]])
    else:
        fits = all(row["trains in"] == "float32" for row in rows)
    # three decimals: a ratio of 1.046 against a margin of 1.05 must not read as "1.05×"
    evidence = ", ".join(f"{row['model']} {row['bf16 over channels_last']:.3f}× (rounds "
                         f"{_each_round(row['bf16 over channels_last, each round'], 3)}; "
                         f"{'on' if row['bf16 in its config'] else 'off'})" for row in rows)
    return fits, evidence


def bf16_claim(rows: Sequence[dict[str, Any]], device: torch.device,
               margin: float = SPEED_MARGIN) -> tuple[str, bool, str]:
    """The claim a notebook checks about its `precision_speeds` rows, whether it holds on `device`
    (`bf16_choices_fit`, with the device's native bf16 or not) and the evidence: `report.check(*bf16_claim(...))`."""
    claim = (f"Each config's bf16 choice fits this run's speed-ups: none has it on where bf16 was under "
             f"{margin - 1:.0%} faster than channels_last alone (float32) in every round of the probe, none off "
             "where it was at least that much faster in every round (a difference a round does not repeat is a "
             "timing's noise; where the processor has no bf16 instructions, nothing trains in bf16)")
    return (claim, *bf16_choices_fit(rows, bf16_native(device), margin))
