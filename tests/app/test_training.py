"""The training run's state (app/training.py) and the Train panel's text (app/train_text.py),
without Qt: events in, signals and typed records out; progress and ETAs on a fake clock; the
results' HTML."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from mriviewer.app import train_text
from mriviewer.app.training import RunProgress, RunResults, TrainingRun
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.config_fields import config_field
from mriviewer.ml.events import EpochEvent, EpochRecord, FoldEvent, LogEvent, ProgressEvent

REC = {"epoch": 1, "phase": "train", "fold": "fold 2", "lr": 1e-3, "train_loss": 0.7, "val_loss": 0.69,
       "val_auc": 0.6, "val_accuracy": 0.5, "seconds": 1.0, "is_best": True}


def _record(**kw) -> EpochRecord:
    return EpochRecord.from_dict({**REC, **kw})


def _signals(run: TrainingRun) -> list[tuple]:
    seen: list[tuple] = []
    for name in ("started", "ended", "epoch_added", "progress_changed", "log_added", "warning_added",
                 "status_changed", "results_changed"):
        getattr(run, name).connect(lambda *a, n=name: seen.append((n, *a)))
    return seen


def test_training_run_is_qt_free():
    code = ("import sys, mriviewer.app.training, mriviewer.app.train_text; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_start_events_and_end():
    run = TrainingRun()
    seen = _signals(run)
    run.add_log("before the run", "warning")
    assert run.warnings == ["before the run"] and not run.running and run.status == "Idle"
    run.start(TrainConfig(folds=3, epochs=4), now=100.0)
    assert run.running and run.warnings == [] and run.results is None
    assert ("started",) in seen and ("results_changed", None) in seen
    run.handle(EpochEvent(REC))
    run.handle(EpochEvent({**REC, "epoch": 2, "val_auc": math.nan, "is_best": False}))
    run.handle(EpochEvent({**REC, "epoch": 1, "fold": "fold 3"}))
    assert all(isinstance(r, EpochRecord) for r in run.history) and len(run.history) == 3
    assert run.fold_index == 3
    assert [r.epoch for r in run.fold_epochs()] == [1] and run.fold_epochs()[0].fold == "fold 3"
    epochs = [s[1] for s in seen if s[0] == "epoch_added"]
    assert epochs == run.history
    logs = [s[1] for s in seen if s[0] == "log_added"]
    assert logs[-2].startswith("epoch 2 (fold 2): train loss 0.7000, val loss 0.6900, val AUC n/a, lr 0.001")
    run.handle(LogEvent("too few cases", "warning"))
    run.handle(LogEvent("too few cases", "warning"))  # collected once, logged twice
    assert run.warnings == ["too few cases"]
    assert [s for s in seen if s[0] == "warning_added"][-1] == ("warning_added", "too few cases")
    assert ("log_added", "too few cases", "warning") in seen
    run.handle(FoldEvent("fold 2", 2, 3, {"auc": 0.75, "auc_ci": [0.5, 0.9], "n_cases": 10}))
    assert run.folds[0].fold_index == 2
    assert seen[-1] == ("log_added", "fold 2 done (2 of 3): test AUC 0.750 (0.500–0.900) on 10 cases.", "info")
    run.end()
    assert not run.running and seen[-1] == ("ended",) and run.warnings == ["too few cases"]
    assert run.elapsed(now=112.0) == pytest.approx(12.0)


def test_progress_fractions_and_etas_on_a_fake_clock():
    run = TrainingRun()
    run.start(TrainConfig(folds=3, epochs=4), now=0.0)
    out = None
    for step in range(1, 5):
        out = run.progress(ProgressEvent("train", 2, step, 8, 0.7, "fold 2", 4), now=float(step))
        run.clock.train += 2.0  # pretend batches take time
    assert isinstance(out, RunProgress)
    # fold 2 of 3, epoch 2 of 4, half of its batches: (1 + (1 + 4/8) / 4) / 3
    assert out.fraction == pytest.approx((1 + 1.5 / 4) / 3)
    assert "fold 2 of 3" in out.overall_text and "ETA" in out.overall_text and "0:04 elapsed" in out.overall_text
    assert out.bar_text == "epoch 2/4 · batch 4/8 · 0:04 left" and (out.step, out.total) == (4, 8)
    assert run.status == "fold 2 of 3: epoch 2 of 4, batch 4/8, running loss 0.7000"
    prep = run.progress(ProgressEvent("prepare", 0, 3, 12, fold="fold 3"), now=5.0)
    assert prep.fraction == pytest.approx(2 / 3) and prep.bar_text == "Preparing cases 3/12"
    assert run.clock.last is None  # the preparation is not counted as training time
    nan_loss = run.progress(ProgressEvent("train", 1, 1, 8, math.nan, "fold 3", 4), now=6.0)
    assert "running loss n/a" in nan_loss.status


def test_units_of_per_modality_cross_validation():
    run = TrainingRun()
    run.start(TrainConfig(folds=2, per_modality=True, modalities=["FLAIR", "T2w"]))
    assert run.unit_of("T2w fold 2", 2) == (3, 4, "T2w (2 of 2), fold 2 of 2")
    assert run.unit_of("FLAIR fold 1", 1) == (0, 4, "FLAIR (1 of 2), fold 1 of 2")
    run.start(TrainConfig())
    assert run.unit_of("holdout", None) == (0, 1, "")
    assert TrainingRun().unit_of("fold 2", 2) == (0, 1, "")  # no config: one unit


def test_results_add_their_warnings_and_can_be_cleared():
    run = TrainingRun()
    seen = _signals(run)
    res = run.set_results({"test": {"auc": 0.7}, "warnings": ["Split: something"]}, stopped=True, source="Run x")
    assert isinstance(res, RunResults) and res.stopped and res.source == "Run x" and run.results is res
    assert run.warnings == ["Split: something"]
    assert seen[-1] == ("results_changed", res)
    run.clear_results()
    assert run.results is None and seen[-1] == ("results_changed", None)
    run.set_status("Failed")
    assert run.status == "Failed" and seen[-1] == ("status_changed", "Failed")


# ---------------------------------------------------------------------------- text
def test_text_of_epochs_folds_and_durations():
    assert train_text.duration(65) == "1:05" and train_text.duration(3725) == "1:02:05" and train_text.duration(-3) == "0:00"
    assert train_text.fold_suffix("holdout") == "" and train_text.fold_suffix("FLAIR fold 2") == " (FLAIR fold 2)"
    assert "Loss (fold 2)" in train_text.loss_title("fold 2") and train_text.loss_title("holdout").startswith("Loss <")
    line = train_text.epoch_log_line(_record(val_loss=math.inf, val_auc=None))
    assert "val loss n/a" in line and "val AUC n/a" in line and line.endswith("(best), 1.0s")
    assert "nan" not in line and "inf" not in line
    fold = train_text.fold_log_line(FoldEvent("fold 1", 1, 2, {"auc": math.nan}))
    assert fold == "fold 1 done (1 of 2): test AUC n/a (CI n/a) on ? cases."


def test_text_of_settings_and_presets():
    from mriviewer.ml.presets import get_preset

    tip = train_text.field_tooltip(config_field("image_size"))
    assert "<tt>image_size</tt> (int)" in tip and "Range: 16 … 1024 px" in tip and "--set image_size=…" in tip
    assert "Choices: adam, adamw, sgd" in train_text.field_tooltip(config_field("optimizer"))
    assert train_text.json_placeholder(config_field("split")) == "JSON, e.g. [0.7, 0.15, 0.15]"
    assert train_text.json_placeholder(config_field("modality_fallback")) == "JSON, e.g. {}"
    msg = train_text.json_error("split", list, "[0.7", "Expecting ','")
    assert msg.startswith("split: not valid JSON") and "write e.g. [0.7, 0.15, 0.15]" in msg
    p = get_preset("mgmt-cnn3d-flair")
    assert p.summary in train_text.preset_info(p) and "note" in train_text.preset_info(p)
    assert train_text.preset_info(None).startswith("No preset")
    assert p.notes[0][:20] in train_text.preset_tooltip(p) and train_text.preset_notes_html(None) == ""
    assert train_text.overrides_tip([], True) == "No value differs from the preset."
    assert train_text.overrides_tip(["lr"], False) == "Edited (recorded as overrides of the defaults): lr"


def _metrics(n: int = 20, classes=("a", "b"), seed: int = 0) -> dict:
    from mriviewer.ml.metrics import classification_metrics

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(classes), n)
    probs = rng.dirichlet(np.ones(len(classes)), n)
    return classification_metrics(labels, probs, list(classes), n_boot=50)


def test_results_text_holdout_cv_per_modality_and_undefined():
    from mriviewer.ml.metrics import summarise_folds

    test = _metrics()
    text = train_text.results_text({"test": test}, stopped=True, source="Run /x")
    assert "Test (held-out, 20 cases)" in text.html and "95 % CI" in text.html and "Stopped run" in text.html
    assert "<i>Run /x</i>" in text.html and text.test is test
    folds = [_metrics(10, seed=1), _metrics(10, seed=2)]
    cv = train_text.results_text({"test": test, "folds": [{"test": f} for f in folds],
                                  "summary": summarise_folds(folds), "warnings_cv": "few folds"})
    assert "pooled out-of-fold" in cv.html and "mean ± sd over 2 folds" in cv.html and cv.warnings[-1] == "few folds"
    per = train_text.results_text({"per_modality": {"FLAIR": {"test": folds[0]}, "T2w": {"test": folds[1]}},
                                   "chosen_on_validation": "T2w"})
    assert "FLAIR" in per.html and "← chosen on validation" in per.html and per.test is folds[1]
    none = train_text.results_text({})
    assert none.test is None and "No test metrics" in none.html
    undefined = train_text.results_text({"test": {"auc": math.nan, "auc_ci": [math.nan, 0.9], "n_cases": 3}})
    assert "AUC <b>n/a</b> (95 % CI n/a)" in undefined.html and "nan" not in undefined.html
    assert "2 more warning(s)" in train_text.warnings_html([], 2)
    assert "<li style" in train_text.warnings_html(["<b>x</b>"], 0) and "&lt;b&gt;" in train_text.warnings_html(["<b>x</b>"], 0)


def test_roc_curves_and_confusion_cells():
    binary = _metrics()
    (name, fpr, tpr), = train_text.roc_curves(binary)
    assert name.startswith("AUC ") and len(fpr) == len(tpr)
    multi = _metrics(30, ("x", "y", "z"))
    assert [c[0].split(" ")[0] for c in train_text.roc_curves(multi)] == ["x", "y", "z"]
    assert train_text.roc_curves({"roc": {"fpr": [], "tpr": []}}) == []
    names, cells = train_text.confusion_cells(multi)
    assert names == ["x", "y", "z"] and len(cells) == 9 and sum(c.count for c in cells) == 30
    assert all(c.correct == (c.row == c.column) for c in cells)
    assert train_text.confusion_cells({"confusion_matrix": [[1, 0], [0, 0]]})[0] == ["0", "1"]
    first = train_text.confusion_cells({"confusion_matrix": [[3, 1], [0, 0]], "class_names": ["a", "b"]})[1][0]
    assert first.share == pytest.approx(0.75) and first.tooltip == "3 of 4 cases of a predicted a"
