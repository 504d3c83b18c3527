"""The application's state, Qt-free (as napari's ``components`` and FSLeyes' ``displaycontext``):
the app model (dataset, case, checkpoint, predictions, Grad-CAM, training run) and the viewer
state (grid, crosshair, window/level, overlays). Widgets in :mod:`mriviewer.ui` bind to them."""
