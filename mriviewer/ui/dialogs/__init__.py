"""The window's dialogs: the labelled-folders dialog, and the file and choice prompts of the
File and Case menus (:mod:`mriviewer.ui.dialogs.prompts`)."""

from mriviewer.ui.dialogs.labelled_folders import LabelledFoldersDialog

__all__ = ["LabelledFoldersDialog"]
