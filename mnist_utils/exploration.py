"""Facts about the data itself (notebook 00): what a split holds, images per class, exact duplicates, repeats."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .data import CLASSES, ImageSet


def split_facts(split: ImageSet) -> dict[str, Any]:
    """What a split holds: its number of images, their shape and dtype, its distinct labels (sorted) and its
    smallest and largest pixel value."""
    return {"images": len(split), "shape": tuple(split.images.shape[1:]),
            "dtype": str(split.images.dtype).removeprefix("torch."), "labels": sorted(set(split.labels.tolist())),
            "pixel range": (split.images.min().item(), split.images.max().item())}


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
