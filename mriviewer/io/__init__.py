"""Readers: one module per file format (NIfTI, DICOM, 2D images) and the dispatch between them."""
