"""One exception type for every user-facing failure.

Commands raise :class:`DarkGANError` with a one-line message that names the file or value and
what is wrong; the CLI prints it as ``darkgan: error: <message>`` and exits with status 2
(``--debug`` shows the traceback instead).
"""
from __future__ import annotations


class DarkGANError(Exception):
    """A clear, one-line, user-facing error (bad input, missing file, incompatible version)."""


class DataError(DarkGANError):
    """A dataset, WAV file, SoundFont or cache is missing, corrupt or of the wrong format."""


class WeightsError(DarkGANError):
    """Model weights are missing, corrupt (checksum mismatch) or of an incompatible version."""


class CheckpointError(DarkGANError):
    """A checkpoint is missing, corrupt, or was written by an incompatible version."""
