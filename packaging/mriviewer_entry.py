"""Entry point of the PyInstaller bundle: ``mriviewer`` (GUI with no arguments, CLI otherwise).

``freeze_support()`` comes first: the decoding pool and DataLoader workers are ``spawn``-ed, and
in a frozen program a spawned child is this same executable started with special arguments.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from mriviewer.cli import main

    sys.exit(main())
