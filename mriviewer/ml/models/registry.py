"""The model table: each architecture's torchvision builder, input kind (2D, 3D, video), pretrained
weights, Grad-CAM layer and head, and where torchvision's hub keeps its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import MODEL_NAMES

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
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}", key="model") from None


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
