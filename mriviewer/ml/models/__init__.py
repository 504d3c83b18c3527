"""Models: the table of architectures (:mod:`.registry`), heads, the small 3D CNN, network
construction, initial weights, and :func:`mriviewer.ml.models.build.build_model`."""
