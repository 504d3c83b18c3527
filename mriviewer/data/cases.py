"""Cases and datasets: a :class:`Case` names its modality sources (files or series, not yet decoded),
its label and its segmentation; a :class:`Dataset` is the cases of one folder with their classes
and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.core.volume import MODALITIES

#: Modality name used for the single channel of a 2D image case.
IMAGE_MODALITY = "image"


#: Modality of a series whose description names none of the structural ones.
UNKNOWN_MODALITY = "other"


#: Optional JSON file in a dataset folder (or its parent) with suggested settings, e.g.
#: ``{"train": {"model": "resnet18-2d", "modalities": ["T1wCE"], "epochs": 10}}``; the GUI's
#: Train panel starts from them.
DATASET_SETTINGS = "mriviewer.json"


@dataclass
class ModalitySource:
    """Where one modality of a case lives. ``kind`` is ``"dicom"`` (a series folder, or the
    ``files`` of one series when the folder holds several), ``"nifti"`` or ``"image2d"``.
    ``reason`` says why it is this modality, in words (``"file name '3_AX_T2_FLAIR' contains
    'flair'"``, ``"folder named 'FLAIR' (RSNA-MICCAI layout)"``, ``"assigned by the user"``);
    ``mriviewer info`` shows it."""

    modality: str
    path: Path
    kind: str
    files: tuple[Path, ...] = ()
    volume_index: int = 0  # which volume of a 4D NIfTI
    reason: str = ""

    def load(self):
        """Decode this source (no caching): :func:`mriviewer.io.readers.load_volume` on its files or
        path, with its modality name and 4D volume index.

        Raises:
            LoadError: the source cannot be read; the message names the file.
        """
        from mriviewer.io.readers import load_volume

        return load_volume(list(self.files) if self.files else self.path, self.modality, self.volume_index)


@dataclass
class Case:
    """One patient (or one image, for 2D sets).

    ``label`` is the class index into :attr:`Dataset.class_names`, or ``None`` when unknown.
    ``errors`` holds messages naming files that could not be used; the case stays listed.
    ``source`` is the folder (as the user gave it) the case came from when the dataset was
    put together by :func:`assemble`, else ``None``. ``patient_id`` names the patient the case
    (a study, session or time point) belongs to when it is known (:mod:`mriviewer.data.patients`),
    else ``None``: the case is then its own patient. Splits keep a patient's cases together.
    """

    case_id: str
    modalities: dict[str, ModalitySource] = field(default_factory=dict)
    label: int | None = None
    segmentation: Path | None = None
    errors: list[str] = field(default_factory=list)
    is_2d: bool = False
    label_name: str | None = None
    source: str | None = None
    patient_id: str | None = None

    def first_modality(self, preferred: tuple[str, ...] = MODALITIES) -> str | None:
        """The first present modality in ``preferred`` order, else any present one."""
        for m in preferred:
            if m in self.modalities:
                return m
        return next(iter(self.modalities), None)


@dataclass
class Dataset:
    """Cases found under ``root`` with the task their labels define.

    ``task`` is ``"binary"``, ``"multiclass"`` or ``"none"`` (no labels). ``patient_ids``
    says whether case ids identify patients (False for 2D image sets, where one patient's
    images may be several cases).
    """

    root: Path
    layout: str
    cases: list[Case] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    label_source: Path | None = None
    warnings: list[str] = field(default_factory=list)
    patient_ids: bool = True
    settings: dict = field(default_factory=dict)
    #: The user's label table as recorded with a run (:func:`mriviewer.data.label_table.apply_labels`:
    #: file name, SHA-256, columns, mapping), or empty when the labels came with the dataset.
    label_record: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        if self.layout == "collection" or not self.class_names or all(c.label is None for c in self.cases):
            return "none"
        return "binary" if len(self.class_names) == 2 else "multiclass"

    @property
    def modalities(self) -> list[str]:
        """Modalities present in at least one case, standard ones first (SEG excluded)."""
        found = {m for c in self.cases for m in c.modalities}
        ordered = [m for m in MODALITIES if m in found]
        return ordered + sorted(found - set(MODALITIES) - {"SEG"})

    def case(self, case_id: str) -> Case:
        """The case called ``case_id``; a number also finds a zero-padded id (``0`` →
        ``00000``, as RSNA-MICCAI's label files write them) when exactly one matches.

        Raises:
            DatasetError: no such case.
        """
        for c in self.cases:
            if c.case_id == case_id:
                return c
        if str(case_id).isdigit():
            same = [c for c in self.cases if c.case_id.isdigit() and int(c.case_id) == int(case_id)]
            if len(same) == 1:
                return same[0]
        raise DatasetError(f"{self.root}: no case {case_id!r}")

    def labelled(self) -> list[Case]:
        if self.task == "none":
            return []
        return [c for c in self.cases if c.label is not None and not c.errors and c.modalities]

    def label_name(self, case: Case) -> str | None:
        """The class name of ``case``'s label, or ``None``."""
        if case.label_name is not None:
            return case.label_name
        if case.label is not None and 0 <= case.label < len(self.class_names):
            return self.class_names[case.label]
        return None


def case_identity(case: Case) -> str:
    """A stable identity of ``case`` however it was opened (alone, in its dataset, assembled with
    others under another id): a hash of its image files' resolved paths. Checkpoints record it per
    role so a training case is recognised under any case id; hashed, so no path (which may hold
    a patient's name) is stored in clear."""
    import hashlib

    paths = sorted(str(Path(s.path).resolve()) + "|" + "|".join(sorted(str(f) for f in s.files))
                   for s in case.modalities.values())
    return hashlib.sha1("\n".join(paths).encode()).hexdigest()[:20]


#: Bytes read from each end of a file for :func:`content_fingerprint`.
FINGERPRINT_BYTES = 16 * 1024


def _source_files(src: ModalitySource) -> list[Path]:
    if src.files:
        return sorted(Path(f) for f in src.files)
    path = Path(src.path)
    if path.is_dir():
        return sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    return [path]


def content_fingerprint(case: Case) -> str | None:
    """What ``case``'s images *are*, wherever they lie and whatever the case is called: a SHA-1 over
    each image file's size and its first and last :data:`FINGERPRINT_BYTES` (DICOM: the header with
    its UIDs, and the end of the pixel data; NIfTI: the header and the compressed voxels), sorted.
    A copy of the files at another path has the same fingerprint; another scan with the same case
    id does not. ``None`` when a file cannot be read. Checkpoints record it per role, so
    ``evaluate`` and ``predict`` tell seen cases by content, not by name."""
    import hashlib

    parts = []
    try:
        for src in case.modalities.values():
            for f in _source_files(src):
                size = f.stat().st_size
                with open(f, "rb") as fh:
                    head = fh.read(FINGERPRINT_BYTES)
                    fh.seek(max(size - FINGERPRINT_BYTES, len(head)))
                    tail = fh.read(FINGERPRINT_BYTES)
                parts.append(hashlib.sha1(str(size).encode() + head + tail).hexdigest())
    except OSError:
        return None
    return hashlib.sha1("\n".join(sorted(parts)).encode()).hexdigest()[:20] if parts else None


def assign_modality(ds: Dataset, old: str, new: str, case_id: str | None = None) -> int:
    """Rename modality ``old`` to ``new`` in every case (or only ``case_id``): the user's
    override when a SeriesDescription or file name was not recognised.

    Returns:
        number of cases changed.

    Raises:
        DatasetError: ``new`` is already present in a case that has ``old``, or no case has
            ``old``.
    """
    changed = 0
    for case in ds.cases:
        if case_id is not None and case.case_id != case_id:
            continue
        if old not in case.modalities:
            continue
        if new in case.modalities:
            raise DatasetError(f"case {case.case_id}: already has {new}; cannot rename {old} to it")
        src = case.modalities.pop(old)
        src.modality = new
        src.reason = f"assigned by the user ({old}={new}; was: {src.reason or old})"
        case.modalities[new] = src
        changed += 1
    if not changed:
        raise DatasetError(f"{ds.root}: no case has modality {old!r}")
    return changed
