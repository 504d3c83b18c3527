"""``mriviewer report``: per-case PDF reports and the predictions CSV.
"""

from __future__ import annotations

import sys

from mriviewer.cli.common import _discover, label_spec
from mriviewer.core.errors import MriViewerError


def _cmd_report(args) -> int:
    from mriviewer.cache.memory import default_cache
    from mriviewer.ml.predict import Predictor
    from mriviewer.reporting.inputs import build_report_inputs
    from mriviewer.reporting.pdf import write_case_report

    if bool(args.case) == bool(args.all or args.cases):
        raise MriViewerError("give either --case ID (one PDF) or --all / --cases ID,ID (a folder of PDFs)")
    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
    if args.case:
        case = ds.case(args.case)
        inputs = build_report_inputs(predictor, case, default_cache().get, dataset=ds)
        write_case_report(inputs, args.out)
        print(f"report written to {args.out}", file=sys.stderr)
        return 0
    from mriviewer.reporting.batch import export_reports

    ids = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    steps = export_reports(predictor, ds, args.out, ids, default_cache().get)
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:  # the generator returns its ExportSummary
            summary = stop.value
            break
        print(f"[{step.done}/{step.total}] case {step.case_id}: "
              + (f"{step.result}" if step.ok else f"not reported ({step.result})"), file=sys.stderr)
    if not summary.written:
        raise MriViewerError(f"{args.out}: no case could be reported")
    print(f"{len(summary.written)} report(s) and {summary.predictions_csv} written"
          + (f"; {len(summary.failed)} case(s) failed" if summary.failed else ""), file=sys.stderr)
    return 1 if summary.failed else 0
