"""Writing a planned series of the demo as DICOM MR files (pydicom), one file per slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from mriviewer.demo.plan import SeriesGrid

#: DICOM ImageComments of every file.
IMAGE_COMMENTS: str = "Synthetic phantom - research use only"


# ---------------------------------------------------------------------------- series geometry
def _fmt(v: float) -> str:
    """A DICOM DS string (at most 16 characters) for a value with ≤ 4 decimals."""
    s = f"{round(float(v), 4) + 0.0:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


# ---------------------------------------------------------------------------- DICOM writing
def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["mriviewer-demo", str(seed), *(str(p) for p in parts)])


#: Tags of the elements written per file (SOPInstanceUID, InstanceNumber,
#: ImagePositionPatient, SliceLocation, PixelData), ascending.
_PER_FILE_TAGS = (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)


def _new_buffer() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian = True  # Explicit VR Little Endian
    fp.is_implicit_VR = False
    return fp


def _encode(elements: list) -> bytes:
    fp = _new_buffer()
    for elem in elements:
        write_data_element(fp, elem)
    return fp.getvalue()


def _write_series(folder: Path, pixels: np.ndarray, grid: SeriesGrid, numbering: str,
                  rng: np.random.Generator, header: dict) -> None:
    """Write ``pixels`` (uint16, shape ``(K, rows, columns)``, spatial order) as
    ``Image-N.dcm`` files, N = InstanceNumber assigned by ``numbering``."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = _instance_numbers(pixels.shape[0], numbering, rng)
    seed, case_id, modality = header["seed"], header["case_id"], header["modality"]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # Only five elements change from file to file. pydicom encodes the others once per series
    # and these five per file; each file is the concatenation in tag order — the bytes
    # ``ds.save_as(path, enforce_file_format=True)`` writes, about three times faster.
    segments = _shared_segments(_series_dataset(grid, header))
    normal = np.cross(grid.iop[:3], grid.iop[3:])
    for kk in range(pixels.shape[0]):
        number = int(numbers[kk])
        sop = _uid(seed, case_id, modality, number, "image")
        meta.MediaStorageSOPInstanceUID = sop
        per_file = (
            DataElement(0x00080018, "UI", sop),  # SOPInstanceUID
            DataElement(0x00200013, "IS", str(number)),  # InstanceNumber
            DataElement(0x00200032, "DS", [_fmt(v) for v in grid.ipp[kk]]),  # ImagePositionPatient
            DataElement(0x00201041, "DS", _fmt(float(grid.ipp[kk] @ normal))),  # SliceLocation
            DataElement(0x7FE00010, "OW", np.ascontiguousarray(pixels[kk], dtype="<u2").tobytes()),
        )
        (folder / f"Image-{number}.dcm").write_bytes(_file_bytes(meta, segments, per_file))


def _instance_numbers(k: int, numbering: str, rng: np.random.Generator) -> np.ndarray:
    """InstanceNumber of each of the ``k`` slices in spatial order: ``"forward"`` 1…k,
    ``"reverse"`` k…1, anything else a permutation drawn from ``rng``."""
    if numbering == "forward":
        return np.arange(1, k + 1)
    if numbering == "reverse":
        return np.arange(k, 0, -1)
    return rng.permutation(k) + 1


def _series_dataset(grid: SeriesGrid, header: dict) -> Dataset:
    """The elements shared by every file of the series (all but :data:`_PER_FILE_TAGS`)."""
    seed, case_id, modality = header["seed"], header["case_id"], header["modality"]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.SOPClassUID = MRImageStorage
    ds.StudyDate = "20210101"
    ds.SeriesDate = "20210101"
    ds.StudyTime = "120000"
    ds.Modality = "MR"
    ds.Manufacturer = "mriviewer synthetic phantom"
    ds.PatientName = "Demo^Phantom"
    ds.PatientID = f"{case_id:05d}"
    ds.BodyPartExamined = "BRAIN"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = _uid(seed, case_id, "study")
    ds.SeriesInstanceUID = _uid(seed, case_id, modality, "series")
    ds.FrameOfReferenceUID = _uid(seed, case_id, "frame")
    ds.StudyID = f"{case_id}"
    ds.SeriesNumber = header["series_number"]
    ds.SeriesDescription = modality
    ds.ImageComments = IMAGE_COMMENTS
    ds.SliceThickness = _fmt(grid.slice_spacing)
    ds.SpacingBetweenSlices = _fmt(grid.slice_spacing)
    ds.ImageOrientationPatient = [_fmt(v) for v in grid.iop]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.rows
    ds.Columns = grid.columns
    ds.PixelSpacing = [_fmt(grid.pixel_spacing), _fmt(grid.pixel_spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    return ds


def _shared_segments(ds: Dataset) -> list[bytes]:
    """``ds`` encoded as the ``len(_PER_FILE_TAGS) + 1`` runs of elements between the per-file
    tags (in ascending tag order)."""
    elements = list(ds)  # in ascending tag order
    segments, start = [], 0
    for tag in _PER_FILE_TAGS:
        stop = start
        while stop < len(elements) and elements[stop].tag < tag:
            stop += 1
        segments.append(_encode(elements[start:stop]))
        start = stop
    segments.append(_encode(elements[start:]))
    return segments


def _file_bytes(meta: FileMetaDataset, segments: list[bytes], per_file: tuple) -> bytes:
    """One Part 10 file: preamble, file meta, then the shared segments with the per-file
    elements between them."""
    fp = _new_buffer()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    for segment, elem in zip(segments[:-1], per_file, strict=True):
        fp.write(segment)
        write_data_element(fp, elem)
    fp.write(segments[-1])
    return fp.getvalue()
