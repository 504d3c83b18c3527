"""What a run trained on, recorded with it (``metrics.json``'s ``"dataset"`` and the checkpoint)."""

from __future__ import annotations

from mriviewer.data.cases import Dataset
from mriviewer.data.patients import patient_count


def dataset_record(ds: Dataset) -> dict:
    """What a run trained on, as written to ``metrics.json`` (``"dataset"``) and the checkpoint: the folder, layout,
    classes, how many cases and patients, and the user's label table (file name, SHA-256,
    columns, mapping) when one labelled the cases. No case ids or patient ids."""
    return {"root": str(ds.root), "layout": ds.layout, "class_names": list(ds.class_names),
            "cases": len(ds.cases), "labelled": len(ds.labelled()),
            "patients": patient_count(ds) if ds.patient_ids else None,
            "label_source": str(ds.label_source) if ds.label_source else None,
            "label_table": dict(ds.label_record) or None}
