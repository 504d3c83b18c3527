"""Training configuration as data: a dataclass that round-trips through JSON.

The GUI's Train panel, the ``mriviewer train`` command and the presets (:mod:`.presets`) all
build a :class:`TrainConfig`; the engine reads nothing else. A checkpoint stores the config it
was trained with, so prediction preprocesses exactly as training did, and ``config.json`` of a
run records the preset, its version and every override.

Values are checked on construction from untrusted JSON (:meth:`TrainConfig.from_dict`): a wrong
type or an absurd number (``image_size`` 100000, ``"abc"``) is a :class:`ConfigError` naming
the key, never a traceback or a huge allocation later.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mriviewer.core.errors import ConfigError

__all__ = ["TrainConfig", "MODEL_NAMES", "MODELS_3D", "is_3d_model", "parse_set_values", "CHOICES"]

#: Model names as shown in the GUI and accepted by the CLI (stable: checkpoints store them).
MODEL_NAMES = ("resnet18-2d", "efficientnet-b0-2d", "cnn3d", "r3d-18", "mc3-18", "r2plus1d-18")

#: Models that take a volume ``(B, C, D, H, W)``; the others take slices ``(B, C, H, W)``.
MODELS_3D = frozenset({"cnn3d", "r3d-18", "mc3-18", "r2plus1d-18"})


def is_3d_model(name: str) -> bool:
    """Whether model ``name`` takes whole volumes (``True``) or axial slices (``False``)."""
    return name in MODELS_3D


#: Allowed values of the string options.
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODEL_NAMES,
    "stem": ("adapt", "random"),
    "head": ("linear", "mlp32"),
    "depth_mode": ("resize", "pad_crop"),
    "intensity": ("percentile", "minmax"),
    "normalise": ("fixed", "imagenet", "none"),
    "color": ("grey", "rgb"),
    "optimizer": ("adam", "adamw", "sgd"),
    "scheduler": ("none", "step", "plateau", "exponential"),
    "loss": ("ce", "weighted_ce", "bce"),
    "monitor": ("val_auc", "val_loss", "val_accuracy"),
    "freeze": ("none", "backbone", "batchnorm"),
    "finetune_freeze": ("none", "backbone", "batchnorm"),
    "amp": ("auto", "bf16", "fp16", "off"),
    "brain_extraction": ("none", "deepbet"),
}

#: Inclusive numeric ranges ``(low, high)``; beyond them a value is refused as absurd.
RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 100_000), "batch_size": (1, 4096), "image_size": (16, 1024), "depth": (1, 512),
    "slices_per_case": (1, 1024), "dropout": (0.0, 0.95), "lr": (1e-9, 1.0), "momentum": (0.0, 1.0),
    "weight_decay": (0.0, 1.0), "step_size": (1, 100_000), "gamma": (1e-6, 1.0),
    "plateau_patience": (0, 10_000), "early_stopping": (0, 100_000), "finetune_epochs": (0, 100_000),
    "finetune_lr": (1e-9, 1.0), "finetune_batch_size": (0, 4096), "folds": (0, 50),
    "seed": (0, 2**32 - 1), "num_workers": (0, 64), "num_threads": (0, 1024), "spacing_mm": (0.0, 20.0),
    "preset_version": (0, 10_000),
}

_AUGMENT_KEYS = {"flip_lr", "rotate_deg", "scale", "shift", "brightness"}


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Identity:
        preset, preset_version: the preset this config came from (``""``/0 for none).
        overrides: ``{key: value}`` changed on top of the preset (recorded, not re-applied).

    Model:
        model: one of :data:`MODEL_NAMES`.
        modalities: input channels, in order (e.g. ``["FLAIR"]`` or all four). Empty means the
            dataset's first modality.
        modality_fallback: ``{wanted: [substitute, …]}``: use a substitute where a case lacks a
            modality (the grading paper used T1 for healthy brains and T1ce for tumours). Every
            substitution is logged and checked by the confound guard.
        pretrained: ``"auto"`` (torch hub cache if present), ``"none"``, or a weights file.
        stem: ``"adapt"`` (pretrained RGB stem averaged over colour) or ``"random"``.
        head: ``"linear"`` or ``"mlp32"`` (the EfficientNet MGMT paper's head).
        dropout: dropout before the last layer (``mlp32``: in both of its dropout layers).

    Input (see :mod:`.data`):
        image_size: in-plane size (pixels) of the network grid.
        depth: slices of the stack for 3D models.
        depth_mode: ``"resize"`` (interpolate the slice axis to ``depth``) or ``"pad_crop"``
            (keep the slices, zero-pad front and back or centre-crop to ``depth``).
        spacing_mm: > 0: resample to isotropic voxels of this size first, then centre pad/crop
            every axis to the network grid (the field of view stays in millimetres).
        slices_per_case: axial slices per case for 2D models.
        slice_range: ``[low, high]`` fractions of the head's axial extent the 2D slices are taken
            from (``[0.4, 0.6]`` = the middle 20 %).
        intensity: ``"percentile"`` (0.5–99.5 percentiles → [0, 1]) or ``"minmax"`` (→ [0, 1]).
        normalise: after scaling to [0, 1]: ``"fixed"`` ((x − 0.5) / 0.25), ``"imagenet"`` (ImageNet
            mean/std; their channel means for grey input) or ``"none"``.
        color: ``"rgb"`` keeps 2D images' three colour channels; ``"grey"`` converts.
        per_modality: train one model per selected modality and report each.
        brain_extraction: ``"deepbet"`` skull-strips 3D cases before everything else (the mask of
            the first modality applies to all; :mod:`.brain`), for unstripped inputs such as IXI.
        augment: ``{"flip_lr": p, "rotate_deg": d, "scale": [lo, hi], "shift": fraction,
            "brightness": [lo, hi]}`` (MONAI for volumes, torchvision v2 for slices).

    Optimisation:
        epochs, batch_size, optimizer (``adam``/``adamw``/``sgd``), lr, momentum (SGD),
        weight_decay; scheduler ``none``/``step`` (``step_size``, ``gamma``)/``plateau``
        (``plateau_patience``, ``gamma``)/``exponential`` (``gamma`` per epoch); loss ``ce``,
        ``weighted_ce`` (W_c = 1 − n_c / N) or ``bce`` (one logit, binary tasks);
        monitor: the validation metric that chooses the checkpoint and drives early stopping;
        early_stopping: patience in epochs (0 = off).
        freeze: ``"backbone"`` trains only the head in the first phase; then ``finetune_epochs``
        epochs with ``finetune_freeze`` (``"batchnorm"``: all layers but BatchNorm),
        ``finetune_lr`` and ``finetune_batch_size`` (0 = same).

    Evaluation:
        split: ``[train, validation, test]`` fractions for a holdout run.
        folds: ≥ 2: k-fold cross-validation (test = each fold; validation carved from the
            training folds with the split's validation share); 0 = holdout.
        seed: seeds the split, the weights initialisation, augmentation and data order.

    Runtime:
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cuda:N"`` or ``"cpu"``.
        amp: ``"auto"`` (bf16 autocast on CUDA when supported), ``"bf16"`` (CUDA or CPU),
            ``"fp16"`` (CUDA, with gradient scaling) or ``"off"``.
        num_workers: DataLoader worker processes (0 = in the training process).
        num_threads: CPU threads for torch (0 = torch's default).
    """

    preset: str = ""
    preset_version: int = 0
    overrides: dict = field(default_factory=dict)

    model: str = "resnet18-2d"
    modalities: list = field(default_factory=lambda: ["FLAIR"])
    modality_fallback: dict = field(default_factory=dict)
    pretrained: str = "auto"
    stem: str = "adapt"
    head: str = "linear"
    dropout: float = 0.0

    image_size: int = 128
    depth: int = 32
    depth_mode: str = "resize"
    spacing_mm: float = 0.0
    slices_per_case: int = 8
    slice_range: list = field(default_factory=lambda: [0.25, 0.75])
    intensity: str = "percentile"
    normalise: str = "fixed"
    color: str = "grey"
    per_modality: bool = False
    brain_extraction: str = "none"
    augment: dict = field(default_factory=lambda: {"flip_lr": 0.5})

    epochs: int = 5
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "none"
    step_size: int = 7
    gamma: float = 0.1
    plateau_patience: int = 3
    loss: str = "ce"
    monitor: str = "val_auc"
    early_stopping: int = 0
    freeze: str = "none"
    finetune_epochs: int = 0
    finetune_lr: float = 1e-5
    finetune_batch_size: int = 0
    finetune_freeze: str = "batchnorm"

    split: list = field(default_factory=lambda: [0.7, 0.15, 0.15])
    folds: int = 0
    seed: int = 0

    device: str = "auto"
    amp: str = "auto"
    num_workers: int = 0
    num_threads: int = 0

    # ------------------------------------------------------------------ checks
    def validate(self) -> TrainConfig:
        """Check types and values; returns ``self``.

        Raises:
            ConfigError: a wrong type, an unknown choice or a number out of range, naming the key.
        """
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), type(_default(f)))
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: unknown value {getattr(self, key)!r}; choose one of {', '.join(allowed)}")
        for key, (lo, hi) in RANGES.items():
            v = getattr(self, key)
            if not (lo <= v <= hi) or (isinstance(v, float) and not math.isfinite(v)):
                raise ConfigError(f"{key} must be between {lo:g} and {hi:g}, got {v!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: unknown value {self.device!r}; use auto, cpu, cuda or cuda:N")
        if not all(isinstance(m, str) and m for m in self.modalities):
            raise ConfigError(f"modalities must be names, got {self.modalities!r}")
        if len(self.modalities) > 8:
            raise ConfigError(f"modalities: at most 8 input channels, got {len(self.modalities)}")
        sr = self.slice_range
        if len(sr) != 2 or not all(_is_number(v) for v in sr) or not 0.0 <= sr[0] < sr[1] <= 1.0:
            raise ConfigError(f"slice_range must be [low, high] with 0 <= low < high <= 1, got {sr!r}")
        sp = self.split
        if len(sp) != 3 or not all(_is_number(v) and v > 0 for v in sp) or abs(sum(sp) - 1.0) > 1e-6:
            raise ConfigError(f"split must be three positive fractions [train, validation, test] summing to 1, got {sp!r}")
        if min(sp[1], sp[2]) < 0.02:
            raise ConfigError(f"split: validation and test need at least 2 % each, got {sp!r}")
        if self.folds == 1:
            raise ConfigError("folds must be 0 (holdout) or at least 2")
        unknown = set(self.augment) - _AUGMENT_KEYS
        if unknown:
            raise ConfigError(f"augment: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_AUGMENT_KEYS))}")
        for key in ("scale", "brightness"):
            v = self.augment.get(key)
            if v is not None and (not isinstance(v, list) or len(v) != 2 or not all(_is_number(x) and 0 < x < 10 for x in v) or v[0] > v[1]):
                raise ConfigError(f"augment.{key} must be [low, high] with 0 < low <= high < 10, got {v!r}")
        for key, hi in (("flip_lr", 1.0), ("rotate_deg", 180.0), ("shift", 0.5)):
            v = self.augment.get(key)
            if v is not None and (not _is_number(v) or not 0 <= v <= hi):
                raise ConfigError(f"augment.{key} must be between 0 and {hi:g}, got {v!r}")
        for want, subs in self.modality_fallback.items():
            if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
                raise ConfigError(f"modality_fallback.{want} must be a list of modality names, got {subs!r}")
        if self.loss == "bce" and self.head not in ("linear", "mlp32"):
            raise ConfigError("loss bce needs a head with one output")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def is_3d(self) -> bool:
        return is_3d_model(self.model)

    def phases(self) -> list[dict]:
        """The training phases: ``[{"name", "epochs", "lr", "batch_size", "freeze"}]`` — one
        phase, or head-only then fine-tune when ``freeze == "backbone"`` and
        ``finetune_epochs > 0``."""
        out = [{"name": "train" if self.freeze == "none" else f"train ({self.freeze} frozen)",
                "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size, "freeze": self.freeze}]
        if self.finetune_epochs > 0:
            out.append({"name": "fine-tune", "epochs": self.finetune_epochs, "lr": self.finetune_lr,
                        "batch_size": self.finetune_batch_size or self.batch_size, "freeze": self.finetune_freeze})
        return out

    @property
    def total_epochs(self) -> int:
        return sum(p["epochs"] for p in self.phases())

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a dict (a checkpoint's or ``config.json``), validated.

        Unknown keys are ignored (configs from newer versions load); keys of version-1 configs
        (``amp`` as a bool, ``val_fraction``) are translated.

        Raises:
            ConfigError: not a dict, or a value of the wrong type or out of range.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        if isinstance(data.get("amp"), bool):
            data["amp"] = "auto" if data["amp"] else "off"
        data.pop("val_fraction", None)  # version 1 had no test set; its split is in the checkpoint
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for f in fields(cls):
            if f.name in kwargs:
                kwargs[f.name] = _coerce(f.name, kwargs[f.name], type(_default(f)))
        return cls(**kwargs).validate()

    def with_overrides(self, values: dict) -> TrainConfig:
        """A copy with ``values`` applied (dotted keys reach into dicts, e.g. ``augment.flip_lr``)
        and recorded in :attr:`overrides`; validated.

        Raises:
            ConfigError: unknown key, wrong type or value out of range.
        """
        data = self.to_dict()
        known = {f.name for f in fields(self)} - {"overrides", "preset", "preset_version"}
        for key, value in values.items():
            top, _, sub = key.partition(".")
            if top not in known:
                raise ConfigError(f"--set {key}: unknown key; known keys: {', '.join(sorted(known))}")
            if sub:
                if not isinstance(data[top], dict):
                    raise ConfigError(f"--set {key}: {top} is not a group of values")
                data[top] = dict(data[top])
                data[top][sub] = value
            else:
                data[top] = value
        data["overrides"] = {**self.overrides, **values}
        return TrainConfig.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write as JSON (to a temporary name, then renamed).

        Raises:
            MriViewerError: the file cannot be written (naming it).
        """
        from mriviewer.core.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a ``config.json``.

        Raises:
            ConfigError: unreadable file or invalid content.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def parse_set_values(items: list[str]) -> dict:
    """``["lr=0.01", "split=[0.8,0.1,0.1]", "modalities=FLAIR,T2w"]`` → a dict of values.

    A value is read as JSON when it parses (numbers, lists, true/false), else as text; a text
    value with commas becomes a list of strings (``modalities=FLAIR,T2w``).

    Raises:
        ConfigError: an item without ``=``.
    """
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. lr=0.01")
        raw = raw.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            value = [v.strip() for v in raw.split(",")] if "," in raw else raw
        out[key.strip()] = value
    return out


# ---------------------------------------------------------------------------- type checks
def _default(f):
    from dataclasses import MISSING

    return f.default_factory() if f.default is MISSING else f.default


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _coerce(name: str, value, kind: type):
    """Convert JSON-ish ``value`` to ``kind`` where that is lossless (``2.0`` → ``2``, ``1`` →
    ``1.0``, a single string → a one-item list for list keys); otherwise leave it for
    :func:`_check_type` to refuse."""
    if kind is int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list and isinstance(value, str):
        return [value]
    if kind is list and isinstance(value, tuple):
        return list(value)
    return value


def _check_type(name: str, value, kind: type) -> None:
    ok = (
        (kind is bool and isinstance(value, bool))
        or (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind is float and _is_number(value))
        or (kind not in (bool, int, float) and isinstance(value, kind))
    )
    if not ok:
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
