"""Classifier networks by name, with offline pretrained-weight loading.

* ``resnet18-2d`` — torchvision ResNet18 (He et al., 2016) on single slices, input
  ``(B, C, H, W)``; the transfer-learning baseline of the RSNA-MICCAI 2021 MGMT papers.
  Pretrained: ImageNet-1k.
* ``r3d-18`` — torchvision video R3D-18 (Tran et al., 2018, "A Closer Look at Spatiotemporal
  Convolutions") on the slice stack as the time axis, input ``(B, C, D, H, W)``; used for
  HGG/LGG grading. Pretrained: Kinetics-400.

The first convolution takes ``C`` = number of modalities; when pretrained RGB weights are loaded
its kernel is the RGB mean repeated over ``C`` channels and scaled by ``3 / C``, which keeps the
activation scale (the usual ImageNet → greyscale adaptation). The last layer is replaced with
``num_classes`` logits. Weights are never downloaded: they come from the torch hub cache
(``torch.hub.get_dir()/checkpoints``) or a file the user names.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

__all__ = ["build_model", "hub_weights_path", "target_layer_name"]


def _weights_enum(name: str):
    from torchvision.models import ResNet18_Weights
    from torchvision.models.video import R3D_18_Weights

    return {"resnet18-2d": ResNet18_Weights.IMAGENET1K_V1, "r3d-18": R3D_18_Weights.KINETICS400_V1}[name]


def hub_weights_path(name: str) -> Path:
    """Where torchvision would cache the pretrained weights of model ``name``
    (``<torch hub dir>/checkpoints/<file name of the weights URL>``)."""
    url = _weights_enum(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def target_layer_name(name: str) -> str:
    """The layer Grad-CAM reads for model ``name`` (the last residual stage)."""
    return "layer4"


def _raw_model(name: str) -> nn.Module:
    from torchvision.models import resnet18
    from torchvision.models.video import r3d_18

    if name == "resnet18-2d":
        return resnet18(weights=None)
    if name == "r3d-18":
        return r3d_18(weights=None)
    raise ConfigError(f"unknown model {name!r}")


def _first_conv(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    if name == "resnet18-2d":
        return model.conv1, "conv1"
    return model.stem[0], "stem.0"


def _set_module(model: nn.Module, dotted: str, module: nn.Module) -> None:
    parent = model
    parts = dotted.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    setattr(parent, parts[-1], module)


def _load_state(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and "model_state" in obj:
        obj = obj["model_state"]
    elif isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a state dict")
    return obj


def build_model(
    name: str, in_channels: int, num_classes: int, pretrained: str = "auto"
) -> tuple[nn.Module, str]:
    """Build model ``name`` for ``in_channels`` inputs and ``num_classes`` logits.

    Args:
        name: ``"resnet18-2d"`` or ``"r3d-18"``.
        in_channels: number of modalities (input channels), ≥ 1.
        num_classes: number of output logits (2 for a binary task).
        pretrained: ``"auto"`` — the torchvision weights from the torch hub cache if present;
            ``"none"`` — random initialisation; any other value — a path to a weights file
            (a torchvision state dict or an mriviewer checkpoint of the same model).

    Returns:
        ``(model, message)``; the message says which weights were used, e.g. "No pretrained
        weights in …; training starts from random weights."

    Raises:
        ConfigError: unknown model name.
        CheckpointError: a named weights file is missing or unreadable.
    """
    model = _raw_model(name)
    state = None
    source = None
    if pretrained not in ("auto", "none", ""):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{path}: pretrained weights file not found")
        state, source = _load_state(path), str(path)
    elif pretrained == "auto":
        path = hub_weights_path(name)
        if path.is_file():
            state, source = _load_state(path), str(path)

    conv, conv_name = _first_conv(model, name)
    if state is not None:
        # Keep only tensors whose shapes fit the backbone; conv1 and fc are adapted below.
        own = model.state_dict()
        compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(compatible, strict=False)
        rgb = state.get(f"{conv_name}.weight")
    else:
        rgb = None

    new_conv = type(conv)(
        in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False
    )
    if rgb is not None and rgb.shape[1] == 3 and in_channels != 3:
        with torch.no_grad():
            mean = rgb.mean(dim=1, keepdim=True)
            new_conv.weight.copy_(mean.repeat_interleave(in_channels, dim=1) * (3.0 / in_channels))
    elif rgb is not None and rgb.shape[1] == in_channels:
        with torch.no_grad():
            new_conv.weight.copy_(rgb)
    _set_module(model, conv_name, new_conv)
    model.fc = nn.Linear(model.fc.in_features, num_classes)

    if source is not None:
        message = f"Pretrained weights loaded from {source}."
    elif pretrained == "none":
        message = "Pretrained weights off; training starts from random weights."
    else:
        message = (
            f"No pretrained weights in {hub_weights_path(name)}; training starts from random "
            "weights (put torchvision's file there or choose one in the Train panel)."
        )
    return model, message
