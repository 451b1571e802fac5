"""An in-memory batch iterator: the whole split lives as uint8 on the device; each batch is gathered,
augmented and normalised there. No DataLoader, no workers, no per-image Python."""
from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from .augment import Augment
from .data import MNIST_MEAN, MNIST_STD, ImageSet


class Batches:
    """Iterate over `data` in batches of (images, labels) on `device`.

    Images come out as floats of the default dtype (N, 1, H, W), normalised with `mean`/`std`, optionally
    augmented (before normalising) and resized to `size` pixels. With `shuffle`, each pass draws a new order from a
    generator seeded with `seed`; the same seed gives the same sequence of batches, pass after pass.
    With `augment_passes`, only the first that many passes are augmented, the later ones not.

    One generator draws both the orders and the augmentation, so turning augmentation on changes the order of
    the second pass and after: two recipes that differ in augmentation also differ in data order, as two seeds do
    (kept so, since every seeded result of the series rests on this stream).
    """

    def __init__(self, data: ImageSet, batch_size: int, *, device: torch.device | str = "cpu",
                 shuffle: bool = False, seed: int = 0, augment: Augment | None = None,
                 mean: float = MNIST_MEAN, std: float = MNIST_STD, size: int | None = None,
                 drop_last: bool = False, channels_last: bool = False, augment_passes: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(data) == 0:
            raise ValueError("cannot make batches of an empty ImageSet")
        if drop_last and len(data) < batch_size:
            raise ValueError(f"{len(data)} images make no whole batch of {batch_size}, and drop_last drops the "
                             "rest: lower batch_size, or set drop_last: false")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.enabled else None
        self.mean, self.std = mean, std
        self.size = size
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.augment_passes = augment_passes
        self.passes = 0  # passes started so far

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x.sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        augment = self.augment if self.augment_passes is None or self.passes < self.augment_passes else None
        self.passes += 1
        for batch in range(len(self)):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            x = self.images[index].unsqueeze(1).to(torch.get_default_dtype()).div_(255)
            if augment is not None:
                x = augment(x, self.generator)
            yield self._finish(x), self.labels[index]


def endless(batches: Iterable) -> Iterator:
    """Pass after pass over `batches` as one stream (a Batches draws a new order for each pass)."""
    return itertools.chain.from_iterable(itertools.repeat(batches))


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
        self._stream = endless(batches)  # a new pass when one ends

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        return itertools.islice(self._stream, self.batches_per_epoch)
