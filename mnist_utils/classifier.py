"""A saved model ready to classify digits: `Classifier.load(path)` rebuilds it from its checkpoint
(mnist_utils/checkpoints.py) and prepares every image as the model was tested when it was saved: its
normalisation, input size, memory layout, evaluation batch size and precision. `python -m mnist_utils test` and
`predict`, the `train` command's final test and the web page all read digits through it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from models import IMAGE_SIZE

from .batches import Batches
from .checkpoints import load_model
from .config import exact_cudnn
from .data import ImageSet
from .evaluation import Predictions, predict
from .precision import in_precision, precision_for
from .recipes import Recipe


def trained_with(metadata: Mapping[str, Any], setting: str) -> Any:
    """A setting of the recipe the checkpoint's model was trained with (its saved config), or the recipe's
    default where the checkpoint records none (an older or hand-made one)."""
    return (metadata.get("config") or {}).get(setting, getattr(Recipe, setting))


def input_batches(images: ImageSet, metadata: Mapping[str, Any], device: torch.device | str = "cpu") -> Batches:
    """Unshuffled batches of `images` prepared as the checkpoint's model was validated and tested on them: its
    normalisation, input size, memory layout and evaluation batch size (kernels may add up in another order for
    another layout or batch size: the same preparation leaves them no choice)."""
    size = metadata.get("input_size", IMAGE_SIZE)
    return Batches(images, trained_with(metadata, "eval_batch_size"), device=device,
                   mean=metadata["normalization"]["mean"], std=metadata["normalization"]["std"],
                   size=None if size == IMAGE_SIZE else size, channels_last=trained_with(metadata, "channels_last"))


@dataclass(frozen=True)
class Classifier:
    """A loaded checkpoint, ready to classify MNIST-style digits."""

    model: nn.Module
    metadata: dict[str, Any]
    device: torch.device

    @classmethod
    def load(cls, path: Path | str, device: torch.device | str | None = None) -> "Classifier":
        device = torch.device(device or "cpu")
        exact_cudnn()  # as it trained: on a GPU, float32 as float32 and the same kernels each run
        model, metadata = load_model(path, device)
        if trained_with(metadata, "channels_last"):
            model.to(memory_format=torch.channels_last)  # the layout it trained and was tested in
        return cls(model, metadata, device)

    @property
    def precision(self) -> str:
        """The arithmetic the model computes in here: bfloat16 where it trained in it (as recorded, else as its
        config asks) and this device computes it natively, else float32, so that its recorded accuracy is what it
        scores here (a bf16 config trained on a processor without bf16 trained in float32)."""
        recorded = self.metadata.get("precision")
        in_bf16 = recorded == "bfloat16" if recorded else trained_with(self.metadata, "bf16")
        return precision_for(in_bf16, self.device)

    def predict(self, images: ImageSet, desc: str | None = None) -> Predictions:
        """The model's predictions for every image of `images`, prepared and computed as it was tested when it
        was saved (`python -m mnist_utils test` and the `train` command's final test both call this); `desc`: a
        progress bar with that label."""
        return predict(in_precision(self.model, self.precision, self.device),
                       input_batches(images, self.metadata, self.device), self.device, desc=desc)

    def probabilities(self, pixels: torch.Tensor) -> torch.Tensor:
        """Softmax (N, 10) for uint8 digits (N, 28, 28), prepared as the model was trained."""
        images = ImageSet(pixels, torch.zeros(len(pixels), dtype=torch.long))  # labels unused: none are known
        return self.predict(images).probabilities

    def answers(self, pixels: torch.Tensor, k: int = 3) -> list[dict[str, Any]]:
        """Per digit of `pixels`: the answer, its probability and the `k` likeliest digits."""
        top = self.probabilities(pixels).topk(k, dim=1)
        return [{"digit": int(digits[0]), "confidence": float(chances[0]),
                 "top": [{"digit": int(d), "probability": float(p)} for d, p in zip(digits, chances)]}
                for chances, digits in zip(top.values, top.indices)]
