"""nunet: a small residual network for periodic convergence fields.

Design (why each piece):
- circular padding everywhere: the maps are periodic, so every pixel is
  equivalent and no edge artifact exists for the network to learn;
- a learned pointwise transform at full resolution (1x1 convolutions,
  concatenated with the raw input): the exact optimum on lognormal maps works
  on ln(1 + kappa/kappa0), a pointwise function of the map;
- a stride-2 stem then residual stages at 1/2, 1/4, 1/8 resolution: the
  receptive field covers the whole map, the cost stays ~0.3 GFLOP per 128^2 map;
- BatchNorm (statistics over the batch and the dataset, never one map's own:
  a per-map normalisation would erase the few-per-cent variance signal);
- global average pooling then a small head: the output is translation
  invariant, as the optimal statistic (a sum over modes of |d_k|^2) is.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NuNet"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="circular", bias=False)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1, self.b1 = _conv(cin, cout, stride), nn.BatchNorm2d(cout)
        self.c2, self.b2 = _conv(cout, cout), nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                                      nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return self.act(y + (x if self.skip is None else self.skip(x)))


class NuNet(nn.Module):
    def __init__(self, channels: int = 1, pixels: int = 128, width: int = 24, depth: int = 3, blocks: int = 1,
                 pointwise: int = 8, dropout: float = 0.0, **_ignored):
        super().__init__()
        self.pointwise = nn.Sequential(nn.Conv2d(channels, pointwise, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(pointwise, pointwise, 1)) if pointwise else None
        cin = channels + (pointwise or 0)
        self.stem = nn.Sequential(_conv(cin, width, stride=2), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, c = [], width
        for s in range(depth):
            cout = width * 2**s
            for b in range(blocks):
                stages.append(_Block(c, cout, stride=2 if (s > 0 and b == 0) else 1))
                c = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, 64), nn.ReLU(inplace=True),
                                  nn.Linear(64, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise is not None:
            x = torch.cat([x, self.pointwise(x)], dim=1)
        return self.head(self.pool(self.stages(self.stem(x)))).squeeze(-1)
