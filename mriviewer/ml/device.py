"""The device and mixed precision a run uses (``auto``: CUDA when available, else CPU; bf16 or fp16
autocast where the device supports it).
"""

from __future__ import annotations

from mriviewer.core.errors import ConfigError


def resolve_device(name: str):
    """``"auto"`` → CUDA when available, else CPU.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


def resolve_amp(mode: str, device):
    """Autocast dtype for ``mode`` on ``device`` (``None`` = fp32): ``auto`` → bf16 on CUDA when
    supported; ``bf16`` on CUDA or CPU; ``fp16`` on CUDA only (with gradient scaling)."""
    import torch

    if mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if mode == "bf16":
        return torch.bfloat16
    return torch.float16 if device.type == "cuda" else None


def _amp_name(amp) -> str:
    import torch

    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + loss scaling"}[amp]
