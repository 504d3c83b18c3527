"""The Train panel as focused parts: :mod:`.panel` (:class:`TrainPanel`, binding them),
:mod:`.header` (preset, model, modalities, device), :mod:`.form` (the settings form generated
from the config's field metadata), :mod:`.settings` (presets, values, config), :mod:`.run_view`
(buttons, progress, tabs), :mod:`.curves` (loss, AUC and learning-rate plots) and
:mod:`.results` (the Results tab). The run's state is :class:`mriviewer.app.training.TrainingRun`.
"""

from mriviewer.ui.controls.train.curves import EpochAxis, FittingAxis
from mriviewer.ui.controls.train.header import device_description
from mriviewer.ui.controls.train.panel import TrainPanel

__all__ = ["TrainPanel", "EpochAxis", "FittingAxis", "device_description"]
