"""``mriviewer view`` (the only subcommand that imports Qt), ``mriviewer demo`` and
``mriviewer desktop`` (the launcher of a pip-installed app).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

from mriviewer.core.errors import MriViewerError
from mriviewer.core.files import write_bytes, write_text


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


def _mriviewer_command() -> str:
    """The command line that starts this installation of mriviewer: the ``mriviewer`` script next
    to the running interpreter (a virtual environment's ``bin/``), else the one on ``PATH``, else
    ``python -m mriviewer`` with this interpreter."""
    beside = Path(sys.executable).parent / "mriviewer"
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside.absolute()))
    found = shutil.which("mriviewer")
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(sys.executable)} -m mriviewer"


def desktop_paths(data_home: str | Path | None = None) -> tuple[Path, Path]:
    """Where ``mriviewer desktop`` puts the launcher and the icon: ``applications/mriviewer.desktop``
    and ``icons/hicolor/scalable/apps/mriviewer.svg`` under ``data_home`` (default
    ``$XDG_DATA_HOME``, else ``~/.local/share``; XDG Base Directory and Desktop Entry
    specifications)."""
    root = Path(data_home or os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return root / "applications" / "mriviewer.desktop", root / "icons" / "hicolor" / "scalable" / "apps" / "mriviewer.svg"


def _cmd_desktop(args) -> int:
    desktop, icon = desktop_paths(args.data_home)
    if args.remove:
        removed = [p for p in (desktop, icon) if p.is_file()]
        for p in removed:
            p.unlink()
        print("removed " + (", ".join(map(str, removed)) if removed else "nothing (no launcher installed)"),
              file=sys.stderr)
        return 0
    res = resources.files("mriviewer") / "resources"
    template = (res / "mriviewer.desktop").read_text(encoding="utf-8")
    command = _mriviewer_command()
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={command} view %f"
        elif line.startswith("TryExec="):
            if " -m " in command:
                continue  # TryExec takes a program, not a command line
            line = f"TryExec={shlex.split(command)[0]}"
        lines.append(line)
    try:
        icon.parent.mkdir(parents=True, exist_ok=True)
        desktop.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(icon, (res / "mriviewer.svg").read_bytes())
        write_text(desktop, "\n".join(lines) + "\n")
    except OSError as exc:
        raise MriViewerError(f"cannot install the launcher in {desktop.parent}: {exc}") from exc
    print(f"launcher: {desktop}\nicon: {icon}\nstarts: {command} view", file=sys.stderr)
    return 0
