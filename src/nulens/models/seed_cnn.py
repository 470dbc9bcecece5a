"""The poster's original network: the classic small binary image classifier.

Three 3x3 convolution blocks with 16, 32 and 16 filters ('valid' padding), ReLU
and 2x2 max-pooling each; flatten; a dense layer of 256 with ReLU; one output.
The module returns the logit; the sigmoid is applied by the loss
(BCEWithLogits) and at prediction time, which is the same network.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SeedCNN"]


class SeedCNN(nn.Module):
    def __init__(self, channels: int = 1, pixels: int = 128, filters=(16, 32, 16), dense: int = 256,
                 dropout: float = 0.0, **_ignored):
        super().__init__()
        layers, c, n = [], channels, pixels
        for f in filters:
            layers += [nn.Conv2d(c, f, 3), nn.ReLU(), nn.MaxPool2d(2)]
            c, n = f, (n - 2) // 2
        if n < 1:
            from ..errors import InputError

            raise InputError(f"maps of {pixels} pixels are too small for the seed network (it needs >= 22)")
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * n * n, dense), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)
