"""Building a network from the table: the torchvision model, its stem adapted to the input channels, its head replaced.
"""

from __future__ import annotations

from torch import nn

from mriviewer.ml.models.cnn3d import CNN3D
from mriviewer.ml.models.heads import _make_head
from mriviewer.ml.models.registry import _SPECS, _Spec


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
