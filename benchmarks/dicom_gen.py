"""Generated DICOM series for ``bench_dicom.py`` (pydicom only; nothing committed, nothing downloaded).

Three series of the sizes real protocols produce:

* :func:`write_t1_3d`: a classic 3D T1, one file per slice (130 × 256², int16, axial, 1 mm);
* :func:`write_dwi`: a classic DWI, one file per slice and volume (20 volumes × 100 slices of
  128², a b = 0 volume and 19 gradient directions at b = 1000, DiffusionBValue (0018,9087) and
  DiffusionGradientOrientation (0018,9089) in every file, AcquisitionNumber per volume);
* :func:`write_enhanced_fmri`: one Enhanced MR file (PS3.3 C.8.13) of 500 frames (10 time points
  × 50 slices of 128²) with the Multi-frame Dimension Module (PS3.3 C.7.6.17: Stack ID, In-Stack
  Position Number, Temporal Position Index) and per-frame functional groups (PS3.3 C.7.6.16).

Sequences are written with undefined lengths and item delimiters, as scanners write them, and
with no Manufacturer, so that dcm2niix applies the standard's dimension rules (its vendor rules
are for vendors' own files).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def _base(sop_class: str, series_uid: str, description: str, series_number: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = "MR", "bench", "Bench^DICOM"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.160", series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.161"
    ds.SeriesDescription, ds.SeriesNumber = description, series_number
    ds.StudyDate, ds.SeriesTime, ds.AcquisitionTime = "20240101", "120000", "120000"
    ds.PatientPosition = "HFS"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 1
    ds.MagneticFieldStrength, ds.EchoTime, ds.RepetitionTime = 3, 30, 2000
    return ds


def _undefined_lengths(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _undefined_lengths(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def _item(**attrs) -> Sequence:
    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return Sequence([ds])


def _phantom(size: int, n_slices: int, seed: int) -> np.ndarray:
    """``(slices, rows, cols)`` int16: an ellipsoid head with noise, different in every slice."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.linspace(-1, 1, n_slices), np.linspace(-1, 1, size), np.linspace(-1, 1, size),
                          indexing="ij")
    head = (x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.95) ** 2 < 1
    data = head * (800 + 300 * np.cos(6 * x) * np.sin(4 * y + z)) + rng.normal(0, 20, head.shape)
    return np.clip(data, -1000, 30000).astype(np.int16)


def _classic_slice(ds: Dataset, k: int, pixels: np.ndarray, spacing: float, step: float) -> None:
    size = pixels.shape[0]
    origin = -spacing * (size - 1) / 2
    ds.ImageOrientationPatient = AXIAL
    ds.ImagePositionPatient = [f"{origin:.4f}", f"{origin:.4f}", f"{-60 + k * step:.4f}"]
    ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], step
    ds.SliceLocation = f"{-60 + k * step:.4f}"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.astype("<i2").tobytes()


def write_t1_3d(folder: Path, n_slices: int = 130, size: int = 256) -> list[Path]:
    """A classic 3D T1 series: ``n_slices`` files of ``size``² int16, 1 mm isotropic."""
    uid, data = generate_uid(), _phantom(size, n_slices, seed=1)
    files = []
    for k in range(n_slices):
        ds = _base(MRImageStorage, uid, "T1 MPRAGE 3D", 2)
        ds.ImageType, ds.InstanceNumber, ds.AcquisitionNumber = ["ORIGINAL", "PRIMARY", "M", "ND"], k + 1, 1
        _classic_slice(ds, k, data[k], 1.0, 1.0)
        files.append(_save(ds, folder / f"IM{k + 1:05d}.dcm"))
    return files


def gradient_directions(n: int, seed: int = 3) -> np.ndarray:
    """``n`` unit vectors spread over a half sphere (a golden-spiral scheme), in acquisition order."""
    i = np.arange(n) + 0.5
    z = 1 - i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z ** 2)
    vectors = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    return np.round(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), 6)


def write_dwi(folder: Path, n_volumes: int = 20, n_slices: int = 100, size: int = 128) -> list[Path]:
    """A classic DWI: a b = 0 volume and ``n_volumes - 1`` directions at b = 1000, one file per
    slice and volume (InstanceNumber in acquisition order, volume after volume)."""
    uid, base = generate_uid(), _phantom(size, n_slices, seed=2)
    grads = gradient_directions(n_volumes - 1)
    files = []
    for v in range(n_volumes):
        pixels = base if v == 0 else (base * (0.35 + 0.3 * abs(grads[v - 1][0]))).astype(np.int16)
        for k in range(n_slices):
            ds = _base(MRImageStorage, uid, "DWI 20 dir", 3)
            ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            ds.InstanceNumber, ds.AcquisitionNumber = v * n_slices + k + 1, v + 1
            ds.DiffusionBValue = 0.0 if v == 0 else 1000.0
            ds.DiffusionGradientOrientation = [0.0, 0.0, 0.0] if v == 0 else [float(g) for g in grads[v - 1]]
            _classic_slice(ds, k, pixels[k], 1.8, 1.5)
            files.append(_save(ds, folder / f"IM{v * n_slices + k + 1:05d}.dcm"))
    return files


def write_enhanced_fmri(path: Path, n_time: int = 10, n_slices: int = 50, size: int = 128) -> Path:
    """One Enhanced MR file of ``n_time × n_slices`` frames, time point after time point."""
    ds = _base(ENHANCED_MR, generate_uid(), "fMRI enhanced", 4)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    base = _phantom(size, n_slices, seed=4)
    spacing, step = 2.0, 2.5
    origin = -spacing * (size - 1) / 2
    groups, frames = [], []
    for t in range(n_time):
        for k in range(n_slices):
            fg = Dataset()
            fg.FrameContentSequence = _item(StackID="1", InStackPositionNumber=k + 1, TemporalPositionIndex=t + 1,
                                            DimensionIndexValues=[1, k + 1, t + 1])
            fg.MREchoSequence = _item(EffectiveEchoTime=30.0)
            fg.PlanePositionSequence = _item(ImagePositionPatient=[origin, origin, -60 + k * step])
            groups.append(fg)
            frames.append(base[k] + np.int16(5 * t))
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.SharedFunctionalGroupsSequence = _item(
        PlaneOrientationSequence=_item(ImageOrientationPatient=AXIAL),
        PixelMeasuresSequence=_item(PixelSpacing=[spacing, spacing], SliceThickness=step, SpacingBetweenSlices=step),
        PixelValueTransformationSequence=_item(RescaleSlope=1, RescaleIntercept=0, RescaleType="US"))
    uid = generate_uid()
    ds.DimensionOrganizationSequence = _item(DimensionOrganizationUID=uid)
    ds.DimensionIndexSequence = Sequence([
        _item(DimensionOrganizationUID=uid, DimensionIndexPointer=p, FunctionalGroupPointer=0x00209111,
              DimensionDescriptionLabel=label)[0]
        for p, label in ((0x00209056, "Stack ID"), (0x00209057, "In-Stack Position Number"),
                         (0x00209128, "Temporal Position Index"))])
    ds.Rows, ds.Columns, ds.NumberOfFrames = size, size, len(frames)
    ds.PixelData = np.stack(frames).astype("<i2").tobytes()
    with pydicom.config.disable_value_validation():
        return _save(ds, path)
