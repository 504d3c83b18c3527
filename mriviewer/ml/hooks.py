"""The pieces of the fit loop chosen by the config: loss, optimiser, learning-rate schedule, and the
monitored validation value that selects the best epoch and drives early stopping.

The stateful ones are small objects with ``state_dict()`` / ``load_state_dict()`` (the
Lightning callback convention), so a resumed run can restore them:

* :class:`BestEpoch`: model selection on validation — the best epoch's summary and weights.
* :class:`EarlyStopping`: epochs without improvement, per training phase.
* :class:`LRSchedule`: the config's scheduler on one phase's optimiser, stepped per epoch.
"""

from __future__ import annotations

import math

import numpy as np

from mriviewer.ml.config import TrainConfig

#: The validation figures of an epoch that :class:`BestEpoch` keeps for the chosen one.
BEST_KEYS = ("epoch", "val_auc", "val_loss", "val_accuracy")


def _loss(criterion, logits, y):
    """The batch's mean loss: logits ``(B, K)`` (``(B, 1)`` for BCE) against labels ``(B,)``."""
    from torch import nn

    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return criterion(logits[:, 0].float(), y.float())
    return criterion(logits.float(), y)


def _criterion(cfg: TrainConfig, train_labels, n_classes: int, device):
    """The loss module of ``cfg.loss``: BCE on a binary task's single logit, cross-entropy, or
    cross-entropy weighted by ``1 − class share`` of ``train_labels`` (a class absent from the
    training cases weighs 1; with one class present, every weight is 1)."""
    import torch
    from torch import nn

    if cfg.loss == "bce":
        return nn.BCEWithLogitsLoss()
    if cfg.loss == "weighted_ce":
        counts = np.bincount(list(train_labels), minlength=n_classes).astype(float)
        weights = 1.0 - counts / counts.sum()
        weights[counts == 0] = 1.0
        if (counts > 0).sum() < 2:  # one class only: W = 0 would make the loss 0/0
            weights[:] = 1.0
        return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))
    return nn.CrossEntropyLoss()


def _optimizer(cfg: TrainConfig, params, lr: float):
    """The optimiser of ``cfg.optimizer`` (``adam``, ``adamw``, ``sgd``) on ``params`` at ``lr``."""
    import torch

    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt):
    """The learning-rate scheduler of ``cfg.scheduler`` on ``opt``, ``None`` for ``"none"``."""
    import torch

    s = torch.optim.lr_scheduler
    if cfg.scheduler == "step":
        return s.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "exponential":
        return s.ExponentialLR(opt, gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return s.ReduceLROnPlateau(opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience)
    return None


def _value(record, key: str):
    """``record[key]`` of a dict or an :class:`~.events.EpochRecord` (``None`` when absent)."""
    if isinstance(record, dict):
        return record.get(key)
    return getattr(record, key, None)


def _monitor_value(record, monitor: str, for_min: bool = False) -> float:
    """The monitored validation value of ``record`` (a dict or an
    :class:`~.events.EpochRecord`) as "higher is better" (or, with ``for_min``, "lower is better"
    for ReduceLROnPlateau); undefined values rank last."""
    v = _value(record, monitor) if record else None
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.inf if for_min else -math.inf
    v = float(v)
    higher = monitor != "val_loss"
    return (-v if higher else v) if for_min else (v if higher else -v)


def _improves(record, best, monitor: str) -> bool:
    """Model selection on validation: a better ``monitor`` wins; on a tie (within 1e-9, e.g.
    AUC 1.0 twice) or when it is undefined, the lower validation loss wins."""
    if not best:
        return True
    a, b = _monitor_value(record, monitor), _monitor_value(best, monitor)
    if a > b + 1e-9:
        return True
    if abs(a - b) <= 1e-9 or (math.isinf(a) and math.isinf(b)):
        return _value(record, "val_loss") < _value(best, "val_loss")
    return False


class BestEpoch:
    """Best-checkpoint selection on validation over a fold's epochs (all phases).

    Args:
        monitor: the config's ``monitor`` (``"val_auc"``, ``"val_loss"``, ``"val_accuracy"``).
        extra: facts added to the chosen epoch's summary (``n_cases``, ``n_per_class``).

    Attributes:
        best: the chosen epoch's summary (:data:`BEST_KEYS`, ``monitor`` and ``extra``); empty
            before the first epoch.
        weights: its model ``state_dict`` (CPU copies), ``None`` before the first epoch.
    """

    def __init__(self, monitor: str, extra: dict | None = None) -> None:
        self.monitor = monitor
        self.extra = dict(extra or {})
        self.best: dict = {}
        self.weights: dict | None = None

    def improves(self, values) -> bool:
        """Whether an epoch's figures (a dict or record with :data:`BEST_KEYS`) beat the best."""
        return _improves(values, self.best, self.monitor)

    def update(self, values, model) -> bool:
        """Take the epoch if it improves: keep its summary and a CPU copy of ``model``'s weights.

        Returns:
            Whether it improved (the caller writes the checkpoint).
        """
        if not self.improves(values):
            return False
        self.best = {k: _value(values, k) for k in BEST_KEYS}
        self.best.update(monitor=self.monitor, **self.extra)
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True

    def state_dict(self) -> dict:
        """``{"best": summary, "weights": state_dict or None}``."""
        return {"best": dict(self.best), "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best = dict(state.get("best") or {})
        self.weights = state.get("weights")


class EarlyStopping:
    """Stop a phase after ``patience`` epochs without a better validation value (0 = never).

    Attributes:
        waited: epochs since the last improvement in this phase.
    """

    def __init__(self, patience: int) -> None:
        self.patience = int(patience or 0)
        self.waited = 0

    def update(self, improved: bool) -> bool:
        """Count an epoch; returns whether the phase should stop now."""
        self.waited = 0 if improved else self.waited + 1
        return bool(self.patience) and self.waited >= self.patience

    def state_dict(self) -> dict:
        """``{"waited": n}``."""
        return {"waited": self.waited}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.waited = int(state.get("waited", 0))


class LRSchedule:
    """The config's learning-rate schedule on one phase's optimiser, stepped once per epoch:
    ReduceLROnPlateau on the monitored validation value (lower is better), the others by epoch;
    nothing for ``scheduler = "none"``."""

    def __init__(self, cfg: TrainConfig, opt) -> None:
        self.monitor = cfg.monitor
        self.scheduler = _scheduler(cfg, opt)

    def step(self, record) -> None:
        """Step after an epoch whose figures are ``record`` (a dict or an ``EpochRecord``)."""
        import torch

        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(_monitor_value(record, self.monitor, for_min=True))
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        """The scheduler's ``state_dict()`` (empty without a scheduler)."""
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)
