"""The ``mriviewer`` command: GUI by default, and subcommands on the same engine.

``view`` is the only subcommand that imports Qt. Bad input ends with one line on stderr
(``mriviewer: error: …``) and exit status 2; no traceback.
"""

from __future__ import annotations

import logging
import sys

from mriviewer.cli.compare import _cmd_compare
from mriviewer.cli.evaluate import _cmd_cam_check, _cmd_evaluate, _cmd_predict
from mriviewer.cli.export import _cmd_report
from mriviewer.cli.gui import _cmd_demo, _cmd_desktop, _cmd_view
from mriviewer.cli.info import _cmd_cache, _cmd_convert, _cmd_info
from mriviewer.cli.labels import _cmd_labels
from mriviewer.cli.parser import build_parser
from mriviewer.cli.runs import _cmd_runs
from mriviewer.cli.train import _cmd_presets, _cmd_train
from mriviewer.core.errors import MriViewerError


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status. SIGTERM ends a command like Ctrl-C does
    (atexit handlers run: decoding worker processes are shut down, temporary files removed)
    instead of killing it outright; the previous handler is restored afterwards."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args(["view", *(argv or [])])
    handlers = {"view": _cmd_view, "info": _cmd_info, "train": _cmd_train, "predict": _cmd_predict,
                "report": _cmd_report, "convert": _cmd_convert, "demo": _cmd_demo, "presets": _cmd_presets,
                "evaluate": _cmd_evaluate, "cam-check": _cmd_cam_check, "cache": _cmd_cache,
                "desktop": _cmd_desktop, "labels": _cmd_labels,
                "runs": _cmd_runs, "compare": _cmd_compare}
    try:
        return handlers[args.command](args)
    except MriViewerError as exc:
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a training loop: no traceback
        print("mriviewer: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a missing or unwritable path, a full disk, an existing output…
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2
