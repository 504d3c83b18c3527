""":func:`export_reports` writes one PDF per case and ``predictions.csv`` for a whole dataset as a
generator of progress tuples, so a GUI can show a progress bar and cancel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from mriviewer.core.errors import DatasetError, MriViewerError
from mriviewer.data.cases import Dataset
from mriviewer.reporting.inputs import ExportCancelled, build_report_inputs, report_filename
from mriviewer.reporting.pdf import write_case_report
from mriviewer.reporting.predictions_csv import write_predictions_csv

log = logging.getLogger(__name__)


#: Name of the CSV :func:`export_reports` writes next to the PDFs.
PREDICTIONS_CSV = "predictions.csv"


# ---------------------------------------------------------------------------- batch export
class ReportProgress(NamedTuple):
    """One step of :func:`export_reports`: ``done`` of ``total`` cases handled; ``result`` is
    the PDF's :class:`~pathlib.Path`, or the error message (``str``) when the case failed."""

    done: int
    total: int
    case_id: str
    result: Path | str

    @property
    def ok(self) -> bool:
        """Whether this case's PDF was written."""
        return isinstance(self.result, Path)


@dataclass
class ExportSummary:
    """What :func:`export_reports` did (its generator's return value): ``written``
    ``{case_id: pdf}``, ``failed`` ``{case_id: message}``, the CSV (``None`` when cancelled or
    nothing was predicted) and whether it was cancelled."""

    out_dir: Path
    written: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    predictions_csv: Path | None = None
    cancelled: bool = False


def export_reports(predictor, dataset: Dataset, out_dir: str | Path, case_ids: Iterable[str] | None = None,
                   loader=None, cancel: Callable[[], bool] = lambda: False,
                   predictions: Mapping | None = None, gradcams: Mapping | None = None,
                   **display) -> Generator[ReportProgress, None, ExportSummary]:
    """Write one PDF report per case into ``out_dir`` and :data:`PREDICTIONS_CSV`, step by step.

    Iterate to run it; each case yields :class:`ReportProgress` ``(done, total, case_id,
    path_or_error)``. A case that fails (unreadable file, missing modality, …) yields its error
    message and the export goes on with the next; the CSV has a row for every case that could be
    predicted (also when its PDF then failed). ``cancel`` is polled before each case and
    between a report's images: when it returns true the export stops, the report being written
    is removed (finished PDFs stay) and no CSV is written. The generator returns an
    :class:`ExportSummary` (``StopIteration.value``; ``summary = yield from export_reports(…)``).

    Args:
        predictor: a loaded :class:`~mriviewer.ml.predict.Predictor`.
        dataset: the cases' :class:`~mriviewer.data.cases.Dataset`.
        out_dir: folder (created if needed); a PDF per case named by :func:`report_filename`
            (``-2``, ``-3`` … appended when two ids give one name).
        case_ids: which cases (default all), in this order.
        loader: ``ModalitySource → Volume``; default the process-wide volume cache.
        predictions, gradcams: ``{case_id: Prediction / GradCamResult}`` already computed
            (e.g. by the GUI); others are computed.
        display: ``radiological``, ``cmap``, ``opacity``, ``threshold`` for every report.

    Raises:
        DatasetError: a ``case_ids`` entry names no case of ``dataset`` (before any work).
        MriViewerError: ``out_dir`` cannot be created, or the CSV cannot be written.
    """
    if loader is None:
        from mriviewer.cache.memory import default_cache

        loader = default_cache().get
    out_dir = Path(out_dir)
    cases = _chosen_cases(dataset, case_ids)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MriViewerError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    predictions, gradcams = predictions or {}, gradcams or {}
    summary = ExportSummary(out_dir)
    names: set[str] = set()
    preds = []
    for done, case in enumerate(cases, start=1):
        if cancel():
            summary.cancelled = True
            break
        try:
            pred, cam = predictions.get(case.case_id), gradcams.get(case.case_id)
            if pred is None and cam is None:  # one preprocessing of the case for both
                pred, cam = predictor.predict_with_gradcam(case, loader)
            elif pred is None:
                pred = predictor.predict(case, loader)
            preds.append(pred)
            if cancel():
                raise ExportCancelled
            inputs = build_report_inputs(predictor, case, loader, prediction=pred, gradcam=cam, dataset=dataset,
                                         **display)
            result: Path | str = write_case_report(inputs, out_dir / _unique_name(case.case_id, names), cancel=cancel)
            summary.written[case.case_id] = result
        except ExportCancelled:
            summary.cancelled = True
            break
        except Exception as exc:  # one broken case must not stop the batch
            result = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, MriViewerError):
                log.warning("report of case %s failed", case.case_id, exc_info=True)
            summary.failed[case.case_id] = result
        yield ReportProgress(done, len(cases), case.case_id, result)
    if not summary.cancelled and preds:
        by_id = {c.case_id: c for c in cases}
        summary.predictions_csv = write_predictions_csv(
            preds, predictor.class_names, out_dir / PREDICTIONS_CSV, dataset,
            role=lambda cid: predictor.role_of(by_id.get(cid, cid), dataset) if cid in by_id
            else predictor.role_of(cid))
    return summary


def _chosen_cases(dataset: Dataset, case_ids: Iterable[str] | None) -> list:
    """The cases named by ``case_ids`` in that order (all when ``None``); raises DatasetError
    naming every id that is not a case of ``dataset``."""
    if case_ids is None:
        return list(dataset.cases)
    cases, unknown = [], []
    for cid in case_ids:
        try:
            cases.append(dataset.case(cid))
        except DatasetError:
            unknown.append(cid)
    if unknown:
        raise DatasetError(f"{dataset.root}: no case {', '.join(repr(c) for c in unknown)}")
    return cases


def _unique_name(case_id: str, taken: set[str]) -> str:
    """The report's file name for ``case_id`` (:func:`report_filename`), with ``-2``, ``-3`` …
    appended when it is in ``taken`` (compared case-insensitively); the name is added to ``taken``."""
    name = report_filename(case_id)
    stem, n = name[:-4], 2
    while name.lower() in taken:
        name, n = f"{stem}-{n}.pdf", n + 1
    taken.add(name.lower())
    return name
