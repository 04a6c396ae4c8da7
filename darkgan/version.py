"""The installed package's version, from its metadata (``pyproject.toml`` is the one home)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("darkgan")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
