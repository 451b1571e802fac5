"""Frozen features: a backbone run once over the images, then only a head trained on what it computed.
Used to train the head of a pretrained network alone (`training.train_head`), and to probe how well its
features separate digits."""
from __future__ import annotations

import time
from typing import Any, Iterable

import torch
import torch.nn as nn

from .config import generators_kept, synchronize
from .data import ImageSet
from .engine import History, fit, test
from .inspection import feature_map_size
from .optim import make_optimizer, one_cycle
from .recipes import Recipe, build_pretrained


def fit_one_cycle(model: nn.Module, train_batches: Any, test_batches: Any, device: torch.device, *, epochs: int,
                  max_lr: float, optimizer: str = "adam", weight_decay: float = 0.0, **fit_kwargs: Any) -> History:
    """`fit` with one optimizer over all of `model`'s parameters and a one-cycle learning rate peaking at
    `max_lr`: warm-up for the first quarter (at least 2 steps: the peak is the second), then annealing to almost
    zero. A cycle needs a step up and a step down, so a run of fewer than 3 steps (smoke-sized) keeps `max_lr`
    constant."""
    opt = make_optimizer(optimizer, model.parameters(), lr=max_lr, weight_decay=weight_decay)
    scheduler = one_cycle(opt, epochs=epochs, steps_per_epoch=len(train_batches), max_lr=max_lr, pct_start=0.25)
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


def linear_probe(backbone: nn.Module, train_batches: Iterable, test_batches: Iterable, device: torch.device, *,
                 num_classes: int = 10, epochs: int = 30, lr: float = 1e-3, batch_size: int = 100,
                 seed: int = 0) -> dict[str, float]:
    """How well a linear classifier separates `backbone`'s frozen features: features of both sets computed
    once, a fresh linear head trained on them with Adam. Returns test accuracy (%) and the backbone's
    images per second (both sets, feature extraction only)."""
    start = time.perf_counter()
    train_x, train_y = extract_features(backbone, train_batches, device)
    test_x, test_y = extract_features(backbone, test_batches, device)
    synchronize(device)
    seconds = time.perf_counter() - start
    with generators_kept(device):
        torch.manual_seed(seed)
        head = nn.Linear(train_x.shape[1], num_classes).to(device)
    history = fit_one_cycle(head, FeatureBatches(train_x, train_y, batch_size, shuffle=True, seed=seed), None,
                            device, epochs=epochs, max_lr=lr, progress=None)
    accuracy = test(head, FeatureBatches(test_x, test_y, 1000), device).accuracy
    return {"accuracy": accuracy, "train_accuracy": history["train_acc"][-1],
            "images_per_s": (len(train_y) + len(test_y)) / seconds}


def resolution_sweep(recipe: Recipe, sizes: Iterable[int], train: ImageSet, val: ImageSet, device: torch.device, *,
                     epochs: int, seed: int) -> list[dict[str, Any]]:
    """A pretrained recipe's backbone at each input size in `sizes`: the last feature map it leaves, and a
    `linear_probe` on its frozen features (trained on `train` for `epochs`, scored on `val`): the probe's
    accuracy and the backbone's images/s. One row per size, as a table shows it."""
    rows = []
    for size in sizes:
        net = build_pretrained(recipe, image_size=size)
        backbone = net.model.backbone.to(device, memory_format=recipe.memory_format)
        at_size = recipe.replace(image_size=size)  # the recipe's evaluation batches, resized to `size`
        probe = linear_probe(backbone, at_size.eval_batches(train, device, **net.inputs),
                             at_size.eval_batches(val, device, **net.inputs), device, epochs=epochs, seed=seed)
        rows.append({"input px": size, "last feature map": "{}×{}".format(*feature_map_size(net.model, size)),
                     "probe val %": probe["accuracy"], "backbone images/s": probe["images_per_s"]})
    return rows

