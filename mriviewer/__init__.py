"""mriviewer: a brain-MRI research viewer that trains classifiers and shows Grad-CAM.

Research use only — not for diagnosis.

Subpackages: :mod:`mriviewer` (data I/O and geometry, no Qt), :mod:`mriviewer.ml` (models,
training engine, metrics, Grad-CAM; no Qt), :mod:`mriviewer.ui` (Qt widgets only).
"""

__version__ = "0.1.0"

#: Shown in the window title, on every report and in the CLI's output.
RESEARCH_ONLY = "Research use only — not for diagnosis."
