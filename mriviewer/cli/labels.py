"""``mriviewer labels FILE --data PATH``: check a label table against a dataset before training."""

from __future__ import annotations

import json
from pathlib import Path

from mriviewer.cli.common import _discover


def _cmd_labels(args) -> int:
    from mriviewer.core.files import json_safe
    from mriviewer.data.label_table import (
        LabelSpec,
        describe_columns,
        match_labels,
        parse_label_map,
        read_table,
    )

    ds = _discover(args.data, [], 1)
    spec = LabelSpec(Path(args.file), args.label_column, args.id_column, args.patient_column,
                     parse_label_map(args.label_map), tuple(args.exclude_label or ()))
    df = read_table(spec.path)
    columns = describe_columns(df)
    m = match_labels(ds, spec, df)
    report = {
        "file": str(spec.path), "rows": len(df), "columns": columns, "id_column": m.id_column,
        "keyed_by": m.keyed_by, "label_column": m.label_column, "notes": m.notes, "cases": len(ds.cases),
        "labelled": len(m.labels), "classes": m.class_counts(), "cases_without_row": m.cases_without_row,
        "rows_without_case": m.rows_without_case, "repeated_ids": m.repeated, "conflicting_ids": m.conflicts,
        "patients_with_conflicting_labels": m.patient_conflicts, "unmapped_values": m.unmapped,
        "excluded": m.excluded, "blank_rows": m.blank_rows,
    }
    if args.json:
        print(json.dumps(json_safe(report), indent=2))
        return 0
    print(f"{spec.path}: {len(df)} rows, {len(columns)} columns")
    for c in columns:
        top = ", ".join(f"{v} ({n})" for v, n in list(c["top"].items())[:6])
        print(f"  {c['name']:<20} {c['type']:<6} {c['n_distinct']} distinct, {c['empty']} empty: {top}")
    for note in m.notes:
        print(note)
    counts = ", ".join(f"{k}: {n}" for k, n in m.class_counts().items())
    print(f"{len(m.labels)} of {len(ds.cases)} cases labelled ({counts})")
    for key, label in (("cases_without_row", "cases without a row"), ("rows_without_case", "rows without a case"),
                       ("repeated_ids", "ids on several rows (one label)"), ("conflicting_ids", "ids with conflicting labels"),
                       ("patients_with_conflicting_labels", "patients whose cases differ"),
                       ("excluded", "cases excluded"), ("blank_rows", "rows without an id or a label (lines)")):
        items = report[key]
        if items:
            print(f"{label}: {len(items)} (e.g. {', '.join(map(str, items[:5]))})")
    if m.unmapped:
        print("values not in --label-map: " + ", ".join(f"{v} ({n})" for v, n in m.unmapped.items()))
    return 0 if m.labels else 2


