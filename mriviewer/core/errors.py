"""Exception types raised by mriviewer for bad input.

Every message names the file (or folder) and what is wrong with it, so that the GUI and the
command line can show it as it is.
"""

from __future__ import annotations

from pathlib import Path


class MriViewerError(Exception):
    """Base class of every error mriviewer raises on purpose."""


class VolumeError(MriViewerError):
    """A volume's array or geometry is unusable (wrong shape, singular affine)."""


class LoadError(MriViewerError):
    """A file or folder could not be read as an image.

    Args:
        path: the offending file or folder.
        reason: what is wrong, in words a user understands.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(MriViewerError):
    """A dataset folder or label file cannot be used."""


class CheckpointError(MriViewerError):
    """A checkpoint file is missing, corrupt or does not match the data."""


class ConfigError(MriViewerError):
    """A training configuration is invalid (unknown model, bad number, …).

    Args:
        message: what is wrong, naming the key.
        key: the offending :class:`~mriviewer.ml.config.TrainConfig` key (dotted for a value
            inside a group: ``"augment.flip_lr"``), or ``None`` when no single key is at fault
            (an unreadable file, an unknown preset file). The GUI outlines that key's editor.
    """

    def __init__(self, message: str = "", key: str | None = None) -> None:
        self.key = key
        super().__init__(message)

    def __reduce__(self):
        """Pickle with the key (errors cross process boundaries: workers, torchrun)."""
        return type(self), (str(self), self.key)


class Cancelled(Exception):  # noqa: N818  (a request, not an error)
    """The user cancelled long work (discovery of a large folder, …): nothing is wrong with the
    input, and nothing partial is kept."""
