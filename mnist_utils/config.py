"""Where things live, which profile is running, and which device to use: decided here, once."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]

PROFILES = ("full", "smoke")


def data_root() -> Path:
    """Folder holding `MNIST/raw/` (override with MNIST_DATA_ROOT)."""
    return Path(os.environ.get("MNIST_DATA_ROOT", PROJECT_ROOT / "data"))


def reports_root() -> Path:
    """The reports folder (override with MNIST_REPORTS_DIR); each profile's outputs: see `reports_dir`."""
    return Path(os.environ.get("MNIST_REPORTS_DIR", PROJECT_ROOT / "reports"))


def reports_dir(profile: str | None = None, base: Path | str | None = None) -> Path:
    """Folder for the executed notebooks, HTML and results JSON of `profile` (default: the active one):
    `base` (default `reports_root()`) for the full profile, its smoke/ subfolder for the smoke profile,
    so that a quick check never replaces the outputs of a full run."""
    base = Path(base) if base is not None else reports_root()
    name = get_profile(profile).name
    return base if name == "full" else base / name


@dataclass(frozen=True)
class Profile:
    """How big a run is. `full` is the real thing; `smoke` checks that everything runs, in seconds."""

    name: str
    train_images: int | None  # None: the whole training set
    test_images: int | None
    max_epochs: int | None  # None: as many as the notebook asks for
    seeds: int  # how many seeds a multi-seed experiment repeats

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def epochs(self, wanted: int) -> int:
        """The number of epochs to run when a notebook wants `wanted`."""
        return wanted if self.max_epochs is None else min(wanted, self.max_epochs)

    def subset(self, n_available: int, split: str = "train") -> int:
        """How many images of a split of `n_available` this profile uses."""
        cap = self.train_images if split == "train" else self.test_images
        return n_available if cap is None else min(cap, n_available)


_PROFILES = {
    "full": Profile("full", train_images=None, test_images=None, max_epochs=None, seeds=5),
    "smoke": Profile("smoke", train_images=2048, test_images=1024, max_epochs=1, seeds=2),
}


def get_profile(name: str | None = None) -> Profile:
    """The active profile: `name`, else $MNIST_PROFILE, else `full` (so a notebook opened in Jupyter runs for real)."""
    name = (name or os.environ.get("MNIST_PROFILE") or "full").strip().lower()
    if name not in _PROFILES:
        raise ValueError(f"Unknown MNIST_PROFILE {name!r}: use one of {', '.join(PROFILES)}.")
    return _PROFILES[name]


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when present, else CPU. `prefer` (or $MNIST_DEVICE) forces one, e.g. 'cpu'."""
    wanted = prefer or os.environ.get("MNIST_DEVICE")
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("MNIST_DEVICE asks for CUDA but torch sees no GPU: unset it or set it to 'cpu'.")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
