"""A small 3D CNN (the RSNA-MICCAI 2021 3D baseline).
"""

from __future__ import annotations

import torch
from torch import nn

from mriviewer.ml.models.heads import _mlp32_head


class CNN3D(nn.Module):
    """Small 3D CNN of the RSNA-MICCAI 2021 MGMT 3D-CNN paper.

    ``features.0``: Conv3d(C→64, k3, pad 1) → BatchNorm3d → LeakyReLU → MaxPool3d(2);
    ``features.1``: Conv3d(64→128, k3, pad 1) → BatchNorm3d → LeakyReLU → MaxPool3d(2);
    then global average pooling and ``classifier``: Linear(128→256) → ReLU → Dropout →
    Linear(256→num_classes) (or the ``mlp32`` head).

    The two MaxPool3d layers are our addition: the paper's description lists only the
    convolution, batch-norm and activation layers, but without pooling the second convolution
    runs at full resolution, which at 32×128×128 costs far too much memory and CPU time. They use
    ``ceil_mode=True`` so a stack of fewer than 4 slices still works.

    Args:
        in_channels: input channels ``C`` (modalities).
        num_classes: output logits.
        dropout: dropout rate before the last Linear layer (0 → the default 0.3).
        head: ``"linear"`` (the paper's head above) or ``"mlp32"``.

    Shapes:
        input ``(B, C, D, H, W)``, output ``(B, num_classes)``.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 2, dropout: float = 0.0, head: str = "linear"
    ) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(cin, cout, kernel_size=3, padding=1),
                nn.BatchNorm3d(cout),
                nn.LeakyReLU(),
                nn.MaxPool3d(2, ceil_mode=True),
            )

        self.features = nn.Sequential(block(in_channels, 64), block(64, 128))
        self.pool = nn.AdaptiveAvgPool3d(1)
        if head == "mlp32":
            self.classifier = _mlp32_head(128, num_classes, dropout)
        else:
            self.classifier = nn.Sequential(
                nn.Linear(128, 256),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout or 0.3),
                nn.Linear(256, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
