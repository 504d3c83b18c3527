"""Raw NIfTI export: one folder holding one NIfTI file per series, named as archives and converters
write them (dcm2niix ``3_AX_T2_FLAIR.nii.gz``, ``T1_MPRAGE_SAG_5.nii.gz``, ``t2_tse_tra.nii``,
``AX_T1_POST_GD.nii.gz``; BIDS ``sub-01_ses-1_FLAIR.nii.gz``): one case (layout ``raw-nifti``);
the modality of each file is guessed from its name (:func:`mriviewer.data.modality.guess_modality`).
"""

from __future__ import annotations

import re
from pathlib import Path

from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import Case, Dataset, ModalitySource
from mriviewer.data.listing import FolderListing
from mriviewer.data.modality import guess_modality


def _claims_nifti_files(listing: FolderListing) -> bool:
    return bool(listing.nifti_files())


def _build_nifti_files(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    files = listing.nifti_files()
    return _nifti_collection(listing.path, files), set(files)


def _nifti_collection(folder: Path, files: list[Path] | None = None) -> Dataset:
    """NIfTI volumes in a folder that are not one case (several of one modality, e.g. T1w of
    different subjects, or names that name no modality): each file is a case. Segmentations
    alone are reported, not opened as images."""
    ds = Dataset(folder, "nifti-files")
    files = FolderListing.read(folder).nifti_files() if files is None else files
    guesses = [(f, *guess_modality(f.name)) for f in files]
    by_mod: dict[str, list[Path]] = {}
    for f, m, _ in guesses:
        by_mod.setdefault(m, []).append(f)
    for m, fs in by_mod.items():
        if m in MODALITIES and len(fs) > 1 and len(fs) <= 6:
            ds.warnings.append(f"{folder}: {len(fs)} files look like {m} ({', '.join(f.name for f in fs)}); "
                               "each is opened as its own case")
    for f, m, reason in guesses:
        if m == "SEG":
            ds.warnings.append(f"{f}: a segmentation ({reason}) without its image; not opened as a case")
            continue
        case_id = re.sub(r"\.nii(\.gz)?$", "", f.name, flags=re.IGNORECASE)
        ds.cases.append(Case(case_id, {m: ModalitySource(m, f, "nifti", reason=reason)}))
    return ds
