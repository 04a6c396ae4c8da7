"""Write an instrument folder as a whole: ``<name>.sfz`` + samples, ``<name>.sf2``, ``instrument.json``.

The folder is written like ``darkgan generate --out`` (:func:`darkgan.generation.outdir.
replace_folder`): locked, staged beside it and swapped in when complete, so it never holds half
an instrument; an existing non-empty folder is refused unless ``overwrite`` (and even then only
when it holds nothing but files this command writes).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from darkgan.errors import DarkGANError
from darkgan.instrument.export import Instrument

FORMATS = ("sfz", "sf2", "both")
#: What an instrument folder may hold (``replace_folder``'s owned patterns).
OWNED = ("*.wav", "*.sfz", "*.sf2", "instrument.json")


def check_out(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing non-empty ``out`` unless ``overwrite``; everything checkable before work.

    Raises:
        DarkGANError: ``out`` exists with files (no ``overwrite``), holds foreign files, is a file,
            or cannot be created.
    """
    from darkgan.generation.outdir import check_target

    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DarkGANError(f"{out}: output folder exists and is not empty; pass --overwrite to replace it")
    return check_target(out, OWNED)


def save_instrument(inst: Instrument, out: str | os.PathLike, fmt: str = "both", config=None,
                    overwrite: bool = False) -> list[Path]:
    """Write ``inst`` into folder ``out`` (replaced as a whole). Returns the written instrument
    files (``.sfz`` and/or ``.sf2``, in their final place).

    Raises:
        DarkGANError: a bad ``fmt``, or see :func:`check_out`.
    """
    from darkgan.generation.outdir import replace_folder
    from darkgan.instrument.sf2 import write_sf2
    from darkgan.instrument.sfz import write_sfz
    from darkgan.utils.config import config_to_dict
    from darkgan.utils.io import write_json

    if fmt not in FORMATS:
        raise DarkGANError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = check_out(out, overwrite)
    written = []
    with replace_folder(out, OWNED) as stage:
        if fmt in ("sfz", "both"):
            written.append(write_sfz(inst, stage).name)
        if fmt in ("sf2", "both"):
            written.append(write_sf2(inst, stage / f"{inst.name}.sf2").name)
        write_json(stage / "instrument.json", {
            "name": inst.name, "files": written, "sample_rate": inst.sample_rate,
            "pitches": inst.pitches.tolist(), "key_ranges": inst.key_ranges, "vel_ranges": inst.vel_ranges,
            "loops": None if inst.loops is None else inst.loops.tolist(), "release_s": inst.release_s,
            "config": config_to_dict(config) if config is not None else None, **inst.info})
    return [out / name for name in written]


def zip_sfz(folder: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip an instrument folder's ``.sfz``, its WAVs and ``instrument.json`` (atomically)."""
    from darkgan.utils.io import atomic_write

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".sfz", ".wav") or p.name == "instrument.json")
    with atomic_write(zip_path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:
            z.write(p, f"{folder.name}/{p.name}")
    return Path(zip_path)
