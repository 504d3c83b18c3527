"""Training configuration as data: a dataclass that round-trips through JSON.

The GUI's Train panel, the ``mriviewer train`` command and the presets all build a
:class:`TrainConfig`; the engine reads nothing else. A checkpoint stores the config it was
trained with, so prediction preprocesses exactly as training did.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError

__all__ = ["TrainConfig", "MODEL_NAMES"]

#: Model names as shown in the GUI and accepted by the CLI.
MODEL_NAMES = ("resnet18-2d", "r3d-18")


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        model: one of :data:`MODEL_NAMES`.
        modalities: input channels, in order (e.g. ``["FLAIR"]`` or all four). Empty means
            the dataset's first modality.
        epochs: number of passes over the training cases.
        lr: Adam learning rate.
        batch_size: samples per step (slices for 2D models, cases for 3D).
        device: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``.
        image_size: in-plane size (pixels) every slice/volume is resampled to.
        depth: number of slices of the resampled stack for 3D models.
        slices_per_case: axial slices sampled per case for 2D models (central part of the
            head); a case's prediction is the mean of its slices' probabilities.
        val_fraction: share of cases (patients) held out for validation, stratified by label.
        seed: seeds the split, the weights initialisation and the data order.
        pretrained: ``"auto"`` (torch hub cache if present), ``"none"``, or a weights file.
        amp: bfloat16 autocast on CUDA.
        weight_decay: Adam weight decay.
        num_threads: CPU threads for torch (0 = torch's default).
    """

    model: str = "resnet18-2d"
    modalities: list[str] = field(default_factory=lambda: ["FLAIR"])
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 16
    device: str = "auto"
    image_size: int = 128
    depth: int = 32
    slices_per_case: int = 8
    val_fraction: float = 0.25
    seed: int = 0
    pretrained: str = "auto"
    amp: bool = True
    weight_decay: float = 1e-4
    num_threads: int = 0

    def validate(self) -> TrainConfig:
        """Check values; returns ``self``.

        Raises:
            ConfigError: unknown model or device, or a number out of range.
        """
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu or cuda")
        for name, lo in (("epochs", 1), ("batch_size", 1), ("image_size", 16), ("depth", 1), ("slices_per_case", 1)):
            if int(getattr(self, name)) < lo:
                raise ConfigError(f"{name} must be at least {lo}, got {getattr(self, name)}")
        if not 0.0 < self.lr < 1.0:
            raise ConfigError(f"learning rate must be in (0, 1), got {self.lr}")
        if not 0.05 <= self.val_fraction <= 0.8:
            raise ConfigError(f"val_fraction must be in [0.05, 0.8], got {self.val_fraction}")
        return self

    @property
    def is_3d(self) -> bool:
        return self.model == "r3d-18"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (configs from newer versions load)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from exc
