"""What several subcommands share: discovering ``--data``, formatting a figure, predicting every case.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from mriviewer.core.errors import MriViewerError


def label_spec(args):
    """The :class:`~mriviewer.data.label_table.LabelSpec` of ``--labels`` and its options, or
    ``None`` without ``--labels``. ``--label-column`` alone names a column of the dataset's own
    table (a BIDS ``participants.tsv``): the spec's ``path`` is then ``None``, resolved by
    :func:`_discover`. The other options without ``--labels`` are an error."""
    from mriviewer.data.label_table import LabelSpec, parse_label_map

    given = [o for o in ("id_column", "patient_column", "label_map") if getattr(args, o, None)]
    if not getattr(args, "labels", None):
        if not getattr(args, "label_column", None):
            if given or getattr(args, "exclude_label", None):
                raise MriViewerError(f"--{(given or ['exclude_label'])[0].replace('_', '-')} needs --labels FILE")
            return None
        path = None
    else:
        path = Path(args.labels)
    return LabelSpec(path, args.label_column, args.id_column, args.patient_column,
                     parse_label_map(args.label_map), tuple(args.exclude_label or ()))


def _discover(path, assign: list[str], volume: int = 1, labels=None):
    """discover() (or assemble() for several / labelled ``--data`` values) plus the user's
    modality assignments, 4D volume choice (1-based) and label table (``labels``, a
    :class:`~mriviewer.data.label_table.LabelSpec`, applied last; what it matched is said on
    stderr)."""
    from mriviewer.data.assemble import assemble, parse_data_args
    from mriviewer.data.cases import assign_modality
    from mriviewer.data.discover import discover

    if isinstance(path, (list, tuple)):
        parsed = parse_data_args(list(path))
        if len(parsed) == 1 and parsed[0][0] is None:
            ds = discover(parsed[0][1])
        elif any(label is None for label, _ in parsed):
            raise MriViewerError("with several --data values, give each a class: --data LABEL=PATH")
        else:
            ds = assemble(parsed)
    else:
        ds = discover(path)
    if volume < 1:
        raise MriViewerError(f"--volume {volume}: volumes are numbered from 1")
    for case in ds.cases:
        for src in case.modalities.values():
            src.volume_index = volume - 1
    for item in assign or []:
        if "=" not in item:
            raise MriViewerError(f"--assign {item!r}: expected OLD=NEW, e.g. other=T2w")
        old, new = (v.strip() for v in item.split("=", 1))
        assign_modality(ds, old, new)
    if labels is not None:
        from mriviewer.data.label_table import apply_labels

        labels = _own_table(ds, labels)
        m = apply_labels(ds, labels)
        counts = ", ".join(f"{k} {n}" for k, n in m.class_counts().items())
        print(f"labels from {labels.path.name}: column {m.label_column!r}, ids in {m.id_column!r} "
              f"(by {m.keyed_by}); {len(m.labels)} of {len(ds.cases)} cases labelled ({counts})", file=sys.stderr)
    return ds


def _own_table(ds, labels):
    """``labels`` with its path: as given, or (``--label-column`` alone) a BIDS dataset's
    ``participants.tsv``.

    Raises:
        MriViewerError: no ``--labels`` and the dataset has no table of its own.
    """
    import dataclasses

    if labels.path is not None:
        return labels
    own = ds.root / "participants.tsv"
    if ds.layout == "bids" and own.is_file():
        print(f"labels: --label-column {labels.label_column} of the dataset's {own}", file=sys.stderr)
        return dataclasses.replace(labels, path=own)
    raise MriViewerError(f"--label-column {labels.label_column} needs --labels FILE (only a BIDS dataset's "
                         f"participants.tsv is used without it; {ds.root} is {ds.layout})")


def _f(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def _predict_all(predictor, ds, allow_missing: bool):
    """Predictions of every case of ``ds`` that has the model's modalities (others reported)."""
    from mriviewer.cache.memory import default_cache

    missing = predictor.check_modalities(ds.modalities, allow_missing)
    if missing:
        print(f"warning: predicting with zeros for {', '.join(missing)} (--allow-missing-modality)", file=sys.stderr)
    preds = []
    for case in ds.cases:
        try:
            preds.append(predictor.predict(case, default_cache().get))
        except MriViewerError as exc:
            print(f"case {case.case_id} skipped: {exc}", file=sys.stderr)
    return preds
