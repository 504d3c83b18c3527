"""The checkpoint format: one module writes, reads, validates and migrates ``best.pt``.

A checkpoint is a ``torch.save``'d dict (read back with ``weights_only=True``, so it can hold
tensors, numbers, strings, lists and dicts only):

* ``format`` = ``"mriviewer-checkpoint"``, ``format_version`` (:data:`FORMAT_VERSION`);
* ``model_state``: the network's state dict (CPU tensors); ``n_outputs``: logits (1 for BCE);
* ``config``: the :class:`~.config.TrainConfig` as a dict (validated on load);
* ``class_names``; ``dataset_root``; ``software_version``; ``created`` (ISO date);
* ``metrics``: ``{"validation": the chosen epoch's validation figures, "test": the test metrics
  (:func:`~.metrics.classification_metrics`), "summary": the cross-validation summary}``;
* ``history``: per-epoch records; ``split``: case ids per role (``train``, ``validation``,
  ``test``); ``fold``: ``"holdout"`` or ``"fold k"``.

Writes go to a hidden temporary file in the same folder, flushed to the disk, then ``os.replace``
— a reader (or a crash, a full disk, Ctrl-C) never sees half a checkpoint. Version 1 (mriviewer 0.1, no test set) is migrated on load.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from mriviewer import __version__
from mriviewer.core.errors import CheckpointError, ConfigError
from mriviewer.core.files import json_safe
from mriviewer.ml.config import TrainConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "update_checkpoint",
           "model_from_checkpoint", "new_checkpoint", "describe_checkpoint", "find_checkpoints"]

FORMAT = "mriviewer-checkpoint"
FORMAT_VERSION = 2
_MAX_CLASSES = 10_000


def new_checkpoint(model, config: TrainConfig, class_names: list[str], n_outputs: int, **extra) -> dict:
    """A checkpoint dict for ``model`` (its state copied to CPU) with the standard fields;
    ``extra`` adds or replaces fields (``metrics``, ``history``, ``split``, ``fold``,
    ``dataset_root``)."""
    state = model.state_dict() if hasattr(model, "state_dict") else model
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_state": {k: v.detach().cpu().clone() for k, v in state.items()},
        "n_outputs": int(n_outputs),
        "config": config.to_dict(),
        "class_names": list(class_names),
        "software_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "metrics": {},
        "history": [],
        "split": {},
        "fold": "holdout",
        "dataset_root": "",
    }
    ckpt.update(extra)
    return ckpt


def save_checkpoint(path: str | Path, ckpt: dict) -> Path:
    """Write ``ckpt`` to ``path`` atomically: a hidden temporary file in the same folder
    (:func:`mriviewer.core.files.temp_name`), flushed to the disk, then renamed. A full disk, an
    error or Ctrl-C removes the temporary file and leaves an earlier ``path`` as it was;
    temporary files of writers that were killed outright (SIGKILL) are removed here first
    (:func:`mriviewer.core.files.remove_stale_temps`).

    Raises:
        CheckpointError: the file cannot be written (disk full, read-only, …); the message names
            ``path``; no partial file is left behind.
    """
    import torch

    from mriviewer.core.files import atomic_path, remove_stale_temps

    path = Path(path)
    remove_stale_temps(path.parent)
    ckpt = dict(ckpt)
    for key in ("metrics", "history", "split"):
        if key in ckpt:
            ckpt[key] = json_safe(ckpt[key])
    with atomic_path(path, error=CheckpointError) as tmp:
        try:
            with open(tmp, "wb") as fh:
                torch.save(ckpt, fh)
        except RuntimeError as exc:
            # torch's zip writer reports a failed write (ENOSPC, EIO) as a RuntimeError.
            raise CheckpointError(f"{path}: cannot write checkpoint ({_write_failure(path, exc)})") from exc
    return path


def _write_failure(path: Path, exc: BaseException) -> str:
    """Words for a failed ``torch.save``: "no space left on device" when the folder's disk is
    (nearly) full, else the error."""
    import shutil

    try:
        if shutil.disk_usage(path.parent).free < 1 << 20:
            return "No space left on device"
    except OSError:
        pass
    return f"{type(exc).__name__}: {exc}"


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """Read and validate a checkpoint; version 1 is migrated to the current layout.

    ``mmap=True`` maps the tensors instead of reading them (``torch.load(mmap=True)``): the
    metadata of a 125 MB video-network checkpoint then reads in about 0.05 s instead of 1.8 s
    from a cold disk (what the checkpoint manager needs for every file it lists).

    Returns:
        The checkpoint dict with ``config`` replaced by a validated :class:`TrainConfig`.

    Raises:
        CheckpointError: missing or unreadable file, not an mriviewer checkpoint, a newer format
            version, or a missing or absurd config / class list.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mriviewer checkpoint")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer mriviewer (format {version}; this one reads up to "
                              f"{FORMAT_VERSION}); upgrade mriviewer")
    if version == 1:
        ckpt = _migrate_v1(ckpt)
    if not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no config")
    try:
        ckpt["config"] = TrainConfig.from_dict(ckpt["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid config in checkpoint: {exc}") from exc
    names = ckpt.get("class_names")
    if not isinstance(names, list) or not 1 <= len(names) <= _MAX_CLASSES or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: invalid class list in checkpoint")
    n_out = ckpt.get("n_outputs", len(names))
    if not isinstance(n_out, int) or n_out not in (1, len(names)) or (n_out == 1 and len(names) != 2):
        raise CheckpointError(f"{path}: {n_out!r} outputs do not fit {len(names)} classes")
    ckpt["n_outputs"] = n_out
    if not isinstance(ckpt.get("model_state"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no weights")
    for key, default in (("metrics", {}), ("history", []), ("split", {}), ("fold", "holdout")):
        if not isinstance(ckpt.get(key), type(default)):
            ckpt[key] = default
    ckpt["path"] = str(path)
    return ckpt


def update_checkpoint(path: str | Path, **fields) -> None:
    """Replace top-level ``fields`` (e.g. ``metrics``) of the checkpoint at ``path`` in place
    (atomically).

    Raises:
        CheckpointError: as :func:`load_checkpoint` and :func:`save_checkpoint`.
    """
    ckpt = load_checkpoint(path)
    ckpt["config"] = ckpt["config"].to_dict()
    ckpt.pop("path", None)
    ckpt.update(fields)
    save_checkpoint(path, ckpt)


def model_from_checkpoint(ckpt: dict):
    """Build the network a checkpoint describes and load its weights.

    Raises:
        CheckpointError: the weights do not fit the model the config names.
    """
    from mriviewer.ml.models.build import build_model

    cfg: TrainConfig = ckpt["config"]
    in_ch = 3 if cfg.color == "rgb" else len(cfg.modalities)
    model, _ = build_model(cfg.model, in_ch, ckpt["n_outputs"], "none", stem=cfg.stem, head=cfg.head,
                           dropout=cfg.dropout)
    try:
        model.load_state_dict(ckpt["model_state"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{ckpt.get('path', 'checkpoint')}: weights do not fit {cfg.model} ({exc})") from exc
    return model.eval()


def _migrate_v1(ckpt: dict) -> dict:
    """mriviewer 0.1: a train/validation split, best-epoch validation metrics, no test set."""
    ckpt = dict(ckpt)
    old = ckpt.get("metrics") if isinstance(ckpt.get("metrics"), dict) else {}
    ckpt["metrics"] = {"validation": old, "test": None}
    split = ckpt.get("split") if isinstance(ckpt.get("split"), dict) else {}
    ckpt["split"] = {"train": split.get("train", []), "validation": split.get("val", []), "test": []}
    ckpt["format_version"] = FORMAT_VERSION
    ckpt["migrated_from"] = 1
    return ckpt


def describe_checkpoint(path: str | Path) -> dict:
    """Metadata of a checkpoint for the checkpoint manager, without building the model.

    Returns:
        ``path``, ``model``, ``preset``, ``preset_version``, ``modalities``, ``is_2d``,
        ``class_names``, ``dataset_root``, ``created``, ``software_version``, ``fold``,
        ``test_auc``, ``test_auc_ci``, ``n_test`` (this model's own test cases) and ``cv_auc`` (a
        cross-validated run's pooled out-of-fold AUC, an estimate for the procedure, not for this
        file); or ``path`` and ``error`` (why it cannot be read) — never an exception.
    """
    from mriviewer.ml.config import is_3d_model

    try:
        ckpt = load_checkpoint(path, mmap=True)  # the weights are mapped, never read
    except CheckpointError as exc:
        return {"path": Path(path), "error": str(exc)}
    cfg = ckpt["config"]
    metrics = ckpt.get("metrics") or {}
    test = metrics.get("test") or {}  # this model's own held-out cases
    cv_test = (metrics.get("cv") or {}).get("test") or {}  # the procedure's pooled out-of-fold estimate
    return {
        "path": Path(path), "model": cfg.model, "preset": cfg.preset, "preset_version": cfg.preset_version,
        "modalities": list(cfg.modalities), "is_2d": not is_3d_model(cfg.model),
        "class_names": list(ckpt.get("class_names") or []), "dataset_root": str(ckpt.get("dataset_root") or ""),
        "created": str(ckpt.get("created") or ""), "software_version": str(ckpt.get("software_version") or ""),
        "fold": ckpt.get("fold"), "test_auc": test.get("auc"), "test_auc_ci": test.get("auc_ci"),
        "n_test": test.get("n_cases"), "cv_auc": cv_test.get("auc"),
    }


def find_checkpoints(root: str | Path, max_depth: int = 3) -> list[dict]:
    """:func:`describe_checkpoint` of every ``*.pt`` under ``root`` (at most ``max_depth``
    folders deep), newest first. A missing ``root`` gives an empty list. The per-fold models of
    a cross-validated run (``fold-k/``) are left out: the run's ``best.pt`` is the one chosen on
    validation, and offering the others next to their test AUCs would invite choosing on test."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for depth in range(max_depth + 1):
        found += [p for p in root.glob("/".join(["*"] * depth + ["*.pt"]))
                  if p.is_file() and not p.parent.name.startswith("fold-")]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [describe_checkpoint(p) for p in found]
