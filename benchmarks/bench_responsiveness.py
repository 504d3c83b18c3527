"""How late the GUI's event loop runs, idle and while the Train button's run works in the
background — the measure of whether the app stays responsive during training.

A ``QTimer`` asks for a tick every 10 ms on the GUI thread; the lateness of a tick is how much
later than asked it runs (``QElapsedTimer``). The same window (``MainWindow`` on a generated demo
dataset, offscreen) is measured for ``--seconds`` idle (the baseline: the event loop with nothing
to do) and for ``--seconds`` with a training run started through the Train panel, as a user
would (live curves, progress, log). Goals (issue 7): p95 ≤ 20 ms and max ≤ 100 ms during
training on the 2-core machine.

Prints one line per condition and, last:
``lateness_p95_ms=X lateness_max_ms=Y`` (during training)

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_responsiveness.py [--seconds 20]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

TICK_MS = 10


def measure(app, seconds: float) -> np.ndarray:
    """Lateness (ms) of every 10 ms tick during ``seconds`` of the running event loop."""
    from PySide6 import QtCore

    clock = QtCore.QElapsedTimer()
    late: list[float] = []
    state = {"due": 0.0}

    def tick():
        now = clock.nsecsElapsed() / 1e6
        late.append(max(0.0, now - state["due"]))
        state["due"] = now + TICK_MS

    timer = QtCore.QTimer()
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    clock.start()
    state["due"] = TICK_MS
    timer.start()
    loop.exec()
    timer.stop()
    return np.array(late[1:])


def summary(name: str, late: np.ndarray) -> str:
    return (f"{name}: {len(late)} ticks, lateness p50 {np.percentile(late, 50):.1f} ms, "
            f"p95 {np.percentile(late, 95):.1f} ms, max {late.max():.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", default="resnet18-2d")
    args = ap.parse_args()
    from soak_view import isolated_env, open_window  # same folder: one way to open the window

    t0 = time.time()
    win, app = open_window(isolated_env("mriviewer-bench-resp-"), n_cases=24, matrix=64, n_slices=24)
    idle = measure(app, min(args.seconds, 10.0))
    print(summary("idle", idle))

    panel = win.train_panel
    panel.model.setCurrentText(args.model)
    panel.epochs.setValue(100)
    panel.image_size.setValue(64)
    panel.batch.setValue(8)
    panel.device.setCurrentText("cpu")
    panel.pretrained.setText("none")
    win.start_training()
    while not panel.history and time.time() - t0 < 600:  # past preparation: measure epochs
        app.processEvents()
        time.sleep(0.01)
    training = measure(app, args.seconds)
    print(summary(f"training {args.model} (epoch {len(panel.history)} when done)", training))
    win.stop_training()
    while (win.model.training or win.workers.busy) and time.time() - t0 < 900:
        app.processEvents()
        time.sleep(0.01)
    win.close()
    print(f"lateness_p95_ms={np.percentile(training, 95):.1f} lateness_max_ms={training.max():.1f}")


if __name__ == "__main__":
    main()
