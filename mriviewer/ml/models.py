"""Classifier networks by name, with offline pretrained-weight loading.

Six networks, named as in :data:`~mriviewer.ml.config.MODEL_NAMES` (the names are stable:
checkpoints store them):

* ``resnet18-2d`` — torchvision ResNet-18 (He et al., 2016, "Deep Residual Learning for Image
  Recognition") on single axial slices; the transfer-learning baseline of the RSNA-MICCAI 2021
  MGMT papers. Pretrained: ImageNet-1k (``ResNet18_Weights.IMAGENET1K_V1``).
* ``efficientnet-b0-2d`` — torchvision EfficientNet-B0 (Tan & Le, 2019, "EfficientNet:
  Rethinking Model Scaling for Convolutional Neural Networks") on single slices, as in the
  EfficientNet MGMT paper. Pretrained: ImageNet-1k (``EfficientNet_B0_Weights.IMAGENET1K_V1``).
* ``cnn3d`` — the small 3D CNN of the RSNA-MICCAI MGMT 3D-CNN paper (:class:`CNN3D`); no
  pretrained weights exist.
* ``r3d-18``, ``mc3-18``, ``r2plus1d-18`` — torchvision video networks R3D-18, MC3-18 and
  R(2+1)D-18 (Tran et al., 2018, "A Closer Look at Spatiotemporal Convolutions for Action
  Recognition") with the slice axis as the video's time axis; used for HGG/LGG grading.
  Pretrained: Kinetics-400 (``*_Weights.KINETICS400_V1``).

Input layout: 2D models take ``(B, C, H, W)``; 3D models take ``(B, C, D, H, W)`` with ``D`` the
slice axis. ``C`` is the number of MRI modalities (or 3 for RGB images). Every model returns
logits of shape ``(B, num_classes)``.

The first convolution (the *stem*) takes ``C`` channels. With ``stem="adapt"`` and pretrained RGB
weights its kernel is the RGB mean repeated over ``C`` channels and scaled by ``3 / C``: for
``C == 1`` this is exactly the pretrained RGB network applied to the greyscale image replicated
to three channels (and for any ``C``, to one image replicated over all ``C`` channels), so the
activation scale is kept. With ``stem="random"`` the stem starts from random weights and only
the rest is pretrained (as in the HGG/LGG grading paper). The last layer (the *head*) is always
new unless its shape happens to match the file's.

Weights are never downloaded: they come from the torch hub cache
(``torch.hub.get_dir()/checkpoints``, where torchvision itself keeps them) or a file the user
names.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import CheckpointError, ConfigError
from .config import MODEL_NAMES, MODELS_3D, is_3d_model

log = logging.getLogger(__name__)

__all__ = [
    "MODEL_INFO",
    "MODEL_NAMES",
    "MODELS_3D",
    "CNN3D",
    "DropoutLinear",
    "build_model",
    "cam_layer_candidates",
    "freeze",
    "head_module_names",
    "hub_weights_path",
    "is_3d_model",
    "keep_frozen_bn_eval",
    "target_layer_name",
]

#: Stem options of :func:`build_model`.
STEM_MODES = ("adapt", "random")
#: Head options of :func:`build_model`.
HEAD_TYPES = ("linear", "mlp32")
#: Modes of :func:`freeze`.
FREEZE_MODES = ("none", "backbone", "batchnorm")


@dataclass(frozen=True)
class _Spec:
    stem: str  # dotted name of the first convolution (the only layer that sees C channels)
    head: str  # attribute holding the head (everything after global average pooling)
    cam: str  # layer Grad-CAM reads: the last block with spatial extent
    weights: str | None  # torchvision weights enum, "Module.Enum.MEMBER"
    # Earlier Grad-CAM layers, deepest first: the last block of each earlier resolution stage.
    cam_earlier: tuple[str, ...] = ()


_SPECS: dict[str, _Spec] = {
    "resnet18-2d": _Spec(
        "conv1", "fc", "layer4", "models.ResNet18_Weights.IMAGENET1K_V1", ("layer3", "layer2", "layer1")
    ),
    # EfficientNet-B0 stages (Tan & Le 2019, Table 1): features.1 1/2, .2 1/4, .3 1/8, .4-.5 1/16,
    # .6-.8 1/32; the last block of each resolution is .5 (1/16), .3 (1/8), .2 (1/4).
    "efficientnet-b0-2d": _Spec(
        "features.0.0", "classifier", "features.8", "models.EfficientNet_B0_Weights.IMAGENET1K_V1",
        ("features.5", "features.3", "features.2"),
    ),
    "cnn3d": _Spec("features.0.0", "classifier", "features.1", None, ("features.0",)),
    "r3d-18": _Spec(
        "stem.0", "fc", "layer4", "models.video.R3D_18_Weights.KINETICS400_V1", ("layer3", "layer2", "layer1")
    ),
    "mc3-18": _Spec(
        "stem.0", "fc", "layer4", "models.video.MC3_18_Weights.KINETICS400_V1", ("layer3", "layer2", "layer1")
    ),
    "r2plus1d-18": _Spec(
        "stem.0", "fc", "layer4", "models.video.R2Plus1D_18_Weights.KINETICS400_V1",
        ("layer3", "layer2", "layer1"),
    ),
}
assert set(_SPECS) == set(MODEL_NAMES)

#: One line per model (network, paper, pretrained source, input), e.g. for tooltips.
MODEL_INFO: dict[str, str] = {
    "resnet18-2d": "ResNet-18 (He et al. 2016, torchvision) on axial slices (B, C, H, W); "
    "pretrained on ImageNet-1k.",
    "efficientnet-b0-2d": "EfficientNet-B0 (Tan & Le 2019, torchvision) on axial slices "
    "(B, C, H, W); pretrained on ImageNet-1k.",
    "cnn3d": "Small 3D CNN (RSNA-MICCAI MGMT 3D-CNN paper: 2 conv blocks, 64/128 filters) on the "
    "volume (B, C, D, H, W); no pretrained weights.",
    "r3d-18": "R3D-18 video ResNet (Tran et al. 2018, torchvision) on the volume "
    "(B, C, D, H, W), slices as time; pretrained on Kinetics-400.",
    "mc3-18": "MC3-18 mixed 3D/2D convolutions (Tran et al. 2018, torchvision) on the volume "
    "(B, C, D, H, W), slices as time; pretrained on Kinetics-400.",
    "r2plus1d-18": "R(2+1)D-18 factorised convolutions (Tran et al. 2018, torchvision) on the "
    "volume (B, C, D, H, W), slices as time; pretrained on Kinetics-400.",
}


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}") from None


def _weights_enum(name: str):
    """The torchvision weights enum member of model ``name`` (``None`` for cnn3d)."""
    ref = _spec(name).weights
    if ref is None:
        return None
    import torchvision

    obj = torchvision
    for part in ref.split("."):
        obj = getattr(obj, part)
    return obj


def hub_weights_path(name: str) -> Path | None:
    """Where torchvision caches the pretrained weights of model ``name``.

    Args:
        name: a model name of :data:`MODEL_NAMES`.

    Returns:
        ``<torch hub dir>/checkpoints/<file name of the weights URL>`` (the file need not
        exist), or ``None`` for ``cnn3d``, which has no pretrained weights.

    Raises:
        ConfigError: unknown model name.
    """
    weights = _weights_enum(name)
    if weights is None:
        return None
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


def target_layer_name(name: str) -> str:
    """The layer Grad-CAM reads for model ``name``: the last block with spatial extent.

    ``layer4`` for ResNet-18 and the video networks, ``features.8`` (the final 1×1 conv block)
    for EfficientNet-B0, ``features.1`` (the second conv block) for ``cnn3d``. The name is a
    dotted module path as ``monai.visualize.GradCAM(target_layers=...)`` expects.

    Raises:
        ConfigError: unknown model name.
    """
    return _spec(name).cam


def cam_layer_candidates(name: str) -> tuple[str, ...]:
    """Layers Grad-CAM may read for model ``name``, deepest (coarsest) first:
    :func:`target_layer_name`, then the last block of each earlier resolution stage.

    ``("layer4", "layer3", "layer2", "layer1")`` for ResNet-18 and the video ResNets (R3D-18 and
    R(2+1)D-18 halve ``D``, ``H`` and ``W`` in ``layer2``-``layer4``; MC3-18 only ``H`` and ``W``
    there, Tran et al. 2018), ``("features.8", "features.5", "features.3", "features.2")`` for
    EfficientNet-B0 (1/32, 1/16, 1/8, 1/4 of the input), ``("features.1", "features.0")`` for
    ``cnn3d`` (1/4, 1/2). :meth:`~.predict.Predictor.cam_layer` takes the first whose map is fine
    enough for the input size.

    Raises:
        ConfigError: unknown model name.
    """
    spec = _spec(name)
    return (spec.cam,) + spec.cam_earlier


def head_module_names(name: str) -> tuple[str, ...]:
    """Dotted names of the modules that form the head of model ``name`` (``("fc",)`` or
    ``("classifier",)``): the layers after global average pooling, trained alone by
    ``freeze(model, name, "backbone")``.

    Raises:
        ConfigError: unknown model name.
    """
    return (_spec(name).head,)


# --------------------------------------------------------------------------- networks


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


def _torchvision_model(name: str) -> nn.Module:
    """The torchvision network ``name`` with random weights, 3 input channels, original head."""
    if name == "resnet18-2d":
        from torchvision.models import resnet18

        return resnet18(weights=None)
    if name == "efficientnet-b0-2d":
        from torchvision.models import efficientnet_b0

        return efficientnet_b0(weights=None)
    from torchvision.models import video

    factory = {"r3d-18": video.r3d_18, "mc3-18": video.mc3_18, "r2plus1d-18": video.r2plus1d_18}
    return factory[name](weights=None)


def _get_module(model: nn.Module, dotted: str) -> nn.Module:
    return model.get_submodule(dotted)


def _set_module(model: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, attr = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


def _conv_like(conv: nn.Module, in_channels: int) -> nn.Module:
    """A copy of convolution ``conv``'s configuration with ``in_channels`` inputs, initialised
    as torchvision initialises its convolutions (Kaiming normal, fan-out)."""
    new = type(conv)(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _head_in_features(model: nn.Module, spec: _Spec) -> int:
    head = _get_module(model, spec.head)
    if isinstance(head, nn.Linear):
        return head.in_features
    return next(m for m in head.modules() if isinstance(m, nn.Linear)).in_features


def _network(name: str, in_channels: int, num_classes: int, head: str, dropout: float) -> nn.Module:
    if name == "cnn3d":
        return CNN3D(in_channels, num_classes, dropout, head)
    spec = _SPECS[name]
    model = _torchvision_model(name)
    if in_channels != 3:
        _set_module(model, spec.stem, _conv_like(_get_module(model, spec.stem), in_channels))
    features = _head_in_features(model, spec)
    _set_module(model, spec.head, _make_head(head, features, num_classes, dropout))
    return model


# --------------------------------------------------------------------------- weights


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state dict, a dict with ``model_state`` or
    ``state_dict`` (mriviewer checkpoints, Lightning-style files)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict):
        for key in ("model_state", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a weights file (no state dict inside)")
    state = {k: v for k, v in obj.items() if isinstance(k, str) and torch.is_tensor(v)}
    if not state:
        raise CheckpointError(f"{path}: not a weights file (no tensors inside)")
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


_LOADED = "loaded"


def _load_partial(
    model: nn.Module,
    spec: _Spec,
    state: dict[str, torch.Tensor],
    in_channels: int,
    stem_mode: str,
    head_note: str,
) -> dict[str, str]:
    """Load the tensors of ``state`` whose names and shapes fit ``model``; the stem kernel is
    adapted to ``in_channels`` (``stem_mode="adapt"``) or left random (``"random"``).

    Returns:
        For every key of the model's state dict: ``"loaded"``, or why it was not loaded /
        how it was adapted (``"adapted from the RGB mean"``, …).
    """
    own = model.state_dict()
    # torchvision's EfficientNet head is Sequential(Dropout, Linear): ``classifier.1.*``; ours
    # is one DropoutLinear, ``classifier.*``.
    for suffix in ("weight", "bias"):
        alias = f"{spec.head}.1.{suffix}"
        if f"{spec.head}.{suffix}" in own and f"{spec.head}.{suffix}" not in state and alias in state:
            state = {**state, f"{spec.head}.{suffix}": state[alias]}
    stem_prefix = spec.stem + "."
    head_prefix = spec.head + "."
    stem_weight = spec.stem + ".weight"
    to_load: dict[str, torch.Tensor] = {}
    status: dict[str, str] = {}
    adapted = None
    for key, mine in own.items():
        src = state.get(key)
        if key.startswith(stem_prefix) and stem_mode == "random":
            status[key] = "random stem, stem='random'"
        elif src is None:
            status[key] = head_note if key.startswith(head_prefix) else "not in the file"
        elif src.shape == mine.shape:
            to_load[key] = src
            status[key] = _LOADED
        elif (
            key == stem_weight
            and src.dim() == mine.dim()
            and src.shape[0] == mine.shape[0]
            and src.shape[2:] == mine.shape[2:]
        ):
            # Replicating one image over the file's c_src channels gives sum_c W_c * x; the
            # mean kernel × c_src / C over C channels gives the same for C replicated channels.
            c_src = src.shape[1]
            kernel = src.float().mean(dim=1, keepdim=True) * (c_src / in_channels)
            to_load[key] = kernel.repeat_interleave(in_channels, dim=1)
            adapted = (
                "RGB mean"
                if c_src == 3
                else "file's single input channel"
                if c_src == 1
                else f"mean of the file's {c_src} input channels"
            )
        else:
            status[key] = head_note if key.startswith(head_prefix) else "shape differs"
    if adapted is not None:
        for key in own:
            if key.startswith(stem_prefix) and status.get(key, _LOADED) == _LOADED:
                status[key] = f"adapted from the {adapted}"
    if to_load:
        model.load_state_dict(to_load, strict=False)
    return status


def _group_statuses(status: dict[str, str]) -> list[tuple[str, str]]:
    """Summarise per-tensor statuses by module: ``[(module name, status)]`` in model order,
    using top-level names where a whole module shares one status and deeper names otherwise."""
    keys = list(status)

    def split(names: list[str], depth: int) -> list[tuple[str, str]]:
        groups: dict[str, list[str]] = {}
        for k in names:
            parts = k.split(".")
            groups.setdefault(".".join(parts[: min(depth, len(parts) - 1) or 1]), []).append(k)
        out: list[tuple[str, str]] = []
        for prefix, members in groups.items():
            kinds = {status[k] for k in members}
            if len(kinds) == 1:
                out.append((prefix, kinds.pop()))
            elif all(len(k.split(".")) - 1 <= depth for k in members):
                out.extend((k, status[k]) for k in members)
            else:
                out.extend(split(members, depth + 1))
        return out

    return split(keys, 1)


def _compress(names: list[str]) -> str:
    """``layer1, layer2, layer3, layer4`` → ``layer1–layer4`` (runs of 3 or more)."""
    out: list[str] = []
    run: list[tuple[str, int, str]] = []

    def flush() -> None:
        if len(run) >= 3:
            out.append(f"{run[0][2]}–{run[-1][2]}")
        else:
            out.extend(r[2] for r in run)
        run.clear()

    for name in names:
        m = re.fullmatch(r"(.*?)(\d+)", name)
        if m and run and run[-1][0] == m.group(1) and run[-1][1] + 1 == int(m.group(2)):
            run.append((m.group(1), int(m.group(2)), name))
            continue
        flush()
        if m:
            run.append((m.group(1), int(m.group(2)), name))
        else:
            out.append(name)
    flush()
    return ", ".join(out)


def _loaded_message(source: str, status: dict[str, str]) -> str:
    total = len(status)
    n_loaded = sum(1 for s in status.values() if s == _LOADED or s.startswith("adapted"))
    groups = _group_statuses(status)
    adapted = [f"{g} {s}" for g, s in groups if s.startswith("adapted")]
    loaded = _compress([g for g, s in groups if s == _LOADED])
    loaded_desc = ", ".join(adapted + ([loaded] if loaded else []))
    missing: dict[str, list[str]] = {}
    for g, s in groups:
        if s != _LOADED and not s.startswith("adapted"):
            missing.setdefault(s, []).append(g)
    msg = f"Pretrained weights loaded from {source}: {n_loaded} of {total} tensors ({loaded_desc})"
    if missing:
        msg += "; not loaded: " + ", ".join(f"{_compress(g)} ({s})" for s, g in missing.items())
    return msg + "."


# --------------------------------------------------------------------------- public API


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    pretrained: str = "auto",
    *,
    stem: str = "adapt",
    head: str = "linear",
    dropout: float = 0.0,
) -> tuple[nn.Module, str]:
    """Build model ``name`` for ``in_channels`` inputs and ``num_classes`` logits.

    2D models take ``(B, C, H, W)``, 3D models ``(B, C, D, H, W)`` (``D`` = slices, the video
    networks' time axis); all return logits ``(B, num_classes)``.

    Pretrained weights are loaded partially: only tensors whose names and shapes match the built
    model (the head differs unless ``num_classes`` equals the file's; ``head="mlp32"`` has other
    names). The stem kernel is adapted to ``in_channels`` as described in the module docstring.

    Args:
        name: one of :data:`MODEL_NAMES`.
        in_channels: input channels ``C`` (number of modalities; 3 for RGB), ≥ 1.
        num_classes: output logits, ≥ 1 (1 = a single logit for BCE).
        pretrained: ``"auto"`` — the torchvision weights file from the torch hub cache if present
            (never downloaded); ``"none"`` or ``""`` — random initialisation; anything else — a
            path to a weights file: a torchvision state dict, a dict with ``"model_state"`` or
            ``"state_dict"``, or an mriviewer checkpoint. ``cnn3d`` has no pretrained weights
            (``"auto"`` means random), but a file given explicitly is loaded.
        stem: ``"adapt"`` — load the stem, adapting an RGB (or other channel count) kernel to
            ``C`` channels: RGB mean × ``3 / C`` repeated over ``C``, which for ``C == 1`` equals
            the RGB network on the image replicated to RGB; ``"random"`` — never load the stem.
        head: ``"linear"`` — [Dropout(``dropout``) if > 0 →] Linear(features, num_classes),
            a single :class:`DropoutLinear` module; ``"mlp32"`` — the EfficientNet MGMT paper's
            head: BatchNorm1d → Dropout → Linear(features, 32) → ReLU → BatchNorm1d → Dropout →
            Linear(32, num_classes), dropout ``dropout or 0.4``. For ``cnn3d``, ``"linear"``
            is its own paper head (Linear 128→256 → ReLU → Dropout(``dropout or 0.3``) →
            Linear) and ``"mlp32"`` replaces it with the mlp32 head on its 128 features. The
            mlp32 head's BatchNorm1d needs batches of ≥ 2 samples in training mode.
        dropout: dropout rate of the head, in [0, 1).

    Returns:
        ``(model, message)``; the message says which weights were used and, when some were
        loaded, which modules were loaded and which were not, e.g. "Pretrained weights loaded
        from …/resnet18-f37072fd.pth: 119 of 122 tensors (conv1 adapted from the RGB mean, bn1,
        layer1–layer4); not loaded: fc (new head, 2 outputs)."

    Raises:
        ConfigError: unknown model name, stem, head, or a number out of range.
        CheckpointError: a weights file is missing or unreadable, or none of its convolution or
            linear weights fit the model (a file of another network).
    """
    spec = _spec(name)
    if stem not in STEM_MODES:
        raise ConfigError(f"unknown stem option {stem!r}; use one of {', '.join(STEM_MODES)}")
    if head not in HEAD_TYPES:
        raise ConfigError(f"unknown head {head!r}; use one of {', '.join(HEAD_TYPES)}")
    if int(in_channels) < 1:
        raise ConfigError(f"in_channels must be ≥ 1 (got {in_channels})")
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be ≥ 1 (got {num_classes})")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1) (got {dropout})")
    in_channels, num_classes, dropout = int(in_channels), int(num_classes), float(dropout)

    pretrained = str(pretrained).strip() if pretrained else "none"
    pretrained = pretrained or "none"
    path: Path | None = None
    if pretrained == "auto":
        path = hub_weights_path(name)
        if path is not None and not path.is_file():
            path = None
    elif pretrained != "none":
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{path}: pretrained weights file not found")
    state = _load_state(path) if path is not None else None

    model = _network(name, in_channels, num_classes, head, dropout)

    if state is not None:
        head_kind = "new mlp32 head" if head == "mlp32" else "new head"
        head_note = f"{head_kind}, {num_classes} output{'s' if num_classes != 1 else ''}"
        status = _load_partial(model, spec, state, in_channels, stem, head_note)
        own = model.state_dict()
        if not any(
            own[k].dim() >= 2 for k, s in status.items() if s == _LOADED or s.startswith("adapted")
        ):  # a few BatchNorm vectors of another network may fit by chance; that is no loading
            raise CheckpointError(
                f"{path}: none of its convolution or linear weights fit {name} (is it a {name} "
                "weights file?)"
            )
        message = _loaded_message(str(path), status)
    elif pretrained == "none":
        message = "Pretrained weights off; training starts from random weights."
    elif spec.weights is None:
        message = f"{name} has no pretrained weights; training starts from random weights."
    else:
        message = (
            f"No pretrained weights in {hub_weights_path(name)}; training starts from random "
            "weights (put torchvision's file there or pass a weights file)."
        )
    log.info(message)
    return model, message


def freeze(model: nn.Module, name: str, mode: str) -> int:
    """Choose which parameters of ``model`` (built by :func:`build_model` as ``name``) train.

    Args:
        model: the network.
        name: its model name (selects the head, :func:`head_module_names`).
        mode: ``"none"`` — every parameter trainable; ``"backbone"`` — only the head's
            parameters trainable (transfer learning, phase 1); ``"batchnorm"`` — everything
            trainable except the parameters of BatchNorm layers, the head's included (the
            fine-tuning phase: "unfreeze all but BatchNorm").

    Returns:
        The number of trainable parameters (elements).

    Frozen BatchNorm layers still update their running statistics in ``model.train()`` mode;
    call :func:`keep_frozen_bn_eval` after every ``model.train()`` to stop that.

    Raises:
        ConfigError: unknown mode or model name.
    """
    if mode not in FREEZE_MODES:
        raise ConfigError(f"unknown freeze mode {mode!r}; use one of {', '.join(FREEZE_MODES)}")
    heads = head_module_names(name)
    for p in model.parameters():
        p.requires_grad_(mode != "backbone")
    if mode == "backbone":
        for h in heads:
            for p in model.get_submodule(h).parameters():
                p.requires_grad_(True)
    elif mode == "batchnorm":
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                for p in m.parameters(recurse=False):
                    p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def keep_frozen_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are all frozen (``requires_grad`` False) into
    eval mode, so it normalises with, and no longer updates, its running statistics. Call it
    after every ``model.train()``.

    Returns:
        The number of BatchNorm layers switched to eval mode.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
                n += 1
    return n
