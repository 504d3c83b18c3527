"""Loading initial weights (pretrained or a checkpoint) into a network, layer by layer, and saying what was loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from mriviewer.core.errors import CheckpointError
from mriviewer.ml.models.registry import _Spec


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
