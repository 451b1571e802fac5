"""Augmentation of a whole batch at once, on tensors, on whatever device the batch is on.

Random numbers come from a CPU `torch.Generator` and only the small parameter tensors move to the
batch's device, so the same seed gives the same batch on CPU and CUDA. Every transform is off by default. Each
function draws nothing where all it does is off, and `random_affine` draws its five numbers per image (angle, shear,
zoom, two shifts) wherever any of them is on: a transform added to `Augment` (a field, its range in `problems`, its
words in `describe`, a function of its own returning early where it is off, called in `__call__`) then changes no
batch of a recipe that leaves it off, nor a figure recorded from one. A config's `augment:` keys are `Augment`'s
fields; `recipes.py` reads them from it.
Images are floats in [0, 1] with a black (0) background, shape (N, C, H, W): augment before normalising,
so that pixels moved in from outside the frame are background.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64).mul_(high - low).add_(low)


def random_affine(images: torch.Tensor, generator: torch.Generator, *, rotation: float = 0.0,
                  translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0) -> torch.Tensor:
    """One random affine map per image: rotation in ±`rotation` degrees, shift up to ±`translate` of the
    image size along each axis, zoom in `scale`, x-shear in ±`shear` degrees. Bilinear, zero fill."""
    if rotation == 0 and translate == 0 and tuple(scale) == (1.0, 1.0) and shear == 0:
        return images
    n = images.shape[0]
    angle = torch.deg2rad(_uniform(n, -rotation, rotation, generator))
    shear_angle = torch.deg2rad(_uniform(n, -shear, shear, generator))
    zoom = _uniform(n, scale[0], scale[1], generator)
    # Normalised coordinates span [-1, 1], i.e. 2 units per image, so a shift of f images is 2f units.
    shift = _uniform(2 * n, -translate, translate, generator).view(n, 2) * 2

    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear_angle)
    # Forward map of the content: rotate · shear · zoom, then shift.
    forward = torch.zeros(n, 2, 2, dtype=torch.float64)
    forward[:, 0, 0] = cos * zoom
    forward[:, 0, 1] = (cos * tan - sin) * zoom
    forward[:, 1, 0] = sin * zoom
    forward[:, 1, 1] = (sin * tan + cos) * zoom
    # affine_grid wants the inverse: for each output pixel, where to read in the input.
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2)
    theta = theta.to(device=images.device, dtype=images.dtype)
    return F.grid_sample(images, affine_grid(theta, images.shape[-2:]), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`F.affine_grid(theta, (N, C, *size), align_corners=False)` as one matrix product, (N, 6) by (6, H·W·2),
    whose result is already laid out as the grid: F.affine_grid's batched (H·W)×3 by 3×2 products took a CPU
    more time than all the rest of the augmentation, and 5-10× longer than this (128 digits, one thread)."""
    height, width = size
    x = (torch.arange(width, device=theta.device, dtype=theta.dtype) * 2 + 1) / width - 1  # pixel centres in [-1, 1]
    y = (torch.arange(height, device=theta.device, dtype=theta.dtype) * 2 + 1) / height - 1
    pixels = torch.stack([x.expand(height, width), y.view(height, 1).expand(height, width),
                          torch.ones(height, width, device=theta.device, dtype=theta.dtype)]).view(3, -1)
    basis = theta.new_zeros(2, 3, height * width, 2)  # grid[..., c] = theta[c, 0]·x + theta[c, 1]·y + theta[c, 2]
    basis[0, :, :, 0], basis[1, :, :, 1] = pixels, pixels
    return (theta.reshape(-1, 6) @ basis.view(6, -1)).view(-1, height, width, 2)


def random_erasing(images: torch.Tensor, generator: torch.Generator, *, p: float = 0.0,
                   area: tuple[float, float] = (0.02, 0.1), ratio: tuple[float, float] = (0.3, 3.3),
                   value: float = 0.0) -> torch.Tensor:
    """With probability `p` per image, set one random rectangle (a fraction `area` of the image, aspect
    ratio in `ratio`) to `value`. Returns a new tensor."""
    if p == 0:
        return images
    n, _, height, width = images.shape
    erase = torch.rand(n, generator=generator) < p
    fraction = _uniform(n, area[0], area[1], generator)
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator))
    h = (fraction * height * width * aspect).sqrt().round().clamp(1, height).long()
    w = (fraction * height * width / aspect).sqrt().round().clamp(1, width).long()
    top = (torch.rand(n, generator=generator) * (height - h + 1)).long()
    left = (torch.rand(n, generator=generator) * (width - w + 1)).long()

    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + h).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + w).view(n, 1, 1)))
    mask = (inside & erase.view(n, 1, 1)).unsqueeze(1).to(images.device)
    return images.masked_fill(mask, value)


@dataclass(frozen=True)
class Augment:
    """A recipe of batch augmentations; all off by default. Call it on a float batch in [0, 1]."""

    rotation: float = 0.0  # max degrees either way
    translate: float = 0.0  # max shift, as a fraction of the image size, per axis
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0  # max degrees either way
    erase_p: float = 0.0  # probability of erasing one rectangle per image
    erase_area: tuple[float, float] = (0.02, 0.1)
    erase_ratio: tuple[float, float] = (0.3, 3.3)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = random_affine(images, generator, rotation=self.rotation, translate=self.translate,
                               scale=self.scale, shear=self.shear)
        return random_erasing(images, generator, p=self.erase_p, area=self.erase_area, ratio=self.erase_ratio)

    @property
    def enabled(self) -> bool:
        return self != Augment()

    def problems(self) -> list[str]:
        """What is out of range, each as 'key: what it must be, got what it is'; empty when all is well."""
        def interval(lo: float, hi: float, low_bound: float, high_bound: float) -> bool:
            return low_bound < lo <= hi <= high_bound
        found = []
        if not 0 <= self.rotation <= 180:
            found.append(f"rotation: degrees in [0, 180], got {self.rotation}")
        if not 0 <= self.shear < 90:
            found.append(f"shear: degrees in [0, 90), got {self.shear}")
        if not 0 <= self.translate <= 0.5:
            found.append(f"translate: a share of the image in [0, 0.5], got {self.translate}")
        if len(self.scale) != 2 or not interval(*self.scale, 0, 10):
            found.append(f"scale: [smallest, largest] zoom, 0 < smallest <= largest <= 10, got {list(self.scale)}")
        if not 0 <= self.erase_p <= 1:
            found.append(f"erase_p: a probability in [0, 1], got {self.erase_p}")
        if len(self.erase_area) != 2 or not interval(*self.erase_area, 0, 1):
            found.append(f"erase_area: [smallest, largest] share of the image, within (0, 1], got "
                         f"{list(self.erase_area)}")
        if len(self.erase_ratio) != 2 or not interval(*self.erase_ratio, 0, sys.float_info.max):  # inf: nan sizes
            found.append(f"erase_ratio: [smallest, largest] aspect ratio, above 0 and finite, got "
                         f"{list(self.erase_ratio)}")
        return found

    def describe(self) -> str:
        """A short human-readable summary, e.g. 'rotation ±7°, shift ±10%'."""
        parts = []
        if self.rotation:
            parts.append(f"rotation ±{self.rotation:g}°")
        if self.translate:
            parts.append(f"shift ±{self.translate:.0%}")
        if tuple(self.scale) != (1.0, 1.0):
            parts.append(f"scale {self.scale[0]:g}–{self.scale[1]:g}")
        if self.shear:
            parts.append(f"shear ±{self.shear:g}°")
        if self.erase_p:
            parts.append(f"erasing p={self.erase_p:g}")
        return ", ".join(parts) or "none"
