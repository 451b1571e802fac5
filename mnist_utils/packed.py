"""Several copies of one architecture trained as one module, so that a run over several seeds costs one pass.

Every convolution becomes a grouped convolution with one group per copy, every BatchNorm keeps one set of
statistics per copy (they are per channel anyway), every linear layer becomes a batched matrix product.
Copy g reads input channel block g and writes output block g, so the copies never see each other: with
each copy's loss averaged over its own batch and the losses summed, every copy gets exactly the gradient
it would get alone. On two CPU cores one large grouped convolution runs faster than several small ones.
"""
from __future__ import annotations

import copy
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import SeededDropout

SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
             nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, SeededDropout, nn.Identity, nn.Sequential)


def drops_out(model: nn.Module) -> bool:
    """Whether `model` has dropout that drops something. Such a model packs only alone: one mask over several
    copies' channels is not the mask each copy draws alone (from its own seed, over its own channels)."""
    return any(isinstance(m, (nn.modules.dropout._DropoutNd, SeededDropout)) and m.p > 0 for m in model.modules())


class GroupedLinear(nn.Module):
    """`copies` independent linear layers applied at once: (N, copies·in) → (N, copies·out)."""

    def __init__(self, copies: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.copies = copies
        self.weight = nn.Parameter(torch.empty(copies, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(copies, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("ngi,goi->ngo", x.view(x.shape[0], self.copies, -1), self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.flatten(1)


def _widen(module: nn.Module, copies: int) -> nn.Module:
    """An untrained layer that does `module`'s work for `copies` copies side by side."""
    if isinstance(module, nn.Conv2d):
        return nn.Conv2d(module.in_channels * copies, module.out_channels * copies, module.kernel_size,
                         module.stride, module.padding, module.dilation, module.groups * copies,
                         module.bias is not None, module.padding_mode)
    if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        return type(module)(module.num_features * copies, module.eps, module.momentum, module.affine)
    if isinstance(module, nn.Linear):
        return GroupedLinear(copies, module.in_features, module.out_features, module.bias is not None)
    return module  # stateless (ReLU, pooling, dropout, flatten) or a container, widened child by child


class PackedModels(nn.Module):
    """`models` (same architecture, each with its own weights) packed side by side.

    Input (N, copies, H, W): copy g classifies image stream g. Output (N, copies, classes).
    Only plain sequential stacks of the layer types in SUPPORTED can be packed (Model_1 to Model_3), and a
    model with dropout only alone (see `drops_out`).
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("need at least one model to pack")
        kinds = {type(m) for m in models}
        if len(kinds) > 1:
            raise ValueError(f"can only pack copies of one architecture, got {sorted(k.__name__ for k in kinds)}")
        for name, layer in models[0].named_modules():
            if name and not isinstance(layer, SUPPORTED) and next(layer.children(), None) is None:
                raise ValueError(f"cannot pack layer {name!r} ({type(layer).__name__}): only "
                                 f"{', '.join(t.__name__ for t in SUPPORTED)} are supported; train it with run_recipe")
        if len(models) > 1 and drops_out(models[0]):
            raise ValueError(f"cannot pack {len(models)} copies of {type(models[0]).__name__}: its dropout would draw "
                             "one mask for them all, not each copy's own; pack one copy at a time (train_seeds does)")
        self.copies = len(models)
        self._template = (copy.deepcopy(models[0]).cpu(),)  # in a tuple: not a submodule, so not trained
        self.net = copy.deepcopy(models[0])
        for name, layer in list(self.net.named_modules()):
            if name:
                parent, _, child = name.rpartition(".")
                setattr(self.net.get_submodule(parent) if parent else self.net, child, _widen(layer, self.copies))
        states = [m.state_dict() for m in models]
        with torch.no_grad():
            for key, tensor in self.net.state_dict().items():
                parts = [state[key] for state in states]
                if tensor.ndim == 0:  # BatchNorm's batch counter
                    tensor.copy_(parts[0])
                elif isinstance(self.net.get_submodule(key.rpartition(".")[0]), GroupedLinear):
                    tensor.copy_(torch.stack(parts))
                else:
                    tensor.copy_(torch.cat(parts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0], self.copies, -1)

    def unpack(self, index: int) -> nn.Module:
        """Copy `index` as a model of its own architecture, with its current weights and statistics."""
        model = copy.deepcopy(self._template[0])
        state = {}
        for key, tensor in self.net.state_dict().items():
            if tensor.ndim == 0:
                state[key] = tensor.clone()
            elif isinstance(self.net.get_submodule(key.rpartition(".")[0]), GroupedLinear):
                state[key] = tensor[index].clone()
            else:
                size = tensor.shape[0] // self.copies
                state[key] = tensor[index * size:(index + 1) * size].clone()
        model.load_state_dict(state)
        return model.to(next(self.net.parameters()).device)


def packed_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Sum over copies of each copy's mean cross-entropy. logits (N, copies, classes), labels (N, copies)."""
    copies = logits.shape[1]
    return copies * F.cross_entropy(logits.flatten(0, 1), labels.flatten(), label_smoothing=label_smoothing)


def side_by_side(streams: Sequence[Iterable], memory_format: torch.memory_format = torch.contiguous_format) -> Iterator:
    """One batch from each stream at a time, laid out as `PackedModels` reads them: images (N, copies, H, W),
    copy g's images in channel g, and labels (N, copies)."""
    for group in zip(*streams):
        images = torch.cat([x for x, _ in group], dim=1).contiguous(memory_format=memory_format)
        yield images, torch.stack([y for _, y in group], dim=1)
