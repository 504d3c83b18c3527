"""``mriviewer runs DIR``: the training runs under a folder as one table (preset, model, data,
date, test AUC with its interval), sortable — the list a researcher compares before picking one."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

from mriviewer.core.errors import MriViewerError
from mriviewer.core.text import fmt_interval, fmt_number


def find_runs(root: str | Path) -> list[dict]:
    """Every run folder under ``root`` (a ``metrics.json`` beside a ``config.json``), described.

    Returns:
        One dict per run: ``run`` (path relative to ``root``), ``date`` (ISO, the metrics'
        modification time), ``preset``, ``model``, ``modalities``, ``data`` (the dataset's folder
        when recorded), ``test_auc``, ``test_auc_ci``, ``test_cases``, ``caveats`` (how many qualify
        the figures) and ``checkpoint`` (``best.pt`` when present). Unreadable files are skipped
        with a note on stderr.

    Raises:
        MriViewerError: ``root`` is not a folder.
    """
    from mriviewer.ml.caveats import caveats_of, reported

    root = Path(root)
    if not root.is_dir():
        raise MriViewerError(f"{root}: not a folder of runs")
    out = []
    for metrics_path in sorted(root.rglob("metrics.json")):
        folder = metrics_path.parent
        if not (folder / "config.json").is_file():
            continue
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"note: {folder}: skipped ({exc})", file=sys.stderr)
            continue
        test = metrics.get("test") or {}
        out.append({
            "run": folder.relative_to(root).as_posix() or ".", "date": _dt.datetime.fromtimestamp(
                metrics_path.stat().st_mtime).isoformat(timespec="seconds"),
            "preset": config.get("preset") or None, "model": config.get("model"),
            "modalities": config.get("modalities") or [], "data": (metrics.get("dataset") or {}).get("root"),
            "test_auc": test.get("auc"), "test_auc_ci": test.get("auc_ci"), "test_cases": test.get("n_cases"),
            "caveats": len(reported(caveats_of(metrics))),
            "checkpoint": str(folder / "best.pt") if (folder / "best.pt").is_file() else None,
        })
    return out


def sort_runs(runs: list[dict], key: str = "date") -> list[dict]:
    """Newest first (``date``), best test AUC first (``auc``; runs without one last), or by path."""
    if key == "auc":
        return sorted(runs, key=lambda r: (r["test_auc"] is None, -(r["test_auc"] or 0.0), r["run"]))
    if key == "name":
        return sorted(runs, key=lambda r: r["run"])
    return sorted(runs, key=lambda r: (r["date"], r["run"]), reverse=True)


def _cmd_runs(args) -> int:
    runs = sort_runs(find_runs(args.dir), args.sort)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print(f"{args.dir}: no runs (a run folder holds metrics.json and config.json)", file=sys.stderr)
        return 0
    width = max(len(r["run"]) for r in runs)
    print(f"{'run':<{width}}  {'date':<19}  {'test AUC':>8}  {'95% CI':<11}  {'cases':>5}  "
          "caveats  model / preset / modalities")
    for r in runs:
        what = " / ".join([str(r["model"]), r["preset"] or "no preset", ",".join(r["modalities"])])
        print(f"{r['run']:<{width}}  {r['date']:<19}  {fmt_number(r['test_auc']):>8}  "
              f"{fmt_interval(r['test_auc_ci']):<11}  {r['test_cases'] if r['test_cases'] is not None else 'n/a':>5}  "
              f"{r['caveats']:>7}  {what}")
    return 0
