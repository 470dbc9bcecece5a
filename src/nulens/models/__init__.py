"""CNN architectures, by name.  Importing this module imports torch."""

from __future__ import annotations

from .nunet import NuNet
from .seed_cnn import SeedCNN

__all__ = ["MODELS", "build_model", "count_parameters", "SeedCNN", "NuNet"]

MODELS = {"seed": SeedCNN, "nunet": NuNet}


def build_model(name: str, channels: int, pixels: int, **kwargs):
    """Instantiate a registered model for (channels, pixels, pixels) input and one logit output."""
    from ..errors import InputError

    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](channels=channels, pixels=pixels, **kwargs)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
