"""Classification heads: a linear layer behind dropout, or a small 32-unit MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DropoutLinear(nn.Linear):
    """``nn.Linear`` with dropout on its input: ``Linear(Dropout(p)(x))``.

    One module (state-dict keys ``weight``/``bias``), so checkpoints have the same keys whatever
    the dropout rate, and torchvision's own ``fc`` weights keep their names. Input
    ``(B, in_features)``, output ``(B, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.0) -> None:
        super().__init__(in_features, out_features)
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p > 0:
            x = F.dropout(x, self.p, self.training)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.p}"


def _mlp32_head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """The EfficientNet MGMT paper's head, after global average pooling: BN → Dropout →
    Dense(32) → ReLU → BN → Dropout → Dense(num_classes). Input ``(B, features)``."""
    p = dropout or 0.4
    return nn.Sequential(
        nn.BatchNorm1d(features),
        nn.Dropout(p),
        nn.Linear(features, 32),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(32),
        nn.Dropout(p),
        nn.Linear(32, num_classes),
    )


def _make_head(kind: str, features: int, num_classes: int, dropout: float) -> nn.Module:
    if kind == "mlp32":
        return _mlp32_head(features, num_classes, dropout)
    return DropoutLinear(features, num_classes, dropout)
