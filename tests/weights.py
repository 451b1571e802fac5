"""Models for tests that need weights other than a freshly initialised model's."""
import torch


def trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """`model` with random weights and BatchNorm statistics other than a fresh one's, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.1)
    return model.eval()
