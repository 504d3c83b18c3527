"""BraTS NIfTI: one folder per case with files named as in BraTS 2018 (``FLAIR.nii.gz``,
``T1.nii.gz``, ``GT_W.nii.gz``), 2019 (``<id>_{flair,t1,t1ce|t1post,t2,seg}.nii.gz``) or 2023
(``<id>-{t2f,t1n,t1c,t2w,seg}.nii.gz``); an optional CSV with a case-id column and a label
column. A folder with BraTS 2018/2019 ``HGG/`` and ``LGG/`` sub-folders of such cases is one
dataset labelled by the sub-folder (classes ``HGG``, ``LGG``; case ids ``HGG/<case>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import UNKNOWN_MODALITY, Case, Dataset, ModalitySource
from mriviewer.data.labels import _apply_generic_labels, _find_csv, _id_key
from mriviewer.data.listing import FolderListing, _subdirs
from mriviewer.data.modality import guess_modality, modality_from_name


def _claims_nifti_case(listing: FolderListing) -> bool:
    return _nifti_case_plan(listing.path, listing.nifti_files()) is not None


def _build_nifti_case(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    root = listing.path
    ds = _brats(root.parent, [root], label_dirs=[root.parent])
    return ds, set(listing.nifti_files())


def _nifti_case_dirs(listing: FolderListing) -> list[Path]:
    out = []
    for d in listing.dirs:
        try:
            files = FolderListing.read(d).nifti_files()
        except DatasetError:
            continue
        if _nifti_case_plan(d, files) is not None:
            out.append(d)
    return out


def _claims_nifti_cases(listing: FolderListing) -> bool:
    return bool(_nifti_case_dirs(listing))


def _build_nifti_cases(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    dirs = _nifti_case_dirs(listing)
    return _brats(listing.path, dirs, label_dirs=[listing.path, listing.path.parent]), set(dirs)


def _claims_graded(listing: FolderListing) -> bool:
    return bool(_brats_grade_dirs(listing.dirs))


def _build_graded(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    graded = _brats_grade_dirs(listing.dirs)
    return _brats_graded(listing.path, graded), {folder for folder, _ in graded.values()}


@dataclass
class _NiftiPlan:
    modalities: dict[str, ModalitySource]
    segmentations: list[tuple[Path, str]]
    strict: bool  # every image file named as BraTS/BIDS name them


def _nifti_case_plan(folder: Path, files: list[Path]) -> _NiftiPlan | None:
    """The NIfTI files of ``folder`` as one case, or ``None`` when they are not one case (no
    file names a structural modality, or two name the same one).

    Files whose name names no structural modality become ``other``, ``other-2``, … of the case
    when at least one file does (a raw archive export: localisers, DWI, PD next to T1 and
    FLAIR); segmentations (``seg``, ``mask``, ``label``, ``GlistrBoost``, ``aseg``, …) are the
    case's labels, not images.
    """
    if not files:
        return None
    guesses = [(f, *guess_modality(f.name)) for f in files]
    segs = [(f, r) for f, m, r in guesses if m == "SEG"]
    images = [(f, m, r) for f, m, r in guesses if m != "SEG"]
    known = [m for _, m, _ in images if m in MODALITIES]
    if images and not known:
        return None
    if len(known) != len(set(known)):
        return None
    mods: dict[str, ModalitySource] = {}
    n_other = 0
    for f, m, r in images:
        if m not in MODALITIES:
            n_other += 1
            m = UNKNOWN_MODALITY if n_other == 1 else f"{UNKNOWN_MODALITY}-{n_other}"
        mods[m] = ModalitySource(m, f, "nifti", reason=r)
    strict = all(modality_from_name(f.name) == m for f, m, _ in images)
    return _NiftiPlan(mods, segs, strict)


def _grid_warning(folder: Path, sources: list[ModalitySource]) -> str | None:
    """A warning when the NIfTI files of one case are on different voxel grids (headers only)."""
    import nibabel as nib
    import numpy as np

    grids = []
    for s in sources:
        try:
            img = nib.load(str(s.path))
            shape = tuple(int(n) for n in img.shape[:3])
            grids.append((s, shape, np.asarray(img.affine, dtype=float)))
        except Exception:  # noqa: BLE001 - the load reports it, naming the file
            continue
    if len(grids) < 2:
        return None
    _, shape0, aff0 = grids[0]
    if all(sh == shape0 and np.allclose(a, aff0, atol=1e-3) for _, sh, a in grids[1:]):
        return None

    def describe(s, shape, aff):
        mm = "x".join(f"{v:g}" for v in np.round(np.linalg.norm(aff[:3, :3], axis=0), 2))
        return f"{s.modality} {s.path.name} {'x'.join(map(str, shape))} at {mm} mm"

    return (f"{folder}: the case's files are on different voxel grids ("
            + "; ".join(describe(*g) for g in grids)
            + "); the viewer resamples every modality onto one grid (the finest by default)")


def _brats(root: Path, case_dirs: list[Path], label_dirs: list[Path]) -> Dataset:
    """NIfTI case folders: BraTS-named (layout ``brats-nifti``) or raw archive exports with the
    series description in the file names (layout ``raw-nifti`` when any case's modalities were
    guessed from free names; those cases are checked for files on different grids)."""
    ds = Dataset(root, "brats-nifti")
    for d in case_dirs:
        case = Case(d.name)
        try:
            listing = FolderListing.read(d)
        except DatasetError as exc:
            case.errors.append(str(exc))
            ds.cases.append(case)
            continue
        ds.warnings.extend(listing.problems)
        plan = _nifti_case_plan(d, listing.nifti_files())
        if plan is None:
            case.errors.append(f"{d}: its NIfTI files are not one case")
            ds.cases.append(case)
            continue
        case.modalities = plan.modalities
        if plan.segmentations:
            case.segmentation = plan.segmentations[0][0]
            for f, _ in plan.segmentations[1:]:
                ds.warnings.append(f"{f}: another segmentation in {d}; only {case.segmentation.name} is used")
        if not plan.strict:
            ds.layout = "raw-nifti"
            w = _grid_warning(d, list(plan.modalities.values()))
            if w:
                ds.warnings.append(w)
        if not case.modalities:
            case.errors.append(f"{d}: only a segmentation, no image modality")
        ds.cases.append(case)
    csv_path = _find_csv(label_dirs, id_values={_id_key(c.case_id) for c in ds.cases})
    if csv_path is not None:
        _apply_generic_labels(ds, csv_path)
    return ds


#: BraTS 2018/2019 training sets keep their cases in one sub-folder per tumour grade.
_GRADES = ("HGG", "LGG")


def _brats_grade_dirs(dirs: list[Path]) -> dict[str, tuple[Path, list[Path]]]:
    """Grade → (folder, its NIfTI case folders) for sub-folders named ``HGG`` / ``LGG`` (any
    case) that hold at least one BraTS NIfTI case; empty when there are none."""
    found: dict[str, tuple[Path, list[Path]]] = {}
    for grade in _GRADES:
        for d in dirs:
            if d.name.upper() != grade or grade in found:
                continue
            try:
                cases = _nifti_case_dirs(FolderListing.read(d))
            except DatasetError:
                continue
            if cases:
                found[grade] = (d, cases)
    return found


def _brats_graded(root: Path, graded: dict[str, tuple[Path, list[Path]]]) -> Dataset:
    """BraTS 2018/2019 ``HGG/`` and ``LGG/`` folders: the sub-folder is the label (a label CSV
    is not looked for; the grade folders are the labels)."""
    ds = Dataset(root, "brats-nifti")
    ds.class_names = [g for g in _GRADES if g in graded]
    for idx, grade in enumerate(ds.class_names):
        folder, case_dirs = graded[grade]
        sub = _brats(folder, case_dirs, label_dirs=[])
        for c in sub.cases:
            c.case_id = f"{grade}/{c.case_id}"
            c.label = idx
            ds.cases.append(c)
        ds.warnings.extend(sub.warnings)
        skipped = [d for d in _subdirs(folder) if d not in case_dirs]
        if skipped:
            names = ", ".join(d.name for d in skipped[:5]) + (", …" if len(skipped) > 5 else "")
            ds.warnings.append(f"{folder}: {len(skipped)} sub-folder(s) are not NIfTI cases; skipped ({names})")
    return ds
