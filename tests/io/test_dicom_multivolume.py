"""Several volumes in one DICOM series, read as dcm2niix reads them (issue 16).

Enhanced multi-frame MR files are generated here with pydicom (16×16 frames, four slices, two
volumes; nothing committed): volumes told apart by TemporalPositionIndex (the Multi-frame
Dimension Module, PS3.3 C.7.6.17), by FrameType (magnitude and phase, PS3.3 C.8.13.5.1) and by
MRDiffusionSequence, the choice of volume and an out-of-range choice, an RGB multi-frame file, and
a Rows = 0 file or an unplaceable file next to a good series in discovery. Where the ``dcm2niix``
wheel is installed (the ``test`` extra), the same files are converted by dcm2niix in the same
test and the volume count, order, affine (0.01 mm) and voxels compared; otherwise those checks
skip with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mriviewer.core.errors import LoadError
from mriviewer.io.dicom.series import read_dicom_series

ROWS, COLS, SLICES = 16, 16, 4
SPACING = (0.9, 0.8)  # (row spacing, column spacing) mm
STEP = 2.5
IOP = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
ORIGIN = np.array([-7.0, -6.0, 12.0])
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MR = pydicom.uid.MRImageStorage

FRAME_CONTENT, FRAME_TYPE_SEQ = 0x00209111, 0x00189226
STACK_ID, IN_STACK, TEMPORAL = 0x00209056, 0x00209057, 0x00209128
COMPLEX_COMPONENT, GRADIENT_SEQ, GRADIENT = 0x00089208, 0x00189076, 0x00189089


# ---------------------------------------------------------------------------- writing DICOM
def _meta(sop_class: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _base(sop_class: str, series_uid: str, description: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = _meta(sop_class)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"  # no Manufacturer: dcm2niix applies the standard dimension rules to unknown vendors only
    ds.PatientID, ds.PatientName = "multivolume", "Multi^Volume"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.16", series_uid
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, 7, 1
    ds.StudyDate, ds.SeriesTime, ds.AcquisitionTime = "20240101", "120000", "120000"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.17"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 1
    ds.MagneticFieldStrength, ds.EchoTime, ds.RepetitionTime = 3, 30, 2000
    return ds


def _undefined_lengths(ds: Dataset) -> None:
    """Sequences and items of undefined length, with delimiters, as scanners write them (dcm2niix
    takes a frame's DimensionIndexValues at its item delimiter)."""
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _undefined_lengths(ds)
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def _volume_pixels(v: int) -> np.ndarray:
    """``(SLICES, ROWS, COLS)`` int16: distinct values in every slice of every volume."""
    return (np.arange(SLICES * ROWS * COLS).reshape(SLICES, ROWS, COLS) + 2000 * v).astype(np.int16)


def _item(**attrs) -> Sequence:
    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return Sequence([ds])


#: The non-spatial dimension of each kind of volume label: (DimensionIndexPointer,
#: FunctionalGroupPointer, DimensionDescriptionLabel).
LABEL_DIMENSIONS = {
    "temporal": (TEMPORAL, FRAME_CONTENT, "Temporal Position Index"),
    "frame_type": (COMPLEX_COMPONENT, FRAME_TYPE_SEQ, "Complex Image Component"),
    "b": (GRADIENT, GRADIENT_SEQ, "Diffusion Gradient Orientation"),
}


def write_enhanced(path: Path, labels: list[dict], time_major: bool = True, dims: bool = True) -> list[np.ndarray]:
    """An Enhanced MR file of ``len(labels)`` volumes of SLICES frames each; ``labels[v]`` holds
    volume ``v``'s ``temporal`` (TemporalPositionIndex), ``frame_type`` (FrameType ``M`` or ``P``)
    and/or ``b`` (b-value, gradient). With ``dims`` the file has a DimensionIndexSequence: Stack
    ID, In-Stack Position Number and one dimension per kind of label. Frames are stored volume
    after volume (``time_major``) or slice after slice. Returns each volume's pixels
    ``(SLICES, ROWS, COLS)``."""
    ds = _base(ENHANCED_MR, generate_uid(), "fMRI multivolume")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    volumes = [_volume_pixels(v) for v in range(len(labels))]
    order = [(v, k) for v in range(len(labels)) for k in range(SLICES)]
    if not time_major:
        order = sorted(order, key=lambda vk: (vk[1], vk[0]))
    kinds = [kind for kind in LABEL_DIMENSIONS if any(kind in lab for lab in labels)] if dims else []
    ranks = {kind: {value: i + 1 for i, value in enumerate(dict.fromkeys(lab[kind] for lab in labels))}
             for kind in kinds}
    groups = []
    for v, k in order:
        lab = labels[v]
        index = [1, k + 1] + [lab[kind] if kind == "temporal" else ranks[kind][lab[kind]] for kind in kinds]
        groups.append(_frame_group(k, lab, index if dims else None))
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.SharedFunctionalGroupsSequence = _item(
        PlaneOrientationSequence=_item(ImageOrientationPatient=IOP),
        PixelMeasuresSequence=_item(PixelSpacing=list(SPACING), SliceThickness=STEP, SpacingBetweenSlices=STEP),
        PixelValueTransformationSequence=_item(RescaleSlope=1, RescaleIntercept=0, RescaleType="US"))
    if dims:
        pointers = [(STACK_ID, FRAME_CONTENT, "Stack ID"), (IN_STACK, FRAME_CONTENT, "In-Stack Position Number")]
        uid = generate_uid()
        ds.DimensionOrganizationSequence = _item(DimensionOrganizationUID=uid)
        ds.DimensionIndexSequence = Sequence([
            _item(DimensionOrganizationUID=uid, DimensionIndexPointer=p, FunctionalGroupPointer=g,
                  DimensionDescriptionLabel=d)[0]
            for p, g, d in pointers + [LABEL_DIMENSIONS[kind] for kind in kinds]])
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLS, len(order)
    ds.PixelData = np.stack([volumes[v][k] for v, k in order]).astype("<i2").tobytes()
    _save(ds, path)
    return volumes


def _frame_group(k: int, lab: dict, index: list[int] | None) -> Dataset:
    """The per-frame functional groups of slice ``k`` of a volume labelled ``lab``."""
    fg = Dataset()
    content = {"StackID": "1", "InStackPositionNumber": k + 1}
    if "temporal" in lab:
        content["TemporalPositionIndex"] = lab["temporal"]
    if index is not None:
        content["DimensionIndexValues"] = index
    fg.FrameContentSequence = _item(**content)
    fg.MREchoSequence = _item(EffectiveEchoTime=30.0)  # dcm2niix takes DimensionIndexValues after it
    fg.PlanePositionSequence = _item(ImagePositionPatient=[f"{x:.4f}" for x in ORIGIN + [0, 0, k * STEP]])
    if "frame_type" in lab:
        fg.MRImageFrameTypeSequence = _item(FrameType=["ORIGINAL", "PRIMARY", lab["frame_type"], "NONE"],
                                            ComplexImageComponent={"M": "MAGNITUDE", "P": "PHASE"}[lab["frame_type"]])
    if "b" in lab:
        b, grad = lab["b"]
        diffusion = {"DiffusionBValue": b, "DiffusionDirectionality": "DIRECTIONAL" if grad else "NONE"}
        if grad:
            diffusion["DiffusionGradientDirectionSequence"] = _item(DiffusionGradientOrientation=list(grad))
        fg.MRDiffusionSequence = _item(**diffusion)
    return fg


TWO_TIME_POINTS = [{"temporal": 1}, {"temporal": 2}]
MAGNITUDE_PHASE = [{"frame_type": "M"}, {"frame_type": "P"}]
DWI = [{"b": (0, None)}, {"b": (1000, (1.0, 0.0, 0.0))}, {"b": (1000, (0.0, 1.0, 0.0))}]


def _expected(pixels: np.ndarray) -> np.ndarray:
    """A volume's pixels ``(SLICES, ROWS, COLS)`` as mriviewer's ``(I, J, K)`` data."""
    return pixels.transpose(2, 1, 0)


# ---------------------------------------------------------------------------- reading
@pytest.mark.parametrize("time_major", [True, False], ids=["volume-after-volume", "slice-after-slice"])
def test_two_time_points_by_temporal_position_index(tmp_path, time_major):
    path = tmp_path / "fmri.dcm"
    volumes = write_enhanced(path, TWO_TIME_POINTS, time_major=time_major)
    for v, pixels in enumerate(volumes):
        vol = read_dicom_series(path, index4d=v)
        assert vol.shape == (COLS, ROWS, SLICES)
        np.testing.assert_array_equal(vol.data, _expected(pixels))
        assert vol.meta["n_volumes"] == 2 and vol.meta["volume_index"] == v
        assert vol.meta["volume_key"] == "TemporalPositionIndex" and vol.meta["volume_values"] == [1, 2]
        (warning,) = [w for w in vol.meta["warnings"] if "2 volumes" in w]
        assert "time point" in warning and f"showing volume {v + 1}" in warning


def test_volumes_follow_the_dimension_index_not_the_frame_order(tmp_path):
    """Time point 2 stored first: volume 1 is still time point 1."""
    path = tmp_path / "reversed.dcm"
    volumes = write_enhanced(path, [{"temporal": 2}, {"temporal": 1}])
    np.testing.assert_array_equal(read_dicom_series(path).data, _expected(volumes[1]))


def test_magnitude_and_phase_are_two_volumes_told_apart_by_frame_type(tmp_path):
    path = tmp_path / "magphase.dcm"
    volumes = write_enhanced(path, MAGNITUDE_PHASE, time_major=False, dims=False)
    first, second = read_dicom_series(path), read_dicom_series(path, index4d=1)
    np.testing.assert_array_equal(first.data, _expected(volumes[0]))
    np.testing.assert_array_equal(second.data, _expected(volumes[1]))
    assert second.meta["volume_key"] == "FrameType" and second.meta["volume_values"] == ["M\\NONE", "P\\NONE"]
    (warning,) = [w for w in second.meta["warnings"] if "2 volumes" in w]
    assert "image type (FrameType)" in warning and "frame order only" not in warning


def test_diffusion_volumes_by_b_value_and_gradient(tmp_path):
    path = tmp_path / "dwi.dcm"
    volumes = write_enhanced(path, DWI, dims=False)
    for v in range(3):
        vol = read_dicom_series(path, index4d=v)
        np.testing.assert_array_equal(vol.data, _expected(volumes[v]))
    assert vol.meta["volume_key"] == "DiffusionBValue" and vol.meta["n_volumes"] == 3


def test_unlabelled_frames_at_one_position_split_by_frame_order(tmp_path):
    path = tmp_path / "unlabelled.dcm"
    volumes = write_enhanced(path, [{}, {}], dims=False)
    vol = read_dicom_series(path, index4d=1)
    np.testing.assert_array_equal(vol.data, _expected(volumes[1]))
    assert vol.meta["volume_key"] == "frame order"
    assert any("frame order only" in w for w in vol.meta["warnings"])


@pytest.mark.parametrize("labels", [TWO_TIME_POINTS, MAGNITUDE_PHASE], ids=["time", "type"])
def test_a_volume_out_of_range_is_an_error_naming_the_file_and_the_count(tmp_path, labels):
    path = tmp_path / "IM_0001.dcm"
    write_enhanced(path, labels)
    with pytest.raises(LoadError) as err:
        read_dicom_series(path, index4d=98)
    assert str(err.value).startswith(f"{path}: 2 volumes; --volume 99 out of range")
    with pytest.raises(LoadError, match="--volume 3 out of range"):
        read_dicom_series(path, index4d=2, header_only=True)


def test_volume_choice_through_the_command_line(tmp_path, capsys):
    from mriviewer.cli import main

    path = tmp_path / "in" / "fmri.dcm"
    volumes = write_enhanced(path, TWO_TIME_POINTS)
    out = tmp_path / "v2.nii.gz"
    assert main(["convert", str(path), "--volume", "2", "--out", str(out)]) == 0
    import nibabel as nib

    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), _expected(volumes[1]))
    assert main(["convert", str(path), "--volume", "99", "--out", str(tmp_path / "v99.nii.gz")]) == 2
    assert "2 volumes; --volume 99 out of range" in capsys.readouterr().err
    assert not (tmp_path / "v99.nii.gz").exists()


def test_rgb_multiframe_reads_as_luminance_with_a_warning_that_says_rgb(tmp_path):
    """A colour FA map: was refused with '4 per-frame functional groups for pixel data of shape
    (4, 16, 16, 3)'."""
    path = tmp_path / "colfa.dcm"
    (grey,) = write_enhanced(path, [{}])
    rgb = np.stack([grey % 256, (grey // 2) % 256, (grey // 3) % 256], axis=-1).astype(np.uint8)
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = rgb.tobytes()
    _save(ds, path)
    vol = read_dicom_series(path)
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(vol.data, _expected(luma), atol=1e-3)
    assert any(str(path) in w and "RGB" in w and "SamplesPerPixel 3" in w and "shown as luminance" in w
               for w in vol.meta["warnings"]), vol.meta["warnings"]


# ---------------------------------------------------------------------------- discovery
def write_classic(folder: Path, n: int = SLICES, uid: str | None = None) -> list[Path]:
    uid = uid or generate_uid()
    files = []
    for k in range(n):
        ds = _base(MR, uid, "AX T2")
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = IOP
        ds.ImagePositionPatient = [f"{x:.4f}" for x in ORIGIN + [0, 0, k * STEP]]
        ds.PixelSpacing, ds.SliceThickness = list(SPACING), STEP
        ds.Rows, ds.Columns = ROWS, COLS
        ds.PixelData = _volume_pixels(0)[k % SLICES].astype("<i2").tobytes()
        files.append(_save(ds, folder / f"IM{k + 1:03d}.dcm"))
    return files


def _damage(path: Path, **attrs) -> None:
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        for key, value in attrs.items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(path)


@pytest.mark.parametrize(("damage", "phrase"), [
    ({"Rows": 0}, "Rows 0"),
    ({"ImageOrientationPatient": None}, "no ImageOrientationPatient"),
    ({"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]}, "not two unit vectors"),
    ({"NumberOfFrames": 3}, "without per-frame functional groups"),
], ids=["Rows-0", "no-IOP", "zero-IOP", "frames-without-groups"])
def test_a_damaged_file_is_a_warning_on_its_series_not_a_case(tmp_path, damage, phrase):
    from mriviewer.data.discover import discover
    from mriviewer.io.dicom.scan import scan_series

    files = write_classic(tmp_path / "s", n=SLICES + 1)
    _damage(files[-1], **damage)
    series, problems = scan_series(tmp_path / "s")
    assert [len(s.files) for s in series] == [SLICES]
    ds = discover(tmp_path / "s")
    assert len(ds.cases) == 1
    assert any(files[-1].name in w and phrase in w for w in ds.warnings), ds.warnings
    (src,) = ds.cases[0].modalities.values()
    vol = src.load()
    assert vol.shape == (COLS, ROWS, SLICES) and files[-1] not in vol.sources


def test_an_unplaceable_series_of_its_own_is_still_offered(tmp_path):
    """Without a good series sharing its UID, a file without orientation stays a series, so that
    reading it says what is wrong."""
    from mriviewer.io.dicom.scan import scan_series

    (good,) = write_classic(tmp_path / "s", n=1)
    (bad,) = write_classic(tmp_path / "s2", n=1)
    shutil.move(bad, tmp_path / "s" / "other.dcm")
    _damage(tmp_path / "s" / "other.dcm", ImageOrientationPatient=None)
    series, problems = scan_series(tmp_path / "s")
    assert sorted(s.files[0].name for s in series) == ["IM001.dcm", "other.dcm"] and not problems


# ---------------------------------------------------------------------------- against dcm2niix
def _dcm2niix() -> str:
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    if not Path(exe).is_file():
        pytest.skip("dcm2niix not installed (pip install 'mriviewer[test]' brings the dcm2niix wheel)")
    return exe


def _canonical(img) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.as_closest_canonical(img)
    return img.affine, np.asarray(img.get_fdata(dtype=np.float64))


def _dcm2niix_volumes(exe: str, folder: Path, out: Path) -> list:
    """dcm2niix's conversion of ``folder`` as a list of 3D images: its NIfTI files in name order
    (magnitude ``7.nii`` before phase ``7_ph.nii``), each 4D file cut into its volumes."""
    import nibabel as nib

    out.mkdir()
    run = subprocess.run([exe, "-o", str(out), "-f", "%s", "-z", "n", str(folder)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    volumes = []
    for nii in sorted(out.glob("*.nii")):
        img = nib.load(nii)
        volumes.extend([img.slicer[..., v] for v in range(img.shape[3])] if img.ndim == 4 else [img])
    return volumes


@pytest.mark.parametrize(("labels", "time_major"), [
    (TWO_TIME_POINTS, True), ([{"temporal": 2}, {"temporal": 1}], True), (MAGNITUDE_PHASE, False), (DWI, True),
], ids=["time", "time-reversed", "magnitude-phase", "diffusion"])
def test_volumes_agree_with_dcm2niix(tmp_path, labels, time_major):
    """dcm2niix converts the same file in the same test: the same number of volumes (one 4D
    file, or magnitude and phase files), in the same order, on the same grid (0.01 mm), with the
    same voxels."""
    exe = _dcm2niix()
    src = tmp_path / "in" / "multi.dcm"
    write_enhanced(src, labels, time_major=time_major)
    theirs = _dcm2niix_volumes(exe, src.parent, tmp_path / "out")
    assert len(theirs) == read_dicom_series(src).meta["n_volumes"] == len(labels)
    for v, ref_img in enumerate(theirs):
        ours_affine, ours = _canonical(read_dicom_series(src, index4d=v).to_nifti())
        ref_affine, ref = _canonical(ref_img)
        np.testing.assert_allclose(ours_affine, ref_affine, atol=0.01)
        np.testing.assert_array_equal(ours, ref)


def test_classic_dwi_volumes_come_in_acquisition_order(tmp_path):
    """A b = 1000 volume acquired before the b0 stays volume 1 (dcm2niix's order, the order of
    FSL's .bval); by b-value the b0 came first."""
    from mriviewer.io.dicom.series import read_dicom_series
    from tests.io.test_hostile_dicom import edit_all, write_series

    folder = tmp_path / "dwi"
    first = write_series(folder, DiffusionBValue=1000.0)
    uid = str(pydicom.dcmread(first[0], stop_before_pixels=True).SeriesInstanceUID)
    second = write_series(folder, series_uid=uid, offset=5, prefix="V2_", DiffusionBValue=0.0)
    for k, f in enumerate(first + second):
        edit_all([f], InstanceNumber=k + 1)
    vol = read_dicom_series(folder)
    assert vol.meta["volume_key"] == "DiffusionBValue"
    assert [float(v[0]) for v in vol.meta["volume_values"]] == [1000.0, 0.0]
    assert [p.name for p in vol.sources][0].startswith("IM")
