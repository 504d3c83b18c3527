"""Training configuration as data: a dataclass that round-trips through JSON.

The GUI's Train panel, the ``mriviewer train`` command and the presets (:mod:`.presets`) all
build a :class:`TrainConfig`; the engine reads nothing else. A checkpoint stores the config it
was trained with, so prediction preprocesses exactly as training did, and ``config.json`` of a
run records the preset, its version and every override.

Every field describes itself in its ``dataclasses.field`` metadata (label, the form's group,
help text, range and step or choices, unit, when it applies);
:func:`mriviewer.ml.config_fields.config_fields` reads it as typed descriptors, from which the GUI
generates its form and the command line lists the ``--set`` keys. :data:`CHOICES` and
:data:`RANGES` are derived from it.

Values are checked on construction from untrusted JSON (:meth:`TrainConfig.from_dict`): a wrong
type or an absurd number (``image_size`` 100000, ``"abc"``) is a :class:`ConfigError` naming
the key (its ``key`` attribute), never a traceback or a huge allocation later.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mriviewer.core.errors import ConfigError

__all__ = ["TrainConfig", "MODEL_NAMES", "MODELS_3D", "is_3d_model", "parse_set_values", "CHOICES", "RANGES",
           "GROUP_NAMES", "POSITIVE"]

#: Model names as shown in the GUI and accepted by the CLI (stable: checkpoints store them).
MODEL_NAMES = ("resnet18-2d", "efficientnet-b0-2d", "cnn3d", "r3d-18", "mc3-18", "r2plus1d-18")

#: Models that take a volume ``(B, C, D, H, W)``; the others take slices ``(B, C, H, W)``.
MODELS_3D = frozenset({"cnn3d", "r3d-18", "mc3-18", "r2plus1d-18"})

_MODELS_3D = tuple(m for m in MODEL_NAMES if m in MODELS_3D)
_MODELS_2D = tuple(m for m in MODEL_NAMES if m not in MODELS_3D)


def is_3d_model(name: str) -> bool:
    """Whether model ``name`` takes whole volumes (``True``) or axial slices (``False``)."""
    return name in MODELS_3D


#: The groups of keys (the sections of the GUI's form), in order; "Identity" is not edited.
GROUP_NAMES = ("Identity", "Model", "Input", "Augmentation", "Optimisation", "Evaluation", "Runtime")
_ID, _MODEL, _INPUT, _AUG, _OPT, _EVAL, _RUN = GROUP_NAMES

#: ``when`` value of a field that applies only while another key's number is above 0.
POSITIVE = ">0"

_AUGMENT_KEYS = {"flip_lr", "rotate_deg", "scale", "shift", "brightness"}
_FREEZE = ("none", "backbone", "batchnorm")


def _f(default, label: str, group: str, help: str, *, lo: float | None = None, hi: float | None = None,  # noqa: A002
       step: float | None = None, log: bool = False, choices: tuple[str, ...] = (), unit: str = "",
       when: tuple[str, Any] | None = None, suggest: tuple[str, ...] = (), browse: str = "", note: str = ""):
    """A dataclass field with its metadata (the keys of
    :class:`~mriviewer.ml.config_fields.ConfigField`); a list or dict default becomes a factory of
    copies."""
    meta: dict[str, Any] = {"label": label, "group": group, "help": help}
    extra = {"range": (lo, hi) if lo is not None else None, "step": step, "log_step": log or None,
             "choices": tuple(choices) or None, "unit": unit or None, "when": when,
             "suggestions": tuple(suggest) or None, "browse": browse or None, "note": note or None}
    meta.update({k: v for k, v in extra.items() if v is not None})
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


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

    preset: str = _f("", "Preset", _ID, "The preset this config came from (empty for none).")
    preset_version: int = _f(0, "Preset version", _ID, "The preset's version (0 for none).", lo=0, hi=10_000)
    overrides: dict = _f({}, "Overrides", _ID, "{key: value} changed on top of the preset (recorded, not re-applied).")

    model: str = _f("resnet18-2d", "Model", _MODEL, "The network: 2D models take axial slices, 3D models the "
                    "slice stack.", choices=MODEL_NAMES)
    modalities: list = _f(["FLAIR"], "Modalities", _MODEL, "Input channels, in order (e.g. [\"FLAIR\"] or all "
                          "four). Empty means the dataset's first modality.")
    modality_fallback: dict = _f({}, "Modality fallback", _MODEL, "{wanted: [substitute, …]}: use a substitute "
                                 "where a case lacks a modality (the grading paper used T1 for healthy brains and "
                                 "T1ce for tumours). Every substitution is logged and checked by the confound guard.")
    pretrained: str = _f("auto", "Pretrained weights", _MODEL, "\"auto\" (torch hub cache if present), \"none\", or "
                         "a weights file.", browse="Weights (*.pt *.pth)")
    stem: str = _f("adapt", "Stem", _MODEL, "\"adapt\" (pretrained RGB stem averaged over colour) or \"random\".",
                   choices=("adapt", "random"))
    head: str = _f("linear", "Head", _MODEL, "\"linear\" or \"mlp32\" (the EfficientNet MGMT paper's head).",
                   choices=("linear", "mlp32"))
    dropout: float = _f(0.0, "Dropout", _MODEL, "Dropout before the last layer (mlp32: in both of its dropout "
                        "layers).", lo=0.0, hi=0.95, step=0.05)

    image_size: int = _f(128, "Image size", _INPUT, "In-plane size of the network grid.", lo=16, hi=1024, step=16,
                         unit="px")
    depth: int = _f(32, "Depth", _INPUT, "Slices of the stack for 3D models.", lo=1, hi=512, unit="slices",
                    when=("model", _MODELS_3D))
    depth_mode: str = _f("resize", "Depth mode", _INPUT, "\"resize\" (interpolate the slice axis to depth) or "
                         "\"pad_crop\" (keep the slices, zero-pad front and back or centre-crop to depth).",
                         choices=("resize", "pad_crop"), when=("model", _MODELS_3D))
    spacing_mm: float = _f(0.0, "Voxel spacing", _INPUT, "> 0: resample to isotropic voxels of this size first, "
                           "then centre pad/crop every axis to the network grid (the field of view stays in "
                           "millimetres); 0: off.", lo=0.0, hi=20.0, step=0.5, unit="mm")
    slices_per_case: int = _f(8, "Slices per case", _INPUT, "Axial slices per case for 2D models.", lo=1, hi=1024,
                              when=("model", _MODELS_2D))
    slice_range: list = _f([0.25, 0.75], "Slice range", _INPUT, "[low, high] fractions of the head's axial extent "
                           "the 2D slices are taken from ([0.4, 0.6] = the middle 20 %).", when=("model", _MODELS_2D))
    intensity: str = _f("percentile", "Intensity", _INPUT, "\"percentile\" (0.5–99.5 percentiles → [0, 1]) or "
                        "\"minmax\" (→ [0, 1]).", choices=("percentile", "minmax"))
    normalise: str = _f("fixed", "Normalise", _INPUT, "After scaling to [0, 1]: \"fixed\" ((x − 0.5) / 0.25), "
                        "\"imagenet\" (ImageNet mean/std; their channel means for grey input) or \"none\".",
                        choices=("fixed", "imagenet", "none"))
    color: str = _f("grey", "Colour", _INPUT, "\"rgb\" keeps 2D images' three colour channels; \"grey\" converts.",
                    choices=("grey", "rgb"), when=("model", _MODELS_2D))
    per_modality: bool = _f(False, "Per modality", _INPUT, "Train one model per selected modality and report each.")
    brain_extraction: str = _f("none", "Brain extraction", _INPUT, "\"deepbet\" skull-strips 3D cases before "
                               "everything else (the mask of the first modality applies to all), for unstripped "
                               "inputs such as IXI.", choices=("none", "deepbet"))
    augment: dict = _f({"flip_lr": 0.5}, "Augmentation", _AUG, "{\"flip_lr\": p, \"rotate_deg\": d, \"scale\": "
                       "[lo, hi], \"shift\": fraction, \"brightness\": [lo, hi]} (MONAI for volumes, torchvision v2 "
                       "for slices).", note="JSON object with any of: <tt>flip_lr</tt> (probability), "
                       "<tt>rotate_deg</tt>, <tt>scale</tt> [low, high], <tt>shift</tt> (fraction), "
                       "<tt>brightness</tt> [low, high]. <tt>{}</tt> = none.")

    epochs: int = _f(5, "Epochs", _OPT, "Epochs of the first training phase.", lo=1, hi=100_000)
    batch_size: int = _f(16, "Batch size", _OPT, "Samples per batch (slices for 2D models, volumes for 3D).", lo=1,
                         hi=4096)
    optimizer: str = _f("adam", "Optimiser", _OPT, "adam, adamw or sgd.", choices=("adam", "adamw", "sgd"))
    lr: float = _f(1e-3, "Learning rate", _OPT, "The optimiser's learning rate (arrow keys step within the "
                   "decade).", lo=1e-9, hi=1.0, step=1e-5, log=True)
    momentum: float = _f(0.9, "Momentum", _OPT, "SGD momentum.", lo=0.0, hi=1.0, step=0.01,
                         when=("optimizer", ("sgd",)))
    weight_decay: float = _f(1e-4, "Weight decay", _OPT, "L2 weight decay of the optimiser.", lo=0.0, hi=1.0,
                             step=1e-5, log=True)
    scheduler: str = _f("none", "Scheduler", _OPT, "The learning-rate schedule: none, step (step_size, gamma), "
                        "plateau (plateau_patience, gamma) or exponential (gamma per epoch).",
                        choices=("none", "step", "plateau", "exponential"))
    step_size: int = _f(7, "Step size", _OPT, "step schedule: epochs between the rate's reductions.", lo=1,
                        hi=100_000, unit="epochs", when=("scheduler", ("step",)))
    gamma: float = _f(0.1, "Gamma", _OPT, "The factor the schedule multiplies the rate by.", lo=1e-6, hi=1.0,
                      step=0.01, when=("scheduler", ("step", "plateau", "exponential")))
    plateau_patience: int = _f(3, "Plateau patience", _OPT, "plateau schedule: epochs without improvement before "
                               "the rate drops.", lo=0, hi=10_000, unit="epochs", when=("scheduler", ("plateau",)))
    loss: str = _f("ce", "Loss", _OPT, "ce, weighted_ce (W_c = 1 − n_c / N) or bce (one logit, binary tasks).",
                   choices=("ce", "weighted_ce", "bce"))
    monitor: str = _f("val_auc", "Monitor", _OPT, "The validation metric that chooses the checkpoint and drives "
                      "early stopping.", choices=("val_auc", "val_loss", "val_accuracy"))
    early_stopping: int = _f(0, "Early stopping", _OPT, "Patience in epochs (0 = off).", lo=0, hi=100_000,
                             unit="epochs")
    freeze: str = _f("none", "Freeze", _OPT, "\"backbone\" trains only the head in the first phase.",
                     choices=_FREEZE)
    finetune_epochs: int = _f(0, "Fine-tune epochs", _OPT, "Epochs of a second phase after the first (0 = none).",
                              lo=0, hi=100_000)
    finetune_lr: float = _f(1e-5, "Fine-tune LR", _OPT, "Learning rate of the fine-tune phase.", lo=1e-9, hi=1.0,
                            step=1e-5, log=True, when=("finetune_epochs", POSITIVE))
    finetune_batch_size: int = _f(0, "Fine-tune batch", _OPT, "Batch size of the fine-tune phase (0 = same).",
                                  lo=0, hi=4096, when=("finetune_epochs", POSITIVE))
    finetune_freeze: str = _f("batchnorm", "Fine-tune freeze", _OPT, "What stays frozen while fine-tuning "
                              "(\"batchnorm\": all layers but BatchNorm).", choices=_FREEZE,
                              when=("finetune_epochs", POSITIVE))

    split: list = _f([0.7, 0.15, 0.15], "Split", _EVAL, "[train, validation, test] fractions for a holdout run.")
    folds: int = _f(0, "Folds", _EVAL, "≥ 2: k-fold cross-validation (test = each fold; validation carved from the "
                    "training folds with the split's validation share); 0 = holdout.", lo=0, hi=50)
    seed: int = _f(0, "Seed", _EVAL, "Seeds the split, the weights initialisation, augmentation and data order.",
                   lo=0, hi=2**32 - 1)

    device: str = _f("auto", "Device", _RUN, "\"auto\" (CUDA when available), \"cuda\", \"cuda:N\" or \"cpu\".",
                     suggest=("auto", "cpu", "cuda"))
    amp: str = _f("auto", "Mixed precision", _RUN, "\"auto\" (bf16 autocast on CUDA when supported), \"bf16\" (CUDA "
                  "or CPU), \"fp16\" (CUDA, with gradient scaling) or \"off\".", choices=("auto", "bf16", "fp16", "off"))
    num_workers: int = _f(0, "Loader workers", _RUN, "DataLoader worker processes (0 = in the training process).",
                          lo=0, hi=64)
    num_threads: int = _f(0, "CPU threads", _RUN, "CPU threads for torch (0 = torch's default).", lo=0, hi=1024)

    # ------------------------------------------------------------------ checks
    def validate(self) -> TrainConfig:
        """Check types and values; returns ``self``.

        Raises:
            ConfigError: a wrong type, an unknown choice or a number out of range, naming the key
                (its ``key`` attribute).
        """
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), type(_default(f)))
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: unknown value {getattr(self, key)!r}; choose one of {', '.join(allowed)}",
                                  key=key)
        for key, (lo, hi) in RANGES.items():
            v = getattr(self, key)
            if not (lo <= v <= hi) or (isinstance(v, float) and not math.isfinite(v)):
                raise ConfigError(f"{key} must be between {lo:g} and {hi:g}, got {v!r}", key=key)
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: unknown value {self.device!r}; use auto, cpu, cuda or cuda:N", key="device")
        self._validate_lists()
        self._validate_groups()
        if self.loss == "bce" and self.head not in ("linear", "mlp32"):
            raise ConfigError("loss bce needs a head with one output", key="loss")
        return self

    def _validate_lists(self) -> None:
        """The checks of ``modalities``, ``slice_range``, ``split`` and ``folds``."""
        if not all(isinstance(m, str) and m for m in self.modalities):
            raise ConfigError(f"modalities must be names, got {self.modalities!r}", key="modalities")
        if len(self.modalities) > 8:
            raise ConfigError(f"modalities: at most 8 input channels, got {len(self.modalities)}", key="modalities")
        sr = self.slice_range
        if len(sr) != 2 or not all(_is_number(v) for v in sr) or not 0.0 <= sr[0] < sr[1] <= 1.0:
            raise ConfigError(f"slice_range must be [low, high] with 0 <= low < high <= 1, got {sr!r}",
                              key="slice_range")
        sp = self.split
        if len(sp) != 3 or not all(_is_number(v) and v > 0 for v in sp) or abs(sum(sp) - 1.0) > 1e-6:
            raise ConfigError(f"split must be three positive fractions [train, validation, test] summing to 1, "
                              f"got {sp!r}", key="split")
        if min(sp[1], sp[2]) < 0.02:
            raise ConfigError(f"split: validation and test need at least 2 % each, got {sp!r}", key="split")
        if self.folds == 1:
            raise ConfigError("folds must be 0 (holdout) or at least 2", key="folds")

    def _validate_groups(self) -> None:
        """The checks of the values inside ``augment`` and ``modality_fallback``."""
        unknown = set(self.augment) - _AUGMENT_KEYS
        if unknown:
            raise ConfigError(f"augment: unknown key(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(_AUGMENT_KEYS))}", key="augment")
        for key in ("scale", "brightness"):
            v = self.augment.get(key)
            if v is not None and (not isinstance(v, list) or len(v) != 2
                                  or not all(_is_number(x) and 0 < x < 10 for x in v) or v[0] > v[1]):
                raise ConfigError(f"augment.{key} must be [low, high] with 0 < low <= high < 10, got {v!r}",
                                  key=f"augment.{key}")
        for key, hi in (("flip_lr", 1.0), ("rotate_deg", 180.0), ("shift", 0.5)):
            v = self.augment.get(key)
            if v is not None and (not _is_number(v) or not 0 <= v <= hi):
                raise ConfigError(f"augment.{key} must be between 0 and {hi:g}, got {v!r}", key=f"augment.{key}")
        for want, subs in self.modality_fallback.items():
            if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
                raise ConfigError(f"modality_fallback.{want} must be a list of modality names, got {subs!r}",
                                  key=f"modality_fallback.{want}")

    # ------------------------------------------------------------------ derived
    @property
    def is_3d(self) -> bool:
        """Whether :attr:`model` takes whole volumes."""
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
        """Epochs over every phase."""
        return sum(p["epochs"] for p in self.phases())

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        """Every field as plain JSON-able values."""
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
                raise ConfigError(f"--set {key}: unknown key; known keys: {', '.join(sorted(known))}", key=key)
            if sub:
                if not isinstance(data[top], dict):
                    raise ConfigError(f"--set {key}: {top} is not a group of values", key=key)
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
            raise ConfigError(f"{path}: {exc}", key=exc.key) from exc


def _meta(what: str) -> dict:
    """``{key: metadata[what]}`` of the fields whose metadata has ``what``."""
    return {f.name: f.metadata[what] for f in fields(TrainConfig) if what in f.metadata}


#: Allowed values of the string options (from the fields' metadata).
CHOICES: dict[str, tuple[str, ...]] = _meta("choices")

#: Inclusive numeric ranges ``(low, high)``; beyond them a value is refused as absurd (from the
#: fields' metadata).
RANGES: dict[str, tuple[float, float]] = _meta("range")


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
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. lr=0.01", key=key.strip() or None)
        raw = raw.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            value = [v.strip() for v in raw.split(",")] if "," in raw else raw
        out[key.strip()] = value
    return out


# ---------------------------------------------------------------------------- type checks
def _default(f):
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
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}", key=name)
