"""The arithmetic a model computes in: bfloat16 where its recipe asks for it and the device computes it natively,
else float32. A fixed rule, from what the device is, not from a timing, so that a rerun on the same kind of machine
makes the same choice and gives the same numbers; training, testing, a reloaded checkpoint and the page all ask it."""
from __future__ import annotations

import torch
import torch.nn as nn


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware: an NVIDIA GPU of compute capability 8 or more (Ampere on), or
    a processor with AVX512-BF16 or AMX instructions. Elsewhere bf16 is emulated, slower than float32."""
    if device.type == "cuda":  # not torch.cuda.is_bf16_supported(): it also says so where bf16 is only emulated
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def precision_for(bf16: bool, device: torch.device) -> str:
    """The arithmetic a model asking for bf16 (or not) computes in on `device`: 'bfloat16' where the device
    computes it natively, else 'float32'. A fixed rule, not a timing: a rerun on the same kind of machine makes
    the same choice and gives the same numbers."""
    return "bfloat16" if bf16 and bf16_native(device) else "float32"


def in_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """`model` computing in `precision` ('bfloat16': under autocast, the weights left float32; 'float32':
    `model` itself). Training, validation, testing and the page all call a model this way, so that each
    figure is what the model computes as it was trained."""
    if precision not in ("bfloat16", "float32"):
        raise ValueError(f"precision must be 'bfloat16' or 'float32', got {precision!r}")
    return Autocast(model, torch.bfloat16, device.type) if precision == "bfloat16" else model


class Autocast(nn.Module):
    """`model` with its forward pass under autocast to `dtype`; the logits come back as float32 for the loss.
    The weights stay float32 (they are `model`'s own): only the arithmetic is in the lower precision."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, device_type: str):
        super().__init__()
        self.model, self.dtype, self.device_type = model, dtype, device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(x).float()
