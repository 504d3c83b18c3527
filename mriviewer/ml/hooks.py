"""The pieces of the fit loop chosen by the config: loss, optimiser, learning-rate schedule, and the
monitored validation value that selects the best epoch and drives early stopping.
"""

from __future__ import annotations

import math

from mriviewer.ml.config import TrainConfig


def _loss(criterion, logits, y):
    from torch import nn

    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return criterion(logits[:, 0].float(), y.float())
    return criterion(logits.float(), y)


def _optimizer(cfg: TrainConfig, params, lr: float):
    import torch

    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt):
    import torch

    s = torch.optim.lr_scheduler
    if cfg.scheduler == "step":
        return s.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "exponential":
        return s.ExponentialLR(opt, gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return s.ReduceLROnPlateau(opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience)
    return None


def _monitor_value(record: dict, monitor: str, for_min: bool = False) -> float:
    """The monitored validation value of ``record`` as "higher is better" (or, with
    ``for_min``, "lower is better" for ReduceLROnPlateau); undefined values rank last."""
    v = record.get(monitor) if record else None
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.inf if for_min else -math.inf
    v = float(v)
    higher = monitor != "val_loss"
    return (-v if higher else v) if for_min else (v if higher else -v)


def _improves(record: dict, best: dict, monitor: str) -> bool:
    """Model selection on validation: a better ``monitor`` wins; on a tie (within 1e-9, e.g.
    AUC 1.0 twice) or when it is undefined, the lower validation loss wins."""
    if not best:
        return True
    a, b = _monitor_value(record, monitor), _monitor_value(best, monitor)
    if a > b + 1e-9:
        return True
    if abs(a - b) <= 1e-9 or (math.isinf(a) and math.isinf(b)):
        return record["val_loss"] < best["val_loss"]
    return False
