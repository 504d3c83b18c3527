"""Find cases, modalities and labels in a folder.

Supported layouts (:func:`discover` picks one by looking at the folder):

* **RSNA-MICCAI 2021** — ``<root>[/train]/<case id>/{FLAIR,T1w,T1wCE,T2w}/Image-N.dcm`` with a
  label CSV ``BraTS21ID,MGMT_value[,…]`` in the root or its parent (IDs may be unpadded
  integers: case folder ``00046`` is ID ``46``). Task: MGMT promoter methylation (binary).
* **BraTS NIfTI** — one folder per case with files named as in BraTS 2018 (``FLAIR.nii.gz``,
  ``T1.nii.gz``, ``GT_W.nii.gz``), 2019 (``<id>_{flair,t1,t1ce|t1post,t2,seg}.nii.gz``) or 2023
  (``<id>-{t2f,t1n,t1c,t2w,seg}.nii.gz``); an optional CSV with a case-id column and a label
  column. A folder with BraTS 2018/2019 ``HGG/`` and ``LGG/`` sub-folders of such cases is one
  dataset labelled by the sub-folder (classes ``HGG``, ``LGG``; case ids ``HGG/<case>``).
* **BIDS** — ``<root>/sub-<label>[/ses-<label>]/anat/sub-<label>[_ses-<label>]_<suffix>.nii.gz``
  (with ``dataset_description.json``, ``participants.tsv``, ``derivatives/``), or one ``sub-*``
  folder: one case per subject and session (``sub-01_ses-01``), the subject its patient; suffix
  ``T1w``/``T2w``/``FLAIR``, ``T1w`` with ``ce-`` is ``T1wCE``; derivative masks and ``dseg``
  are the segmentation; ``participants.tsv`` columns are offered as labels (layout ``bids``,
  :mod:`mriviewer.data.layouts.bids`).
* **2D image folder** — ``<root>/<class name>/*.{jpg,jpeg,png}``; each image is a case with a
  single slice, its class the folder name.
* **Raw NIfTI export** — one folder holding one NIfTI file per series, named as archives and
  converters write them (dcm2niix ``3_AX_T2_FLAIR.nii.gz``, ``T1_MPRAGE_SAG_5.nii.gz``,
  ``t2_tse_tra.nii``, ``AX_T1_POST_GD.nii.gz``; BIDS ``sub-01_ses-1_FLAIR.nii.gz``,
  ``sub-01_ce-gd_T1w.nii.gz``): one case (layout ``raw-nifti``); the modality of each file is
  guessed from its name (:func:`guess_modality`) and the reason kept on its
  :class:`ModalitySource`; names that say none of the four structural modalities are
  ``other``, ``other-2``, …; segmentations (``seg``, ``mask``, ``label``, ``GlistrBoost``,
  ``aseg``) are the case's labels. Files on different voxel grids are reported (the viewer
  resamples them onto one grid).
* A single DICOM series folder, NIfTI file or image: one case. A single DICOM *file* opens only
  its own series (the files of its folder with the same SeriesInstanceUID and geometry).
* Loose 2D images in a folder (no class folders): one unlabelled case each (layout ``images``).
* Anything else: every sub-folder discovered on its own (layout ``collection``).
* **Assembled** — several folders, each given a class by the user (``--data HGG=path
  --data healthy=path``): see :func:`assemble` and :func:`parse_data_args`.

Each folder is judged on its own by the :data:`LAYOUTS` registry, and what no layout claims is
reported or discovered further, so mixed folders lose nothing (see :func:`discover`).

Nothing is decoded here: discovery reads folder listings, the label CSV and, for raw NIfTI
exports only, NIfTI headers, so it is fast on large trees. A case that cannot be used is kept
with its ``errors``; discovery never fails because of one bad case or one unreadable folder.
Label files are checked row by row (:func:`read_label_table`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.data.cases import DATASET_SETTINGS, IMAGE_MODALITY, Case, Dataset, ModalitySource
from mriviewer.data.labels import LabelFileError
from mriviewer.data.layouts.bids import _build_bids, _claims_bids
from mriviewer.data.layouts.brats import (
    _build_graded,
    _build_nifti_case,
    _build_nifti_cases,
    _claims_graded,
    _claims_nifti_case,
    _claims_nifti_cases,
)
from mriviewer.data.layouts.dicom import _build_dicom, _claims_dicom, _dicom_series_case
from mriviewer.data.layouts.images import (
    _build_image_folder,
    _build_images,
    _claims_image_folder,
    _claims_images,
    _image_source,
)
from mriviewer.data.layouts.nifti import _build_nifti_files, _claims_nifti_files
from mriviewer.data.layouts.rsna import (
    _build_rsna,
    _build_rsna_case,
    _build_rsna_train,
    _claims_rsna,
    _claims_rsna_case,
    _claims_rsna_train,
)
from mriviewer.data.listing import _AUX_SUFFIXES, FolderListing, discovery_session
from mriviewer.data.modality import guess_modality
from mriviewer.data.patients import assign_patients
from mriviewer.io.dicom.scan import is_dicom_file
from mriviewer.io.paths import IMAGE_SUFFIXES, is_nifti


# ---------------------------------------------------------------------------- discovery
def discover(path: str | Path, progress: Callable[[int, Path], None] | None = None) -> Dataset:
    """Find the cases under ``path`` (a dataset folder, a case, a series folder or a file).

    ``progress(folders_read, folder)`` is called as each folder is read (from the calling
    thread); it may raise :class:`~mriviewer.core.errors.Cancelled` to stop, which ``discover``
    lets through (nothing partial is returned). The GUI shows it and offers Cancel.

    Every folder is judged on its own: the :data:`LAYOUTS` are tried in order on the folder's
    entries, each claiming the entries it understands; what no layout claims is looked at again
    (sub-folders are discovered on their own, like a collection), so a folder that mixes
    layouts (a NIfTI case, a DICOM series and a JPEG class folder side by side) loads every case
    it can. Whatever cannot be used — an unreadable folder, a zero-byte image, a broken link, a
    FIFO, a file no layout understands — is named in :attr:`Dataset.warnings`, never dropped
    silently, and never stops the other cases from opening. When one part has labels (a task)
    and others do not, the others' cases are listed without labels (and the warning says so).

    Each case's patient is set where the layout or the names tell
    (:func:`mriviewer.data.patients.assign_patients`). Cases are listed in folder order; a :data:`DATASET_SETTINGS` file in the dataset's root or
    its parent is read into :attr:`Dataset.settings`.

    Raises:
        DatasetError: the path does not exist, is not a regular file or folder (``/dev/null``,
            a FIFO, a socket), or holds nothing mriviewer can read; or its label file is
            unusable (see :func:`read_label_table`).
    """
    with discovery_session(progress):
        ds = assign_patients(_discover(Path(path).expanduser()))
    for folder in (ds.root, ds.root.parent):
        f = folder / DATASET_SETTINGS
        if os.path.isfile(f):
            try:
                ds.settings = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                ds.warnings.append(f"{f}: ignored, not valid JSON ({exc})")
            break
    return ds


@dataclass(frozen=True)
class Layout:
    """A folder layout :func:`discover` recognises (in the spirit of MONAI's ``ImageReader``:
    each says whether it claims a folder before it reads it).

    Attributes:
        name: the layout's name (``Dataset.layout`` of what it builds).
        claims: ``claims(listing) -> bool``: whether this layout understands (part of) the
            folder; cheap (folder listings, at most a few file headers).
        build: ``build(listing) -> (Dataset, used)``: the cases and the entries (files and
            folders of the listing) it used; the rest is offered to the next layouts and then
            discovered folder by folder. May raise :class:`DatasetError` (reported as a
            warning when other parts of the folder load).
    """

    name: str
    claims: Callable[[FolderListing], bool]
    build: Callable[[FolderListing], tuple[Dataset, set[Path]]]


def _discover(root: Path, depth: int = 0) -> Dataset:
    from mriviewer.io.paths import path_kind

    kind = path_kind(root)
    if kind == "missing":
        raise DatasetError(f"{root}: no such file or folder")
    if kind == "file":
        return _single_file(root)
    if kind != "folder":
        raise DatasetError(f"{root}: not a regular file or folder: a {kind}; nothing was read")
    listing = FolderListing.read(root, depth)
    warnings = list(listing.problems)
    parts: list[Dataset] = []
    remaining = listing
    for layout in LAYOUTS:
        if not (remaining.dirs or remaining.files):
            break
        try:
            if not layout.claims(remaining):
                continue
            ds, used = layout.build(remaining)
        except LabelFileError:
            raise  # an unusable label file is the dataset's problem, not one folder's
        except DatasetError as exc:
            warnings.append(str(exc))
            continue
        except OSError as exc:
            warnings.append(f"{root}: {layout.name}: cannot read ({exc})")
            continue
        if ds.cases:
            parts.append(ds)
        else:
            warnings.extend(ds.warnings)
        remaining = remaining.without(used)
    subs: list[tuple[Path, Dataset]] = []
    for d in remaining.dirs:
        if depth >= _MAX_DEPTH:
            warnings.append(f"{d}: not searched (more than {_MAX_DEPTH} folder levels down)")
            continue
        try:
            sub = _discover(d, depth + 1)
        except _NothingHere:
            continue
        except DatasetError as exc:
            warnings.append(f"{d}: skipped: {exc}" if str(d) not in str(exc) else str(exc))
            continue
        except OSError as exc:
            warnings.append(f"{d}: cannot read ({exc.strerror or exc}); skipped")
            continue
        if sub.cases:
            subs.append((d, sub))
        else:
            warnings.extend(sub.warnings)
    for f in remaining.files:
        if f.suffix.lower() in _AUX_SUFFIXES and not is_nifti(f):
            continue
        if remaining.sizes.get(f) == 0:
            warnings.append(f"{f}: empty file (0 bytes); skipped")
        elif f.suffix.lower() in IMAGE_SUFFIXES + (".dcm", ".nii", ".ima", ".mgz", ".nrrd", ".mha", ".mhd"):
            warnings.append(f"{f}: not used: no layout understands it (format not recognised)")
    ds = _merge(root, parts, subs, warnings)
    if ds is None:
        if warnings:
            raise DatasetError(f"{root}: nothing could be opened; " + "; ".join(warnings[:3])
                               + (f" (and {len(warnings) - 3} more)" if len(warnings) > 3 else ""))
        raise _NothingHere(
            f"{root}: no DICOM series, NIfTI case, RSNA-MICCAI or image-folder layout found")
    return ds


class _NothingHere(DatasetError):
    """A folder with nothing that looks like data (only notes, tables, empty folders)."""


_MAX_DEPTH = 4


def _merge(root: Path, parts: list[Dataset], subs: list[tuple[Path, Dataset]],
           warnings: list[str]) -> Dataset | None:
    """One dataset from the parts built from ``root``'s own entries and the datasets of its
    sub-folders; ``None`` when there is no case at all."""
    if not parts and not subs:
        return None
    if len(parts) == 1 and not subs:
        parts[0].warnings.extend(warnings)
        return parts[0]
    primary = next((p for p in parts if p.class_names and any(c.label is not None for c in p.cases)), None)
    labelled = [s for _, s in subs if s.task != "none"]
    alike = primary is None and not parts and labelled and all(
        s.class_names == labelled[0].class_names and s.layout == labelled[0].layout for s in labelled)
    if alike:
        # Sub-folders labelled alike (kaggle-4class/Testing, or Training + Testing): one task,
        # case ids prefixed by their folder; sub-folders without labels are listed unlabelled.
        first = labelled[0]
        out = Dataset(root, first.layout, class_names=list(first.class_names), label_source=first.label_source,
                      patient_ids=first.patient_ids, settings=dict(first.settings))
        groups = list(subs)
    elif primary is None:
        out = Dataset(root, "collection")
        groups = [(None, p) for p in parts] + list(subs)
    else:
        out = primary
        groups = [(None, p) for p in parts if p is not primary] + list(subs)
    out.warnings.extend(warnings)
    ids = {c.case_id for c in out.cases}
    for d, sub in groups:
        keeps_labels = any(sub is s for s in labelled) if alike else primary is None
        rel = ""
        if d is not None:
            rel = sub.root.relative_to(root).as_posix() if root in sub.root.parents else d.name
        for c in sub.cases:
            if not keeps_labels:
                c.label, c.label_name = None, None
            elif c.label is not None and c.label_name is None and c.label < len(sub.class_names):
                c.label_name = sub.class_names[c.label]
            if rel:
                c.case_id = rel if c.case_id == rel.rsplit("/", 1)[-1] else f"{rel}/{c.case_id}"
            base, k = c.case_id, 1
            while c.case_id in ids:
                k += 1
                c.case_id = f"{base}-{k}"
            ids.add(c.case_id)
            out.cases.append(c)
        out.warnings.extend(sub.warnings)
        out.patient_ids = out.patient_ids and sub.patient_ids
        if alike and not keeps_labels:
            out.warnings.append(f"{d}: {len(sub.cases)} case(s) without labels ({sub.layout}), listed unlabelled")
        elif primary is not None:
            where = d if d is not None else root
            out.warnings.append(
                f"{where}: {len(sub.cases)} case(s) of another layout ({sub.layout}) listed without "
                f"labels; the task comes from {primary.label_source or primary.root}")
    return out


#: Layout detectors, tried in this order on every folder (see :class:`Layout`).
LAYOUTS: list[Layout] = [
    Layout("bids", _claims_bids, _build_bids),
    Layout("rsna-miccai", _claims_rsna_train, _build_rsna_train),
    Layout("rsna-miccai", _claims_rsna, _build_rsna),
    Layout("rsna-miccai", _claims_rsna_case, _build_rsna_case),
    Layout("nifti-case", _claims_nifti_case, _build_nifti_case),
    Layout("nifti-cases", _claims_nifti_cases, _build_nifti_cases),
    Layout("brats-graded", _claims_graded, _build_graded),
    Layout("image-folder", _claims_image_folder, _build_image_folder),
    Layout("dicom-series", _claims_dicom, _build_dicom),
    Layout("nifti-files", _claims_nifti_files, _build_nifti_files),
    Layout("images", _claims_images, _build_images),
]


def _single_file(path: Path) -> Dataset:
    if is_nifti(path):
        m, reason = guess_modality(path.name)
        if m == "SEG":
            raise DatasetError(f"{path}: a segmentation alone cannot be opened as a case ({reason})")
        case_id = re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)
        ds = Dataset(path.parent, "file")
        ds.cases = [Case(case_id, {m: ModalitySource(m, path, "nifti", reason=reason)})]
        return ds
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: empty file (0 bytes)")
        ds = Dataset(path.parent, "file", patient_ids=False)
        ds.cases = [Case(path.stem, {IMAGE_MODALITY: _image_source(path)}, is_2d=True)]
        return ds
    if is_dicom_file(path):
        return _dicom_series_case(path.parent, only=path)
    raise DatasetError(f"{path}: unknown file type (expected DICOM, NIfTI or a 2D image)")
