"""The bench's reference: MNIST trained the way PyTorch's own MNIST example trains it (pytorch/examples,
mnist/main.py, with its defaults): its network (models.ExampleNet), torchvision's dataset decoded image by image
through ToTensor and Normalize, a DataLoader with batches of 64 (1,000 to test), Adadelta with lr 1.0,
StepLR lowering the rate by γ = 0.7 after every epoch, the negative log-likelihood loss. Nothing here is this
project's machinery: that is the point of a reference. On a GPU it computes under the cuDNN settings the process
has: in `make bench`, those the project's seeded runs set before it (the same kernels every time, float32 not
TF32), so that both sides of the ratio compute alike.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from models import ExampleNet

from .config import data_root
from .data import MNIST_MEAN, MNIST_STD
from .engine import epochs_until, progress_bar

BATCH_SIZE, TEST_BATCH_SIZE = 64, 1000
LR, GAMMA = 1.0, 0.7


def example_loaders(device: torch.device, train_images: int | None = None,
                    test_images: int | None = None) -> tuple[DataLoader, DataLoader]:
    """The example's training and test loaders (the first `train_images` / `test_images` only, if given)."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    train_set = datasets.MNIST(data_root(), train=True, download=False, transform=transform)
    test_set = datasets.MNIST(data_root(), train=False, download=False, transform=transform)
    if train_images:
        train_set = Subset(train_set, range(min(train_images, len(train_set))))
    if test_images:
        test_set = Subset(test_set, range(min(test_images, len(test_set))))
    # As the example: workers, pinned memory and shuffling are its CUDA-only loader settings; on a CPU it
    # reads the training set in file order (which is not sorted by digit).
    extra = {"num_workers": 1, "pin_memory": True, "shuffle": True} if device.type == "cuda" else {}
    return (DataLoader(train_set, batch_size=BATCH_SIZE, **extra),
            DataLoader(test_set, batch_size=TEST_BATCH_SIZE, **extra))


def example_time_to_accuracy(device: torch.device, stop_at: float, max_epochs: int, *, seed: int = 1,
                             train_images: int | None = None, test_images: int | None = None) -> list[dict[str, Any]]:
    """Train and test epoch by epoch until test accuracy reaches `stop_at` or `max_epochs` end. One row per
    epoch: test accuracy (%) and seconds since the first training step (reading the datasets and building the
    model come before the clock starts, as in the project's own timings)."""
    torch.manual_seed(seed)
    train_loader, test_loader = example_loaders(device, train_images, test_images)
    model = ExampleNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=GAMMA)
    bar = progress_bar(total=max_epochs * len(train_loader), desc="PyTorch example", unit="batch")

    def run_epoch(epoch: int) -> float:  # the example's train() and test(), one epoch each
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(images), labels)
            loss.backward()
            optimizer.step()
            bar.update(1)
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images.to(device)).argmax(dim=1) == labels.to(device)).sum().item()
        return 100.0 * correct / len(test_loader.dataset)

    rows = epochs_until(run_epoch, max_epochs, stop_at, bar)
    bar.close()
    return rows
