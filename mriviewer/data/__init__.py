"""Datasets: cases and their modalities (:mod:`.cases`), folder discovery through a registry of
layouts (:mod:`.discover`, :mod:`.layouts`), modality guessing, label tables and assembled datasets.
Nothing here decodes an image."""
