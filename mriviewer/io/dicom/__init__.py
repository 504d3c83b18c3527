"""DICOM MR series with pydicom: finding files and series (:mod:`.scan`), headers, geometry from
IOP/IPP/PixelSpacing, pixel decoding, Siemens mosaics, enhanced multi-frame files, and the series
reader that joins them (:func:`mriviewer.io.dicom.series.read_dicom_series`)."""
