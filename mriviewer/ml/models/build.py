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
from pathlib import Path

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mriviewer.core.errors import CheckpointError, ConfigError
from mriviewer.ml.models.network import _network
from mriviewer.ml.models.registry import (
    FREEZE_MODES,
    HEAD_TYPES,
    STEM_MODES,
    _Spec,
    _spec,
    head_module_names,
    hub_weights_path,
)
from mriviewer.ml.models.weights import _LOADED, _load_partial, _load_state, _loaded_message

log = logging.getLogger(__name__)


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
    in_channels, num_classes, dropout = _checked_options(stem, head, in_channels, num_classes,
                                                         dropout)
    pretrained = (str(pretrained).strip() if pretrained else "none") or "none"
    path = _weights_file(name, pretrained)
    state = _load_state(path) if path is not None else None
    model = _network(name, in_channels, num_classes, head, dropout)
    if state is not None:
        message = _load_pretrained(model, name, spec, state, path, in_channels=in_channels,
                                   num_classes=num_classes, stem=stem, head=head)
    else:
        message = _random_start_message(name, spec, pretrained)
    log.info(message)
    return model, message


def _checked_options(stem: str, head: str, in_channels, num_classes, dropout) -> tuple[int, int, float]:
    """``(in_channels, num_classes, dropout)`` as int, int, float once every option is valid.

    Raises:
        ConfigError: unknown stem or head, or a number out of range.
    """
    if stem not in STEM_MODES:
        raise ConfigError(f"unknown stem option {stem!r}; use one of {', '.join(STEM_MODES)}", key="stem")
    if head not in HEAD_TYPES:
        raise ConfigError(f"unknown head {head!r}; use one of {', '.join(HEAD_TYPES)}", key="head")
    if int(in_channels) < 1:
        raise ConfigError(f"in_channels must be ≥ 1 (got {in_channels})")
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be ≥ 1 (got {num_classes})")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1) (got {dropout})", key="dropout")
    return int(in_channels), int(num_classes), float(dropout)


def _weights_file(name: str, pretrained: str) -> Path | None:
    """The weights file ``pretrained`` names (``"auto"``: the hub cache's, if present;
    ``"none"``: none).

    Raises:
        CheckpointError: a file given explicitly does not exist.
    """
    if pretrained == "auto":
        path = hub_weights_path(name)
        return path if path is not None and path.is_file() else None
    if pretrained == "none":
        return None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: pretrained weights file not found")
    return path


def _load_pretrained(model: nn.Module, name: str, spec: _Spec, state: dict, path: Path, *,
                     in_channels: int, num_classes: int, stem: str, head: str) -> str:
    """Load the fitting tensors of ``state`` into ``model``; the message says what was loaded.

    Raises:
        CheckpointError: none of the file's convolution or linear weights fit the model.
    """
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
    return _loaded_message(str(path), status)


def _random_start_message(name: str, spec: _Spec, pretrained: str) -> str:
    """Why training starts from random weights: switched off, none exist, or none in the cache."""
    if pretrained == "none":
        return "Pretrained weights off; training starts from random weights."
    if spec.weights is None:
        return f"{name} has no pretrained weights; training starts from random weights."
    return (
        f"No pretrained weights in {hub_weights_path(name)}; training starts from random "
        "weights (put torchvision's file there or pass a weights file)."
    )


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
        raise ConfigError(f"unknown freeze mode {mode!r}; use one of {', '.join(FREEZE_MODES)}", key="freeze")
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
