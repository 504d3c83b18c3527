"""``mriviewer view`` (the only subcommand that imports Qt) and ``mriviewer demo``.
"""

from __future__ import annotations

import sys


def _cmd_demo(args) -> int:
    from mriviewer.demo.dataset import make_demo_dataset

    out = make_demo_dataset(args.out, n_cases=args.cases, seed=args.seed)
    print(f"demo dataset written to {out}", file=sys.stderr)
    return 0


def _cmd_view(args) -> int:
    from mriviewer.ui.app import run_app

    path = args.path
    if args.demo:
        from mriviewer.demo.dataset import ensure_demo

        path = str(ensure_demo())
    return run_app(path, checkpoint=args.checkpoint)
