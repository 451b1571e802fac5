"""Weight averaging: an exponential moving average (EMA) of a model's weights, kept beside the model as it trains.

While the learning rate is high, the weights after the last step carry that step's noise; their average over the
last few hundred steps carries less of it and often scores higher. It costs one pass over the weights per step. A
recipe asks for it with `ema` (the decay); the engine's `fit`, the packed trainer and the bench then test and keep
the average in place of the trained weights, which train on as if it were not there.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
import torch.nn as nn


class WeightAverage:
    """An exponential moving average (EMA) of a model's weights: a copy of the model whose every weight and
    BatchNorm statistic is, after each training step (`update`), an average of the trained one over the steps so far,
    the latest weighing most: each step's weight is `decay` times the next one's, so it spans roughly the last
    1 / (1 − decay) steps and the noise of single steps cancels out. It starts from the first step's weights, as the
    bias correction of Adam's averages does, not from the initial ones: the k-th update moves it
    (1 − decay) / (1 − decay^k) of the way, all of it at the first. One pass over the weights per step. The copy
    has the model's own keys, so it saves and loads as the model itself (torch's `AveragedModel` adds a prefix and
    a counter to them). Build it once the model is on its device and in its memory format: it holds the model's
    tensors as they are then."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.model, self.decay, self.updates = copy.deepcopy(model), decay, 0
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._averaged = [(mine, trained) for mine, trained in pairs if mine.is_floating_point()]
        self._copied = [(mine, trained) for mine, trained in pairs if not mine.is_floating_point()]  # batch counts

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        share = (1 - self.decay) / (1 - self.decay ** self.updates)
        for mine, trained in self._averaged:
            mine.lerp_(trained, share)
        for mine, trained in self._copied:
            mine.copy_(trained)


@contextlib.contextmanager
def holding(model: nn.Module, weights_of: nn.Module) -> Iterator[None]:
    """`model` holding the weights of `weights_of` (a copy of it, such as a `WeightAverage`'s) for the duration,
    then its own again, exactly: training goes on from them."""
    if weights_of is model:
        yield
        return
    own = copy.deepcopy(model.state_dict())
    model.load_state_dict(weights_of.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(own)
