"""The Train panel's settings logic (a mixin of :class:`~mriviewer.ui.controls.train.panel.TrainPanel`):
presets, the values of the header and the generated form, the validated
:class:`~mriviewer.ml.config.TrainConfig` they describe (its invalid key outlined from
:attr:`ConfigError.key <mriviewer.core.errors.ConfigError>`), the edited keys in bold, the
editors that do not apply greyed out, a dataset's suggested settings, continuing from a
checkpoint, and the device line.

The panel provides ``header`` (:class:`~mriviewer.ui.controls.train.header.SetupHeader`),
``form`` (:class:`~mriviewer.ui.controls.train.form.ConfigForm`), ``presets`` and
``append_log``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from mriviewer.app import train_text
from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import MODEL_NAMES, TrainConfig
from mriviewer.ml.presets import Preset
from mriviewer.ui.controls.train.form import TOP_KEYS
from mriviewer.ui.controls.train.header import device_description

__all__ = ["SettingsMixin"]


class SettingsMixin:
    """Presets, values, config, suggested settings, checkpoints and the device line."""

    _loading = False
    _wanted_modalities: list[str] | None = None
    edited_keys: list[str] = []

    def _connect_settings(self) -> None:
        """Wire the header and the form (called once both exist)."""
        self.header.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        self.header.model.currentTextChanged.connect(lambda _: self._edited("model"))
        self.header.from_checkpoint_button.clicked.connect(self._browse_checkpoint)
        self.form.edited.connect(self._edited)

    # ------------------------------------------------------------------ presets
    def current_preset(self) -> Preset | None:
        """The chosen preset, ``None`` for none."""
        name = self.header.preset_combo.currentData()
        return next((p for p in self.presets if p.name == name), None)

    def select_preset(self, name: str) -> None:
        """Choose preset ``name`` (``""`` for none) and load its values into the editors.

        Raises:
            ConfigError: no such preset (``key`` ``"preset"``).
        """
        combo = self.header.preset_combo
        index = combo.findData(name)
        if index < 0:
            raise ConfigError(f"unknown preset {name!r}; available: {', '.join(p.name for p in self.presets)}",
                              key="preset")
        if index == combo.currentIndex():
            self._preset_chosen(index)
        else:
            combo.setCurrentIndex(index)

    def _preset_chosen(self, _index: int) -> None:
        p = self.current_preset()
        self.header.show_preset(p)
        if p is not None:
            self.load_config(p.config())
        self._refresh_overrides()

    def base_config(self) -> TrainConfig:
        """The chosen preset's config, or the defaults."""
        p = self.current_preset()
        return p.config() if p is not None else TrainConfig()

    # ------------------------------------------------------------------ values
    def load_config(self, cfg: TrainConfig) -> None:
        """Show every value of ``cfg`` in the editors (modalities: those the dataset has)."""
        self._loading = True
        try:
            self.header.model.setCurrentText(cfg.model)
            self.form.load(cfg.to_dict())
            self._wanted_modalities = list(cfg.modalities)
            self._check_modalities(cfg.modalities)
        finally:
            self._loading = False
        self._relevance()
        self._refresh_overrides()

    def _check_modalities(self, wanted: list[str]) -> None:
        warning = self.header.check_modalities(wanted)
        if warning:
            self.append_log(warning, "warning")

    def values(self) -> dict:
        """Every editable key's value as the editors hold it.

        Raises:
            ConfigError: a JSON field does not parse (naming the key, ``key`` set).
        """
        out = {"model": self.header.model.currentText(),
               "modalities": self.header.modalities(self.base_config().modalities)}
        out.update(self.form.values())
        return out

    def config(self) -> TrainConfig:
        """The configuration the widgets describe: the preset (or defaults) with every edited
        value applied as a recorded override, validated.

        Raises:
            ConfigError: an invalid value, naming the key (its editor, found from the error's
                ``key``, is outlined in red and its group opened).
        """
        self.form.clear_invalid()
        try:
            checks = self.header.modality_checks
            if checks and not any(cb.isChecked() for cb in checks.values()):
                raise ConfigError("modalities: check at least one modality to train on", key="modalities")
            base = self.base_config()
            values = self.values()
            known = base.to_dict()
            overrides = {k: v for k, v in values.items() if v != known.get(k)}
            return base.with_overrides(overrides) if overrides else base
        except ConfigError as exc:
            self.form.mark_invalid(exc.key)
            raise

    def _edited(self, key: str) -> None:
        if key in self.form.depends_on:
            self._relevance()
        if not self._loading:
            self._refresh_overrides()
        if key == "device":
            self.refresh_device()

    def _refresh_overrides(self) -> None:
        """Mark the keys whose value differs from the preset (or the defaults) in bold."""
        base = self.base_config().to_dict()
        edited = []
        for key in (*TOP_KEYS, *self.form.fields):
            try:
                if key == "model":
                    value = self.header.model.currentText()
                elif key == "modalities":
                    if not self.header.modality_checks:
                        continue
                    value = self.header.modalities(base["modalities"])
                else:
                    value = self.form.fields[key].get()
            except ConfigError:
                value = object()  # unreadable JSON: certainly edited
            changed = value != base.get(key)
            if changed:
                edited.append(key)
            if key in self.form.fields:
                self.form.fields[key].set_edited(changed)
            else:
                self.header.set_edited(key, changed)
        self.edited_keys = edited
        preset_chosen = self.current_preset() is not None
        what = "the preset" if preset_chosen else "the defaults"
        self.header.preset_combo.setStatusTip(f"{len(edited)} value(s) differ from {what}")
        tip = train_text.overrides_tip(edited, preset_chosen)
        for label in (*self.form.field_labels.values(), *self.header.top_labels.values()):
            if label is not None and label.font().bold():
                label.setStatusTip(tip)
        self.form.setToolTip(tip + "\nBold labels mark the edited values.")

    def _relevance(self) -> None:
        """Grey out editors the current choices do not use (their values are still recorded)."""
        values = {"model": self.header.model.currentText()}
        values.update({k: self.form.fields[k].get() for k in self.form.depends_on if k in self.form.fields})
        self.form.update_relevance(values)

    # ------------------------------------------------------------------ the dataset
    def set_modalities(self, modalities: list[str]) -> None:
        """Offer the dataset's modalities as input channels: the preset's where the dataset has
        them, else the first."""
        self.header.set_modalities(modalities, lambda: self._edited("modalities"))
        if self._wanted_modalities and self.current_preset() is not None:
            self._check_modalities(self._wanted_modalities)
        self._refresh_overrides()

    def apply_settings(self, train: dict) -> None:
        """Start from a dataset's suggested settings (``mriviewer.json``'s ``"train"``): an
        optional ``preset`` first, then any TrainConfig keys. Values an editor cannot take are
        skipped and logged."""
        if isinstance(train.get("preset"), str):
            try:
                self.select_preset(train["preset"])
            except ConfigError as exc:
                self.append_log(f"Suggested preset ignored: {exc}", "warning")
        self._loading = True
        try:
            for key, value in train.items():
                if key == "preset":
                    continue
                try:
                    self._apply_one(key, value)
                except (ValueError, TypeError) as exc:
                    self.append_log(f"Suggested setting skipped: {exc}", "warning")
        finally:
            self._loading = False
        self._relevance()
        self._refresh_overrides()

    def _apply_one(self, key: str, value) -> None:
        """Show one suggested value (raises ValueError or TypeError when it cannot be)."""
        if key == "model":
            if value not in MODEL_NAMES:
                raise ValueError(f"model: unknown value {value!r}")
            self.header.model.setCurrentText(value)
        elif key == "modalities":
            mods = [value] if isinstance(value, str) else value
            if isinstance(mods, list) and any(m in self.header.modality_checks for m in mods):
                self._wanted_modalities = list(mods)
                self._check_modalities(mods)
        elif key in self.form.fields:
            fld = self.form.fields[key]
            number = isinstance(value, int) and not isinstance(value, bool)
            fld.set(float(value) if fld.kind is float and number else value)
        else:
            raise ValueError(f"{key}: not a training setting")

    # ------------------------------------------------------------------ checkpoints
    def _browse_checkpoint(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Continue from checkpoint", "", "Checkpoint (*.pt)")
        if path:
            self.start_from_checkpoint(path)

    def start_from_checkpoint(self, path: str | Path) -> bool:
        """Fill every editor from a checkpoint's config and set its weights as ``pretrained``
        (:func:`mriviewer.ml.checkpoint.describe_checkpoint`). Returns False (and says why in the
        log) when the file is not a usable checkpoint."""
        from mriviewer.core.errors import CheckpointError
        from mriviewer.ml.checkpoint import load_checkpoint

        try:
            cfg = load_checkpoint(path, mmap=True)["config"]  # the config only: weights mapped, not read
        except CheckpointError as exc:  # load_checkpoint turns torch's errors for a damaged file into this
            self.append_log(f"Cannot continue from {path}: {exc}", "warning")
            return False
        try:
            self.select_preset(cfg.preset or "")
        except ConfigError:  # a preset this version does not ship: the values below still apply
            self.select_preset("")
        self.load_config(cfg)
        self.form.fields["pretrained"].editor.setText(str(path))
        self.append_log(f"Continuing from {path}: {cfg.model} on {', '.join(cfg.modalities)}, its weights as the "
                        f"starting point; the optimiser and schedule start again and the data are split anew "
                        f"(cases it was trained on may now be validation or test: use a new dataset or the "
                        f"same seed and split to keep the roles).")
        return True

    # ------------------------------------------------------------------ device line
    def refresh_device(self) -> None:
        """Describe what the device setting resolves to. torch is imported and queried in a
        thread (the window opens without waiting for it); a timer owned by the panel picks the
        answer up on the GUI thread, so nothing reaches a panel that was closed meanwhile."""
        device = self.form.fields["device"].get() or "auto"
        threads = self.form.fields["num_threads"].get()
        self._device_token = token = getattr(self, "_device_token", 0) + 1
        box: dict = {}

        def work():
            try:
                box["text"] = device_description(device, threads)
            except Exception as exc:  # noqa: BLE001 - a broken CUDA driver must not break the panel
                box["text"] = f"{device}: cannot query ({type(exc).__name__}: {exc})"

        def poll():
            if token != self._device_token:
                return  # a newer query replaced this one
            if "text" not in box:
                QtCore.QTimer.singleShot(50, self, poll)
                return
            self.header.show_device(f"{device} → {box['text']}" if device == "auto" else box["text"])

        threading.Thread(target=work, name="mriviewer-device", daemon=True).start()
        QtCore.QTimer.singleShot(0, self, poll)
