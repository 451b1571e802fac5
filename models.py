"""Every architecture of the series, nothing else."""
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_SIZE = 28  # every network here is built for MNIST's 28×28 digits


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Refuse a batch that is not (N, C, 28, 28): on other sizes the layers compute without complaint and
    the answer is wrong (Model_1 gives 90 outputs per 32×32 image; global pooling hides any size)."""
    if x.ndim != 4 or tuple(x.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{type(model).__name__} takes {IMAGE_SIZE}×{IMAGE_SIZE} images shaped "
                         f"(N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(x.shape)}: resize or crop them to "
                         f"{IMAGE_SIZE}×{IMAGE_SIZE} first.")


# ============================================================================ 01-03: under 8,000 parameters
# Comments give each layer's output (channels×height×width) and receptive field (RF, in input pixels).


class SeededDropout(nn.Module):
    """Dropout whose masks come from a generator of its own, seeded from torch's global generator when the
    layer is built (so by the model's seed): models train side by side in lanes, and masks drawn from the
    shared global generator would depend on which lane drew first. Masks follow x's memory order, so a recipe's
    memory format is part of what its seed fixes. 0 parameters."""

    SPARSE_BELOW = 0.25  # below this p, drawing where the drops fall beats a draw per element (timed on a CPU)

    def __init__(self, p: float):  # no default: a building block, not a network `train` could be asked for
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.seed = int(torch.randint(2**62, ()))  # one draw from the global generator, at build
        self.generators: dict[torch.device, torch.Generator] = {}  # one stream per device, from that seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device not in self.generators:
            self.generators[x.device] = torch.Generator(x.device).manual_seed(self.seed)
        generator = self.generators[x.device]
        if self.p < self.SPARSE_BELOW and x.device.type == "cpu":  # on a GPU, a mask per element is cheap
            scale = torch.full_like(x, 1 / (1 - self.p))  # x's layout: x * scale runs over matching strides
            flat = scale.as_strided((scale.numel(),), (1,))  # dense, so its storage holds each element once
            flat.index_fill_(0, self.dropped(scale.numel(), generator), 0.0)
            return x * scale
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=generator)
        return x * keep / (1 - self.p)

    def dropped(self, n: int, generator: torch.Generator, spare: float = 8.0) -> torch.Tensor:
        """Which of `n` elements to drop (their indices, in order), each with probability p independently: the
        gaps from one drop to the next are geometric(p), so about p·n draws place them all, where a mask drawn
        element by element takes n (a twentieth at Model_2's p = 0.05). Each round draws the gaps expected for
        what is left plus `spare` standard deviations, so one round almost always does; a next round continues
        the same stream, so this call's drops do not depend on `spare` (where the stream stands for the next
        call does: keep it fixed)."""
        rounds = [torch.empty(0, dtype=torch.int64, device=generator.device)]  # n = 0: nothing to drop
        decided = 0  # every element before `decided` is known to be dropped or kept
        while decided < n:
            expected = (n - decided) * self.p
            draws = max(1, int(expected + spare * expected ** 0.5) + 16)  # + 16: a floor where p·n is small
            gaps = torch.empty(draws, dtype=torch.int64, device=generator.device)
            positions = gaps.geometric_(self.p, generator=generator).cumsum_(0).add_(decided - 1)
            rounds.append(positions)
            decided = int(positions[-1]) + 1
        positions = torch.cat(rounds)
        return positions[positions < n]

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ConvBNReLU(nn.Sequential):
    """Convolution, BatchNorm if asked, ReLU, dropout if asked; "same" padding unless given:
    k²·c_in·c_out + c_out parameters (the bias, or BatchNorm's shift that replaces it), + c_out with BatchNorm."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool = True, *, kernel: int = 3, padding: int | None = None,
                 dropout: float = 0.0):
        padding = kernel // 2 if padding is None else padding
        layers = [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=not batchnorm)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(c_out))  # its shift replaces the convolution's bias
        layers.append(nn.ReLU(inplace=True))
        if dropout:
            layers.append(SeededDropout(dropout))
        super().__init__(*layers)


class Model_1(nn.Module):
    """Step 1 skeleton: two 3×3 convolutions, max-pool, 1×1 transition, three 3×3 convolutions and a 6×6
    kernel as classifier, BatchNorm after every convolution but that one: 6,950 parameters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            ConvBNReLU(1, 8, padding=0),    # 8×26×26, RF 3
            ConvBNReLU(8, 8, padding=0),    # 8×24×24, RF 5
            nn.MaxPool2d(2),                # 8×12×12, RF 6
            ConvBNReLU(8, 8, kernel=1),     # 1×1 transition: mixes channels, RF unchanged
            ConvBNReLU(8, 10, padding=0),   # 10×10×10, RF 10
            ConvBNReLU(10, 10, padding=0),  # 10×8×8, RF 14
            ConvBNReLU(10, 10, padding=0),  # 10×6×6, RF 18
            nn.Conv2d(10, 10, 6),           # the big last kernel: 10×1×1, RF 28; 3,610 of the parameters
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.net(x)


class Model_2(nn.Module):
    """Step 2: a 5×5 first layer and early max-pool, four 3×3 convolutions, global average pooling and a
    linear layer in place of the big kernel, dropout after every convolution: 7,146 parameters."""

    def __init__(self, dropout: float = 0.05, widths: tuple[int, ...] = (16, 12, 16, 12, 12)):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.net = nn.Sequential(
            ConvBNReLU(1, c1, kernel=5, padding=0, dropout=dropout),   # c1×24×24, RF 5: edges and gradients
            nn.MaxPool2d(2),                                           # c1×12×12, RF 6
            ConvBNReLU(c1, c2, padding=0, dropout=dropout),            # c2×10×10, RF 10
            ConvBNReLU(c2, c3, padding=0, dropout=dropout),            # c3×8×8, RF 14: parts of digits
            nn.MaxPool2d(2),                                           # c3×4×4, RF 16
            ConvBNReLU(c3, c4, dropout=dropout),                       # c4×4×4, RF 24
            ConvBNReLU(c4, c5, padding=0, dropout=dropout),            # c5×2×2, RF 32: the whole digit
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                     # c5: what was found, not where
            nn.Linear(c5, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.net(x)


class Model_3(Model_2):
    """Step 3: Model_2's layout without dropout (augmentation regularises instead) and narrower, 12, 10, 14, 12, 10
    channels, the widths notebook 03's search chose: 5,458 parameters."""

    def __init__(self, widths: tuple[int, ...] = (12, 10, 14, 12, 10)):
        super().__init__(dropout=0.0, widths=widths)


# ============================================================================ 04: one-block VGG and ResNet


class OneBlockVGG(nn.Module):
    """One VGG block (two 3×3 convolutions, 2×2 max-pool) and a linear classifier: 33,850 parameters, 33,882 with BatchNorm."""

    def __init__(self, batchnorm: bool = False, width: int = 16):
        super().__init__()
        self.block = nn.Sequential(
            ConvBNReLU(1, width, batchnorm),      # 1×28×28 → w×28×28, receptive field 3
            ConvBNReLU(width, width, batchnorm),  # w×28×28, receptive field 5
            nn.MaxPool2d(2),                      # w×14×14, receptive field 6
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width * 14 * 14, 10))  # every position, own weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.classifier(self.block(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convolutions added to a shortcut, a 1×1 projection when the shape changes (with
    shortcut=False, neither): 9·c_in·c_out + 9·c_out² + 4·c_out parameters, c_in·c_out + 2·c_out more with a
    projection (without BatchNorm, 2·c_out and c_out in place of 4·c_out and 2·c_out): 32,544 in OneBlockResNet."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, batchnorm: bool = True, shortcut: bool = True):
        super().__init__()
        norm = nn.BatchNorm2d if batchnorm else (lambda channels: nn.Identity())
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batchnorm)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batchnorm)
        self.bn2 = norm(c_out)
        if not shortcut:  # a plain block: two convolutions, nothing added (notebook 04's ablation)
            self.shortcut = None
        elif stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batchnorm), norm(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out if self.shortcut is None else out + self.shortcut(x))


class OneBlockResNet(nn.Module):
    """Stem convolution, one residual basic block, global average pooling, linear head, BatchNorm unless told not to
    (OneBlockVGG's default is without): 33,298 parameters, 33,130 without BatchNorm, 32,050 with it and no shortcut."""

    def __init__(self, batchnorm: bool = True, width: int = 24, shortcut: bool = True):
        super().__init__()
        self.stem = nn.Sequential(ConvBNReLU(1, width, batchnorm), nn.MaxPool2d(2))  # w×14×14, receptive field 4
        self.block = BasicBlock(width, 2 * width, stride=2, batchnorm=batchnorm,
                                shortcut=shortcut)                                 # 2w×7×7, receptive field 16
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.head(self.block(self.stem(x)))


# ============================================================================ 06: classic CNNs compared
# "Same" padding throughout, so each 2×2 max-pool halves the map: 28 → 14 → 7 (→ 3 in MiniVGG).


class SimpleCNN(nn.Module):
    """conv 32 → max-pool → conv 64 → max-pool → dense 128 → 10 (3×3 kernels, ReLU): 421,642 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 32×14×14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 64×7×7
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class DeeperCNN(nn.Module):
    """2 × conv 32 → max-pool → 2 × conv 64 → max-pool → dense 256 → 10 (3×3 kernels, ReLU): 870,634 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 32×14×14
        x = F.relu(self.conv3(x))
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)  # 64×7×7
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class MiniVGG(nn.Module):
    """Three VGG blocks (2 × conv 64, 2 × conv 128, 3 × conv 256 by default; BatchNorm after every convolution;
    max-pool after each block), dense 512 → dropout → 10: 2,920,778 parameters (409,562 at 16-32-64)."""

    def __init__(self, dropout: float = 0.5, widths: tuple[int, int, int] = (64, 128, 256)):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            ConvBNReLU(1, c1, batchnorm=True), ConvBNReLU(c1, c1, batchnorm=True),
            nn.MaxPool2d(2),  # c1×14×14
            ConvBNReLU(c1, c2, batchnorm=True), ConvBNReLU(c2, c2, batchnorm=True),
            nn.MaxPool2d(2),  # c2×7×7
            ConvBNReLU(c2, c3, batchnorm=True), ConvBNReLU(c3, c3, batchnorm=True), ConvBNReLU(c3, c3, batchnorm=True),
            nn.MaxPool2d(2),  # c3×3×3 (the 7th row and column, the image's border, are dropped)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c3 * 3 * 3, 512), nn.ReLU(inplace=True), SeededDropout(dropout), nn.Linear(512, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.classifier(self.features(x))


class TwoBranchCNN(nn.Module):
    """conv 32 at 28×28, then two parallel branches, 3×3 and 5×5 kernels, each conv 64 at 14×14 and conv 256 at
    7×7, concatenated to 512×7×7; dense 1000 → 500 → 10 with dropout: 26,222,158 parameters."""

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.stem = nn.Conv2d(1, 32, 3, padding=1)
        self.branch3 = self.branch(kernel=3)
        self.branch5 = self.branch(kernel=5)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 1000), nn.ReLU(inplace=True), SeededDropout(dropout),
            nn.Linear(1000, 500), nn.ReLU(inplace=True), SeededDropout(dropout),
            nn.Linear(500, 10),
        )

    @staticmethod
    def branch(kernel: int) -> nn.Sequential:
        """32×14×14 → conv 64 → max-pool → conv 256 → 256×7×7, with `kernel`×`kernel` convolutions."""
        return nn.Sequential(
            nn.Conv2d(32, 64, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 256, kernel, padding=kernel // 2), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = F.max_pool2d(F.relu(self.stem(x)), 2)  # 32×14×14
        x = torch.cat([self.branch3(x), self.branch5(x)], dim=1)  # 512×7×7
        return self.classifier(x)


# ============================================================================ make bench: the reference


class ExampleNet(nn.Module):
    """The network of PyTorch's own MNIST example (two 3×3 convolutions, max-pool, dropout, dense 128 → 10,
    log-probabilities out), the bench's reference: 1,199,882 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)         # 32×26×26
        self.conv2 = nn.Conv2d(32, 64, 3)        # 64×24×24
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)  # after a 2×2 max-pool: 9,216 inputs
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(self.dropout1(x).flatten(1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)
