"""DarkGAN: controllable, comprehensible and lightweight neural synthesis of musical notes.

The package follows the pipeline, one folder a stage, data flowing one way:
``data -> teacher -> models -> training -> generation -> evaluation -> compression -> app``.

Quick start::

    import darkgan
    g = darkgan.DarkGAN.load()                     # the shipped checkpoint
    audio = g.generate(pitch=60, attributes={"Tuning fork": 0.8}, n=4, seed=0)  # [4, 16000]
"""
from __future__ import annotations

from darkgan.version import __version__

__all__ = ["DarkGAN", "__version__"]


def __getattr__(name: str):  # lazy: importing darkgan must not import torch
    if name == "DarkGAN":
        from darkgan.generation.api import DarkGAN

        return DarkGAN
    raise AttributeError(f"module 'darkgan' has no attribute {name!r}")
