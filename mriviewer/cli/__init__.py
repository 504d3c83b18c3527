"""The ``mriviewer`` command: the parser (:mod:`.parser`), one module per command group, and the
entry point (:func:`mriviewer.cli.entry.main`, also ``mriviewer.cli.main``)."""

from mriviewer.cli.entry import main

__all__ = ["main"]
